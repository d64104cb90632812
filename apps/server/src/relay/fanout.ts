/**
 * How a room's messages reach the other instances, and theirs reach it. A narrow interface:
 * it knows room names and bytes, never rooms, storage or connections. The room delivers to its
 * own connections itself (relay/room.ts); the registry applies what arrives (relay/room-registry.ts).
 * In-process (LocalFanout) there is nobody to tell; across instances see fanout/redis-room-fanout.ts.
 */

/** One receiver of relay messages: a local WebSocket. */
export interface RelayPeer {
  readonly id: string;
  /** sends bytes as one binary frame; never throws */
  send(message: Uint8Array): void;
  /** closes the connection with this WebSocket close code; never throws */
  close(code: number, reason: string): void;
}

export type FanoutKind = 'update' | 'awareness';

/** What another instance told about a room. */
export type RemoteEvent =
  /** a relay message accepted there (awareness; an update once checked: relay/remote-intake.ts) */
  | { kind: 'message'; payload: Uint8Array }
  /**
   * a relay update message committed there in `generation` (relay/persistence/types.ts);
   * undefined: generation 0, or an instance of the version before, which does not tell
   */
  | { kind: 'update'; payload: Uint8Array; generation: number | undefined }
  /** a room was loaded there: whoever holds presence for it answers with it */
  | { kind: 'awareness-query' }
  /** updates committed there could not be published: re-read the room from storage */
  | { kind: 'reload' };

export type RemoteHandler = (event: RemoteEvent) => void;

export interface RoomFanout {
  /**
   * Whether something waits for the commit: updates are told to the other instances only once
   * committed, so the group commit's window is their latency (relay/room-registry.ts keeps it short).
   */
  readonly awaitsCommit: boolean;
  /** A message the room delivered to its own connections: awareness goes to the others at once. */
  publish(room: string, message: Uint8Array, kind: FanoutKind): void;
  /**
   * After the room's updates are committed: only then are they told to the other instances, so
   * an instance that subscribes and then reads storage sees each update in one of the two, and
   * none is known elsewhere while it could still be lost with this instance. `generation` is
   * the one they were committed in (absent: not named, stored whatever it was).
   */
  committed(room: string, updates: readonly Uint8Array[], generation?: number): void;
  /** Start listening to the room (before it is read from storage, so nothing is missed). */
  subscribe(room: string, handler: RemoteHandler): Promise<void>;
  unsubscribe(room: string): void;
  /** `handler` runs when messages may have been lost (the link came back after an outage). */
  onResync(handler: () => void): void;
}

/** A single instance: nobody else to tell. */
export class LocalFanout implements RoomFanout {
  readonly awaitsCommit = false;
  publish(): void {}
  committed(): void {}
  async subscribe(): Promise<void> {}
  unsubscribe(): void {}
  onResync(): void {}
}
