/**
 * How a sealed room's messages reach the other instances, and theirs reach it. A narrow
 * interface: it moves bytes under a room name and a kind, never rooms, storage or connections.
 * What the bytes mean (sealed/bus-payload.ts) and what to do with what arrives is the registry's
 * (sealed/remote-intake.ts). In-process (LocalSealedFanout) there is nobody to tell; across
 * instances see sealed/redis-fanout.ts.
 */

export type SealedBusKind =
  /** committed entries with their seq */
  | 'entries'
  /** one connection's presence envelope */
  | 'presence'
  /** a connection closed */
  | 'peer-left'
  /** an instance that just loaded the room asks for the presence of the others' connections */
  | 'presence-query'
  /** the sender could not publish some committed entries: read the room's tail from storage */
  | 'check';

/** `generation`: the room's generation the message was committed in (undefined: not told, the version before) */
export type SealedBusHandler = (kind: SealedBusKind, payload: Uint8Array, generation?: number) => void;

export interface SealedFanout {
  /**
   * Largest payload `publish` may carry (REDIS_MAX_RELAY_MESSAGE_BYTES less the bus header): the
   * registry splits what is larger, or announces it instead (sealed/remote-intake.ts).
   */
  readonly maxPayloadBytes: number;
  /**
   * To the other instances holding the room; false when it could not be sent (link down).
   * `generation`: the room's generation it was committed in, told with it (entries, check).
   */
  publish(room: string, kind: SealedBusKind, payload?: Uint8Array, generation?: number): boolean;
  /** Start listening to the room (before its head is read from storage, so nothing is missed). */
  subscribe(room: string, handler: SealedBusHandler): Promise<void>;
  unsubscribe(room: string): void;
  /** `handler` runs when messages may have been lost (the link came back after an outage). */
  onResync(handler: () => void): void;
}

/** A single instance: nobody else to tell. */
export class LocalSealedFanout implements SealedFanout {
  readonly maxPayloadBytes = Number.POSITIVE_INFINITY;
  publish(): boolean {
    return true;
  }
  async subscribe(): Promise<void> {}
  unsubscribe(): void {}
  onResync(): void {}
}
