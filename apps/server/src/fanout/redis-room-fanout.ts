/**
 * RoomFanout across instances, over one Redis channel per room. Each instance subscribes only to
 * the rooms it holds. Updates are published after they are committed (RoomFanout.committed),
 * awareness at once. Knows bytes and room names only: what arrives goes to the room's handler
 * (relay/room-registry.ts applies it). After a Redis outage the resync handlers run, and the
 * rooms whose commits could not be published are announced for re-reading.
 */
import * as Y from 'yjs';
import type { FastifyBaseLogger } from 'fastify';
import { encodeRelayMessage, writeRelayUpdate } from '@sync-suite/shared';
import type { FanoutKind, RemoteHandler, RoomFanout } from '../relay/fanout.js';
import { BusKind, readBusFrame, writeBusFrame } from './bus-frame.js';
import type { RedisKeys } from './redis-keys.js';
import type { RedisLink } from './redis-link.js';

export interface RedisRoomFanoutOptions {
  link: RedisLink;
  keys: RedisKeys;
  log: FastifyBaseLogger;
}

export class RedisRoomFanout implements RoomFanout {
  readonly awaitsCommit = true;
  private readonly handlers = new Map<string, RemoteHandler>();
  private readonly resyncs: Array<() => void> = [];
  /** rooms whose committed updates could not be published (Redis down) */
  private readonly missed = new Set<string>();

  constructor(private readonly opts: RedisRoomFanoutOptions) {
    opts.link.onResync(() => this.catchUp());
  }

  publish(room: string, message: Uint8Array, kind: FanoutKind): void {
    if (kind === 'awareness') this.send(room, BusKind.RelayAwareness, message);
  }

  async subscribe(room: string, handler: RemoteHandler): Promise<void> {
    this.handlers.set(room, handler);
    const subscribed = this.opts.link.subscribe(this.opts.keys.relayRoom(room), (m) => this.received(room, m));
    // During an outage, go on: the catch-up after the reconnect re-reads storage.
    if (this.opts.link.subscriberReady) await subscribed;
    else subscribed.catch((err: unknown) => this.opts.log.warn({ err, room }, 'relay room subscribe failed'));
    // Answers arrive through the handler (held back by the registry until the room is loaded).
    this.send(room, BusKind.RelayAwarenessQuery);
  }

  unsubscribe(room: string): void {
    this.handlers.delete(room);
    this.opts.link.unsubscribe(this.opts.keys.relayRoom(room));
  }

  onResync(handler: () => void): void {
    this.resyncs.push(handler);
  }

  /** One message per room per commit, every update of it merged. */
  committed(room: string, updates: readonly Uint8Array[]): void {
    if (updates.length === 0) return;
    const merged = updates.length === 1 ? (updates[0] as Uint8Array) : Y.mergeUpdates(updates as Uint8Array[]);
    const frame = encodeRelayMessage((e) => writeRelayUpdate(e, merged));
    if (!this.send(room, BusKind.RelayUpdate, frame)) this.missed.add(room);
  }

  private send(room: string, kind: BusKind, payload?: Uint8Array): boolean {
    return this.opts.link.publish(this.opts.keys.relayRoom(room), writeBusFrame(kind, this.opts.link.instance, payload));
  }

  private received(room: string, message: Buffer): void {
    const handler = this.handlers.get(room);
    if (!handler) return;
    const read = readBusFrame(message);
    if (!read.ok) return this.opts.log.warn({ reason: read.reason, room }, 'malformed relay bus frame dropped');
    const frame = read.frame;
    if (frame.instance.equals(this.opts.link.instance)) return; // ours: applied and delivered already
    switch (frame.kind) {
      case BusKind.RelayUpdate:
      case BusKind.RelayAwareness:
        return handler({ kind: 'message', payload: frame.payload });
      case BusKind.RelayAwarenessQuery:
        return handler({ kind: 'awareness-query' });
      case BusKind.RelayReload:
        return handler({ kind: 'reload' });
      default:
        return;
    }
  }

  /** After an outage: every held room re-reads storage, and we tell the others what we could not publish. */
  private catchUp(): void {
    for (const resync of this.resyncs) resync();
    for (const room of this.missed) if (this.send(room, BusKind.RelayReload)) this.missed.delete(room);
  }
}
