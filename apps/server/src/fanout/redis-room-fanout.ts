/**
 * RoomFanout across instances. Each instance holds only the rooms its own connections use (they
 * still unload when idle) and subscribes to those rooms' channels. Updates are published after
 * they are committed (RoomFanout.committed), awareness at once. A room subscribes before it is
 * read from storage and buffers what arrives until the read is done, so nothing committed
 * elsewhere meanwhile is missed. After a Redis outage every held room is re-read from storage.
 */
import * as Y from 'yjs';
import type { FastifyBaseLogger } from 'fastify';
import type { ServerMetrics } from '@sync-suite/shared/node';
import { encodeRelayMessage, readRelayMessage, writeRelayUpdate } from '@sync-suite/shared';
import type { FanoutKind, RelayPeer, RoomFanout } from '../relay/fanout.js';
import type { DocStore } from '../relay/persistence/types.js';
import type { Room } from '../relay/room.js';
import type { RoomRegistry } from '../relay/room-registry.js';
import { BusKind, readBusFrame, writeBusFrame, type BusFrame } from './bus-frame.js';
import type { RedisKeys } from './redis-keys.js';
import type { RedisLink } from './redis-link.js';

export interface RedisRoomFanoutOptions {
  link: RedisLink;
  keys: RedisKeys;
  store: DocStore;
  metrics: ServerMetrics;
  log: FastifyBaseLogger;
}

export class RedisRoomFanout implements RoomFanout {
  private registry: RoomRegistry | null = null;
  /** rooms being read from storage, with the frames that arrived meanwhile */
  private readonly loading = new Map<string, Buffer[]>();
  /** rooms whose committed updates could not be published (Redis down) */
  private readonly missed = new Set<string>();

  constructor(private readonly opts: RedisRoomFanoutOptions) {
    opts.link.onResync(() => this.catchUp());
  }

  bind(registry: RoomRegistry): void {
    this.registry = registry;
  }

  publish(room: string, peers: Iterable<RelayPeer>, message: Uint8Array, kind: FanoutKind): void {
    for (const peer of peers) peer.send(message);
    if (kind === 'awareness') this.send(room, BusKind.RelayAwareness, message);
  }

  async beforeLoad(room: string): Promise<void> {
    this.loading.set(room, []);
    const subscribed = this.opts.link.subscribe(this.opts.keys.relayRoom(room), (m) => this.received(room, m));
    // During an outage, load anyway: the catch-up after the reconnect re-reads storage.
    if (this.opts.link.subscriberReady) await subscribed;
    else subscribed.catch((err: unknown) => this.opts.log.warn({ err, room }, 'relay room subscribe failed'));
  }

  afterLoad(name: string): void {
    const buffered = this.loading.get(name) ?? [];
    this.loading.delete(name);
    const room = this.registry?.rooms.get(name);
    if (room) for (const message of buffered) this.dispatch(room, message);
    this.send(name, BusKind.RelayAwarenessQuery);
  }

  unloaded(room: string): void {
    this.loading.delete(room);
    this.opts.link.unsubscribe(this.opts.keys.relayRoom(room));
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

  private received(name: string, message: Buffer): void {
    const pending = this.loading.get(name);
    if (pending) return void pending.push(message);
    const room = this.registry?.rooms.get(name);
    if (room && !room.unloaded) this.dispatch(room, message);
  }

  private dispatch(room: Room, message: Buffer): void {
    const read = readBusFrame(message);
    if (!read.ok) return this.opts.log.warn({ reason: read.reason, room: room.name }, 'malformed relay bus frame dropped');
    if (read.frame.instance.equals(this.opts.link.instance)) return; // ours: applied and delivered already
    try {
      this.apply(room, read.frame);
    } catch (err) {
      this.poisoned(room, err);
    }
  }

  private apply(room: Room, frame: BusFrame): void {
    switch (frame.kind) {
      case BusKind.RelayUpdate:
      case BusKind.RelayAwareness:
        return this.applyMessage(room, frame.payload);
      case BusKind.RelayAwarenessQuery:
        if (room.conns.size > 0 && room.awareness.getStates().size > 0) this.send(room.name, BusKind.RelayAwareness, room.awarenessMessage());
        return;
      case BusKind.RelayReload:
        return this.reload(room);
      default:
        return;
    }
  }

  private applyMessage(room: Room, payload: Buffer): void {
    const decoded = readRelayMessage(payload);
    if (!decoded.ok) throw new Error(`undecodable relay frame from another instance: ${decoded.error.error}`);
    const m = decoded.message;
    if (m.type === 'update' || m.type === 'sync-step2') room.applyRemoteUpdates([m.update]);
    else if (m.type === 'awareness') room.applyRemoteAwareness(m.update, payload);
  }

  /** After an outage: re-read every held room, and tell the others about what we could not publish. */
  private catchUp(): void {
    for (const room of this.registry?.rooms.values() ?? []) this.reload(room);
    for (const room of this.missed) if (this.send(room, BusKind.RelayReload)) this.missed.delete(room);
  }

  private reload(room: Room): void {
    this.opts.store
      .load(room.name)
      .then((stored) => {
        if (room.unloaded) return;
        room.applyStoredState(stored);
      })
      .catch((err: unknown) => {
        this.opts.metrics.storageErrors.inc({ op: 'load' });
        this.opts.log.warn({ err, room: room.name }, 'relay catch-up read failed');
      });
  }

  /** A remote update that fails to apply leaves the document suspect: reload the room. */
  private poisoned(room: Room, err: unknown): void {
    this.opts.log.error({ err, room: room.name }, 'update from another instance failed to apply; evicting the room');
    this.registry?.reload(room);
  }
}
