/**
 * RoomFanout across instances, over one Redis channel per room. Each instance subscribes only to
 * the rooms it holds. Updates are published after they are committed (RoomFanout.committed),
 * awareness at once. Knows bytes and room names only: what arrives goes to the room's handler
 * (relay/room-registry.ts applies it). After a Redis outage the resync handlers run, and the
 * rooms whose commits could not be published are announced for re-reading.
 *
 * Every relay message on the bus is at most `maxMessageBytes` (REDIS_MAX_RELAY_MESSAGE_BYTES):
 * a commit's updates go out merged in batches that fit, and a commit holding an update that does
 * not fit is announced with a RelayReload notice instead (the others read the room from storage,
 * which holds it: updates are published only once committed). Each update message names the
 * generation its updates were committed in (bus-frame.ts RelayUpdateAt; RelayUpdate for 0, as the
 * version before publishes every update): the receiver applies only its room's
 * (relay/remote-intake.ts), so a commit made just before a delete and published after it never
 * reaches the room's new life. Redis closes a subscriber whose
 * pending output passes its pub/sub buffer limit (32 MB by default), and that connection carries
 * every room, topic and admin message of an instance. Received frames above the bound are not
 * applied either: they are treated as the notice. An awareness message over the bound (a room's
 * every state answering a query, or one client id repeated in one message) goes out as one
 * entry per client id, in messages that fit.
 */
import * as Y from 'yjs';
import type { FastifyBaseLogger } from 'fastify';
import { LogBudget } from '@sync-suite/shared/node';
import { encodeAwarenessEntries, encodeRelayMessage, readRelayMessage, writeRelayAwareness, writeRelayUpdate } from '@sync-suite/shared';
import type { FanoutKind, RemoteHandler, RoomFanout } from '../relay/fanout.js';
import { readPresence, type PresenceEntry, type PresenceLimits } from '../relay/presence.js';
import { BUS_HEADER_BYTES, BusKind, readBusFrame, readGenerationPayload, writeBusFrame, writeGenerationPayload } from './bus-frame.js';
import type { RedisKeys } from './redis-keys.js';
import type { RedisLink } from './redis-link.js';

/** bus header, generation, relay message type and the update's length prefix, at most */
const FRAME_OVERHEAD = 64;
/** an awareness entry's client id, clock and state length, at most */
const ENTRY_OVERHEAD = 25;
/** awareness being split was checked when it arrived: read it whole */
const OPEN: PresenceLimits = { maxStateBytes: Number.POSITIVE_INFINITY, maxStatesPerConnection: Number.POSITIVE_INFINITY, maxValueDepth: Number.POSITIVE_INFINITY, maxEntries: Number.POSITIVE_INFINITY };

export interface RedisRoomFanoutOptions {
  link: RedisLink;
  keys: RedisKeys;
  log: FastifyBaseLogger;
  /** largest bus frame this instance publishes or applies (REDIS_MAX_RELAY_MESSAGE_BYTES) */
  maxMessageBytes: number;
}

export class RedisRoomFanout implements RoomFanout {
  readonly awaitsCommit = true;
  private readonly handlers = new Map<string, RemoteHandler>();
  private readonly resyncs: Array<() => void> = [];
  /** rooms whose committed updates could not be published (Redis down) */
  private readonly missed = new Set<string>();
  /** what a client's message can trigger is logged within a budget (3 lines a minute) */
  private readonly refusals: LogBudget;

  constructor(private readonly opts: RedisRoomFanoutOptions) {
    this.refusals = new LogBudget(opts.log, 3, 60_000);
    opts.link.onResync(() => this.catchUp());
  }

  publish(room: string, message: Uint8Array, kind: FanoutKind): void {
    if (kind !== 'awareness') return;
    if (message.length + BUS_HEADER_BYTES <= this.opts.maxMessageBytes) return void this.send(room, BusKind.RelayAwareness, message);
    for (const part of this.awarenessParts(room, message)) this.send(room, BusKind.RelayAwareness, part);
  }

  /**
   * An awareness message over the bound as messages within it: one entry per client id (the one
   * y-protocols would keep: the highest clock, a removal on a tie), packed in order. An entry
   * alone over the bound (RELAY_MAX_AWARENESS_BYTES above it) is not published.
   */
  private awarenessParts(room: string, message: Uint8Array): Uint8Array[] {
    const decoded = readRelayMessage(message);
    if (!decoded.ok || decoded.message.type !== 'awareness') return [];
    const latest = new Map<number, PresenceEntry>();
    for (const e of readPresence(decoded.message.update, OPEN)) {
      const prev = latest.get(e.clientID);
      if (!prev || e.clock > prev.clock || (e.clock === prev.clock && e.removed && !prev.removed)) latest.set(e.clientID, e);
    }
    const space = this.opts.maxMessageBytes - FRAME_OVERHEAD;
    const parts: Uint8Array[] = [];
    let chunk: PresenceEntry[] = [];
    let bytes = 0;
    const flush = (): void => {
      if (chunk.length > 0) parts.push(encodeRelayMessage((e) => writeRelayAwareness(e, encodeAwarenessEntries(chunk))));
      chunk = [];
      bytes = 0;
    };
    for (const entry of latest.values()) {
      const size = entry.json.length + ENTRY_OVERHEAD;
      if (size > space) {
        this.refusals.warn('presence state larger than REDIS_MAX_RELAY_MESSAGE_BYTES not published', { room, bytes: size, limit: this.opts.maxMessageBytes });
        continue;
      }
      if (bytes + size > space) flush();
      chunk.push(entry);
      bytes += size;
    }
    flush();
    return parts;
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

  /**
   * After a commit: the room's updates merged into as few messages as fit in maxMessageBytes,
   * or, when one of them does not fit, one notice to read the room from storage.
   */
  committed(room: string, updates: readonly Uint8Array[], generation?: number): void {
    if (updates.length === 0) return;
    const frames = this.updateFrames(updates, generation);
    if (!frames) return this.reload(room);
    for (const frame of frames) if (!this.opts.link.publish(this.opts.keys.relayRoom(room), frame)) this.missed.add(room);
  }

  /** The bus frames carrying `updates`, each within the bound; null when one update alone is over it. */
  private updateFrames(updates: readonly Uint8Array[], generation: number | undefined): Buffer[] | null {
    const max = this.opts.maxMessageBytes;
    const frames: Buffer[] = [];
    let batch: Uint8Array[] = [];
    let bytes = 0;
    const flush = (): boolean => {
      if (batch.length === 0) return true;
      const merged = batch.length === 1 ? (batch[0] as Uint8Array) : Y.mergeUpdates(batch);
      batch = [];
      bytes = 0;
      const message = encodeRelayMessage((e) => writeRelayUpdate(e, merged));
      // Generation 0 (or none named) as the version before publishes it: its instances apply it during a rolling upgrade.
      const frame = generation !== undefined && generation > 0
        ? writeBusFrame(BusKind.RelayUpdateAt, this.opts.link.instance, writeGenerationPayload(generation, message))
        : writeBusFrame(BusKind.RelayUpdate, this.opts.link.instance, message);
      if (frame.length > max) return false; // a merge is about the sum of its parts: only a single update gets here
      frames.push(frame);
      return true;
    };
    for (const update of updates) {
      if (bytes + update.length + FRAME_OVERHEAD > max && !flush()) return null;
      batch.push(update);
      bytes += update.length;
    }
    return flush() ? frames : null;
  }

  /** Tells the others to read the room from storage (recorded for after the outage when Redis is down). */
  private reload(room: string): void {
    if (!this.send(room, BusKind.RelayReload)) this.missed.add(room);
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
    // Not ours to publish that large (an older or misconfigured instance): what it held is in storage.
    const update = frame.kind === BusKind.RelayUpdate || frame.kind === BusKind.RelayUpdateAt;
    if (message.length > this.opts.maxMessageBytes && update) return handler({ kind: 'reload' });
    switch (frame.kind) {
      case BusKind.RelayUpdate:
        return handler({ kind: 'update', payload: frame.payload, generation: undefined });
      case BusKind.RelayUpdateAt: {
        const at = readGenerationPayload(frame.payload);
        if (!at) return this.opts.log.warn({ reason: 'generation', room }, 'malformed relay bus frame dropped');
        return handler({ kind: 'update', payload: at.message, generation: at.generation });
      }
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
