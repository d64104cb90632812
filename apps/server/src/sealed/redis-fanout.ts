/**
 * SealedFanout across instances through Redis (REDIS_URL), on the link signaling and relay share
 * (fanout/redis-link.ts): one channel per room, each instance subscribed only to the rooms it
 * holds. Moves bytes: a bus frame (fanout/bus-frame.ts, kinds 20-24, and SealedAt around those
 * published with their generation) around the payload, its own
 * frames dropped on the way back; what arrives goes to the room's handler. No message it
 * publishes is larger than REDIS_MAX_RELAY_MESSAGE_BYTES, as on the relay's channels
 * (fanout/redis-room-fanout.ts: one instance's subscriber carries all its rooms, and Redis cuts a
 * subscriber off past its pub/sub output buffer limit): the registry keeps its payloads within
 * `maxPayloadBytes` (sealed/remote-intake.ts), and `publish` refuses what is not.
 */
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { redisKeys, type RedisKeys } from '../fanout/redis-keys.js';
import type { RedisLink } from '../fanout/redis-link.js';
import { BUS_HEADER_BYTES, BusKind, GENERATION_BYTES, readBusFrame, readGenerationPayload, writeBusFrame, writeGenerationPayload } from '../fanout/bus-frame.js';
import { redisLinkFor } from '../fanout/scale-out.js';
import { LogBudget } from '@sync-suite/shared/node';
import { LocalSealedFanout, type SealedBusHandler, type SealedBusKind, type SealedFanout } from './fanout.js';

/** The sealed fan-out: local, or across instances through Redis. */
export async function createSealedFanout(app: FastifyInstance): Promise<SealedFanout> {
  const pending = redisLinkFor(app);
  if (!pending) return new LocalSealedFanout();
  const { REDIS_PREFIX, REDIS_MAX_RELAY_MESSAGE_BYTES } = app.sync.config;
  return new RedisSealedFanout(await pending, redisKeys(REDIS_PREFIX), app.sync.log.child({ component: 'sealed-bus' }), REDIS_MAX_RELAY_MESSAGE_BYTES);
}

/** refusal lines per kind per interval (LogBudget) */
const REFUSAL_LINES = 3;
const REFUSAL_INTERVAL_MS = 60_000;

/** what a notice's payload may hold (a seq or a peer id, as varUints) */
const SMALL_PAYLOAD_BYTES = 10;
/** a SealedAt frame's bytes before the sealed payload: the generation and the kind */
const AT_PREFIX_BYTES = GENERATION_BYTES + 1;

const TO_BUS: Record<SealedBusKind, BusKind> = {
  entries: BusKind.SealedEntries,
  presence: BusKind.SealedPresence,
  'peer-left': BusKind.SealedPeerLeft,
  'presence-query': BusKind.SealedPresenceQuery,
  check: BusKind.SealedCheck,
};
const FROM_BUS = new Map<BusKind, SealedBusKind>(Object.entries(TO_BUS).map(([k, v]) => [v, k as SealedBusKind]));

export class RedisSealedFanout implements SealedFanout {
  private readonly handlers = new Map<string, SealedBusHandler>();
  readonly maxPayloadBytes: number;
  /** what a client's message can trigger is logged within a budget */
  private readonly refusals: LogBudget;

  constructor(
    private readonly link: RedisLink,
    private readonly keys: RedisKeys,
    private readonly log: FastifyBaseLogger,
    /** largest bus frame published (REDIS_MAX_RELAY_MESSAGE_BYTES) */
    maxMessageBytes: number,
  ) {
    this.maxPayloadBytes = maxMessageBytes - BUS_HEADER_BYTES - AT_PREFIX_BYTES;
    this.refusals = new LogBudget(log, REFUSAL_LINES, REFUSAL_INTERVAL_MS);
  }

  publish(room: string, kind: SealedBusKind, payload?: Uint8Array, generation?: number): boolean {
    // A notice (check, presence-query, peer-left) is a few bytes: it goes out whatever the bound.
    if (payload && payload.length > Math.max(this.maxPayloadBytes, SMALL_PAYLOAD_BYTES)) {
      this.refusals.warn('sealed message larger than REDIS_MAX_RELAY_MESSAGE_BYTES not published', { room, kind, bytes: payload.length + BUS_HEADER_BYTES + AT_PREFIX_BYTES, limit: this.maxPayloadBytes + BUS_HEADER_BYTES + AT_PREFIX_BYTES });
      return false;
    }
    const frame = generation === undefined
      ? writeBusFrame(TO_BUS[kind], this.link.instance, payload)
      : writeBusFrame(BusKind.SealedAt, this.link.instance, writeGenerationPayload(generation, Uint8Array.of(TO_BUS[kind]), payload ?? new Uint8Array(0)));
    return this.link.publish(this.keys.sealedRoom(room), frame);
  }

  async subscribe(room: string, handler: SealedBusHandler): Promise<void> {
    this.handlers.set(room, handler);
    const subscribed = this.link.subscribe(this.keys.sealedRoom(room), (m) => this.received(room, m));
    // During an outage, go on: the catch-up after the reconnect re-reads storage.
    if (this.link.subscriberReady) await subscribed;
    else subscribed.catch((err: unknown) => this.log.warn({ err, room }, 'sealed room subscribe failed'));
  }

  unsubscribe(room: string): void {
    this.handlers.delete(room);
    this.link.unsubscribe(this.keys.sealedRoom(room));
  }

  onResync(handler: () => void): void {
    this.link.onResync(handler);
  }

  private received(room: string, message: Buffer): void {
    const handler = this.handlers.get(room);
    if (!handler) return;
    const read = readBusFrame(message);
    if (!read.ok) return this.log.warn({ reason: read.reason, room }, 'malformed sealed bus frame dropped');
    if (read.frame.instance.equals(this.link.instance)) return; // ours: delivered here already
    if (read.frame.kind !== BusKind.SealedAt) {
      const kind = FROM_BUS.get(read.frame.kind);
      if (kind) handler(kind, read.frame.payload);
      return;
    }
    const at = readGenerationPayload(read.frame.payload);
    if (!at || at.message.length === 0) return this.log.warn({ reason: 'generation', room }, 'malformed sealed bus frame dropped');
    // a kind of a later version: dropped quietly, as this version's SealedAt by the one before
    const kind = FROM_BUS.get(at.message[0] as BusKind);
    if (kind) handler(kind, at.message.subarray(1), at.generation);
  }
}
