/**
 * Sealed rooms across instances through Redis (REDIS_URL), on the link signaling and relay share
 * (fanout/redis-link.ts). Committed entries are published with their seq after the commit;
 * presence and peer-left at once. A room subscribes before it reads its head from storage and
 * holds what arrives until then; a seq beyond the next expected makes the room read the gap
 * from storage (room.ts), and after a Redis outage every held room re-reads its tail.
 */
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { redisKeys, type RedisKeys } from '../fanout/redis-keys.js';
import type { RedisLink } from '../fanout/redis-link.js';
import { BusKind, readBusFrame, writeBusFrame, type BusFrame } from '../fanout/bus-frame.js';
import { redisLinkFor } from '../fanout/scale-out.js';
import { readEntriesPayload, readPeerPayload, readPresencePayload, writeEntriesPayload, writePeerPayload, writePresencePayload } from './bus-payload.js';
import { LocalSealedFanout, type SealedFanout } from './fanout.js';
import type { SealedRegistry } from './registry.js';
import type { SealedRoom } from './room.js';
import type { SealedStore } from './store/types.js';

/** The sealed fan-out: local, or across instances through Redis. */
export async function createSealedFanout(app: FastifyInstance, _store: SealedStore): Promise<SealedFanout> {
  const pending = redisLinkFor(app);
  if (!pending) return new LocalSealedFanout();
  return new RedisSealedFanout(await pending, redisKeys(app.sync.config.REDIS_PREFIX), app.sync.log.child({ component: 'sealed-bus' }));
}

export class RedisSealedFanout implements SealedFanout {
  private registry: SealedRegistry | null = null;
  private readonly loading = new Map<string, Buffer[]>();
  /** rooms whose committed entries could not be published */
  private readonly missed = new Set<string>();

  constructor(
    private readonly link: RedisLink,
    private readonly keys: RedisKeys,
    private readonly log: FastifyBaseLogger,
  ) {
    link.onResync(() => this.catchUp());
  }

  bind(registry: SealedRegistry): void {
    this.registry = registry;
  }

  entries(room: string, firstSeq: number, envelopes: readonly Uint8Array[]): void {
    if (!this.send(room, BusKind.SealedEntries, writeEntriesPayload(firstSeq, envelopes))) this.missed.add(room);
  }

  presence(room: string, peer: number, envelope: Uint8Array): void {
    this.send(room, BusKind.SealedPresence, writePresencePayload(peer, envelope));
  }

  peerLeft(room: string, peer: number): void {
    this.send(room, BusKind.SealedPeerLeft, writePeerPayload(peer));
  }

  async beforeLoad(room: string): Promise<void> {
    this.loading.set(room, []);
    const subscribed = this.link.subscribe(this.keys.sealedRoom(room), (m) => this.received(room, m));
    if (this.link.subscriberReady) await subscribed;
    else subscribed.catch((err: unknown) => this.log.warn({ err, room }, 'sealed room subscribe failed'));
  }

  afterLoad(room: SealedRoom): void {
    const buffered = this.loading.get(room.name) ?? [];
    this.loading.delete(room.name);
    for (const message of buffered) this.dispatch(room, message);
    this.send(room.name, BusKind.SealedPresenceQuery);
  }

  unloaded(room: string): void {
    this.loading.delete(room);
    this.link.unsubscribe(this.keys.sealedRoom(room));
  }

  private send(room: string, kind: BusKind, payload?: Uint8Array): boolean {
    return this.link.publish(this.keys.sealedRoom(room), writeBusFrame(kind, this.link.instance, payload));
  }

  private received(name: string, message: Buffer): void {
    const pending = this.loading.get(name);
    if (pending) return void pending.push(message);
    const room = this.registry?.rooms.get(name);
    if (room && !room.unloaded) this.dispatch(room, message);
  }

  private dispatch(room: SealedRoom, message: Buffer): void {
    const read = readBusFrame(message);
    if (!read.ok) return this.log.warn({ reason: read.reason, room: room.name }, 'malformed sealed bus frame dropped');
    if (read.frame.instance.equals(this.link.instance)) return;
    if (!this.apply(room, read.frame)) this.log.warn({ kind: read.frame.kind, room: room.name }, 'malformed sealed bus payload dropped');
  }

  /** false when the payload is malformed */
  private apply(room: SealedRoom, frame: BusFrame): boolean {
    switch (frame.kind) {
      case BusKind.SealedEntries: {
        const entries = readEntriesPayload(frame.payload);
        if (entries) room.deliver(entries);
        return entries !== null;
      }
      case BusKind.SealedPresence: {
        const p = readPresencePayload(frame.payload);
        if (p) room.setPresence(p.peer, p.envelope);
        return p !== null;
      }
      case BusKind.SealedPeerLeft: {
        const peer = readPeerPayload(frame.payload);
        if (peer !== null) room.remoteLeft(peer);
        return peer !== null;
      }
      case BusKind.SealedPresenceQuery:
        for (const peer of room.conns.keys()) {
          const p = room.presence.get(peer);
          if (p) this.presence(room.name, peer, p.envelope);
        }
        return true;
      case BusKind.SealedCheck:
        room.fillGap();
        return true;
      default:
        return true;
    }
  }

  /** After an outage: re-read every held room's tail; tell the others what we could not publish. */
  private catchUp(): void {
    for (const room of this.registry?.rooms.values() ?? []) room.fillGap();
    for (const room of this.missed) if (this.send(room, BusKind.SealedCheck)) this.missed.delete(room);
  }
}
