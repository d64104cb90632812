/**
 * Delivery of a room's messages to its connections. Rooms never walk their connections
 * themselves: today everything is in-process; with the scale-out issue an implementation will
 * also publish to other instances (and feed what it receives back through Room.applyRemote*).
 */

/** One receiver of relay messages: a local WebSocket today. */
export interface RelayPeer {
  readonly id: string;
  /** sends bytes as one binary frame; never throws */
  send(message: Uint8Array): void;
}

export type FanoutKind = 'update' | 'awareness';

export interface RoomFanout {
  /** Deliver `message` to every connection of the room, the sender included. */
  publish(room: string, peers: Iterable<RelayPeer>, message: Uint8Array, kind: FanoutKind): void;
}

/** In-process delivery: the same bytes to each local peer. */
export class LocalFanout implements RoomFanout {
  publish(_room: string, peers: Iterable<RelayPeer>, message: Uint8Array): void {
    for (const peer of peers) peer.send(message);
  }
}
