/**
 * Delivery of a room's messages to its connections. Rooms never walk their connections
 * themselves: today everything is in-process; with the scale-out issue an implementation will
 * also publish to other instances (and feed what it receives back through Room.applyRemote*).
 * Rooms are named here, never passed: this file does not depend on room.ts.
 */
/** One receiver of relay messages: a local WebSocket today. */
export interface RelayPeer {
  readonly id: string;
  /** sends bytes as one binary frame; never throws */
  send(message: Uint8Array): void;
  /** closes the connection with this WebSocket close code; never throws */
  close(code: number, reason: string): void;
}

export type FanoutKind = 'update' | 'awareness';

export interface RoomFanout {
  /** Deliver `message` to every connection of the room, the sender included. */
  publish(room: string, peers: Iterable<RelayPeer>, message: Uint8Array, kind: FanoutKind): void;
  /**
   * After the room's updates are committed (multi-instance: only then are they told to the other
   * instances, so an instance that subscribes and then reads storage sees each update in one of
   * the two, and none is known elsewhere while it could still be lost with this instance).
   */
  committed?(room: string, updates: readonly Uint8Array[]): void;
  /** Before the room is read from storage (multi-instance: start listening, so nothing is missed). */
  beforeLoad?(room: string): Promise<void>;
  /** The room is in memory (multi-instance: apply what arrived while it loaded). */
  afterLoad?(room: string): void;
  /** The room left memory, or failed to load. */
  unloaded?(room: string): void;
}

/** In-process delivery: the same bytes to each local peer. */
export class LocalFanout implements RoomFanout {
  publish(_room: string, peers: Iterable<RelayPeer>, message: Uint8Array): void {
    for (const peer of peers) peer.send(message);
  }
}
