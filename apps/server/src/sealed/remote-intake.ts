/**
 * The sealed registry's side of the fan-out (sealed/fanout.ts moves the bytes): what this
 * instance tells the others (committed entries, presence, peer-left, encoded by
 * sealed/bus-payload.ts), and what they tell, handed to the room. A room subscribes before its
 * head is read from storage and holds what arrives until it is loaded; after an outage every
 * held room re-reads its tail, and the rooms whose entries could not be published are announced.
 * A commit goes out in payloads within the fan-out's bound; an envelope too large for one alone
 * is announced by the commit's last seq (a check), and the others read it from storage, as they
 * read any gap (sealed/room.ts fillGap): it was committed before it was published.
 * Entries and checks name the room's generation they were committed in, and only those of the
 * room's generation here are applied: entries committed just before a delete and published after
 * it (the instance slow) never reach the new room's devices as entries of its new log, whose seqs
 * start again from 1. One of another generation makes storage's generation read: the room here
 * behind it is re-read (resync: dropped as moved); otherwise the message is of a deleted
 * generation, dropped and counted. Messages of the version before name none: applied as before.
 */
import type { FastifyBaseLogger } from 'fastify';
import { ReportGate, type ServerMetrics } from '@sync-suite/shared/node';
import { entriesPayloads, readCheckPayload, readEntriesPayload, readPeerPayload, readPresencePayload, writeCheckPayload, writePeerPayload, writePresencePayload } from './bus-payload.js';
import type { SealedBusKind, SealedFanout } from './fanout.js';
import type { SealedRoom } from './room.js';
import type { SealedGeneration } from './store/types.js';

/** at most one warning per room per interval for messages of a deleted generation */
const STALE_REPORT_MS = 60_000;
/** rooms remembered for that (past it the memory starts again: a few more lines) */
const STALE_REMEMBERED = 1000;

export interface SealedRemoteOptions {
  fanout: SealedFanout;
  /** the rooms in memory (the registry's) */
  rooms: ReadonlyMap<string, SealedRoom>;
  log: FastifyBaseLogger;
  /** after an outage, for each held room: re-read its tail (room.fillGap by default; the registry checks the generation first) */
  resync?: (room: SealedRoom) => void;
  /** the room's generation in storage, read when a message names another one than the room's here (absent: such messages are applied) */
  readGeneration?: (room: string) => Promise<SealedGeneration>;
  /** counts messages of a deleted generation (sync_storage_errors_total{op="sealed_stale_entries"}) */
  metrics?: ServerMetrics;
}

export class SealedRemote {
  /** rooms being read from storage, with what other instances told meanwhile */
  private readonly arriving = new Map<string, Array<{ kind: SealedBusKind; payload: Uint8Array; generation: number | undefined }>>();
  /** rooms whose committed entries could not be published, with the generation they were committed in */
  private readonly missed = new Map<string, number | undefined>();
  /** storage's generation of a room, while it is read for a message of another one (one read per room at a time) */
  private readonly reading = new WeakMap<SealedRoom, Promise<number | null>>();
  /** rooms whose messages of a deleted generation were logged lately */
  private readonly staleReports = new ReportGate(STALE_REPORT_MS, STALE_REMEMBERED);

  constructor(private readonly opts: SealedRemoteOptions) {
    opts.fanout.onResync(() => this.catchUp());
  }

  /** Before the room's head is read from storage: listen, and hold back what arrives. */
  async subscribe(name: string): Promise<void> {
    this.arriving.set(name, []);
    await this.opts.fanout.subscribe(name, (kind, payload, generation) => this.received(name, kind, payload, generation));
  }

  /** The room is in memory: apply what arrived while it loaded, ask the others for their presence. */
  loaded(room: SealedRoom): void {
    const arrived = this.arriving.get(room.name) ?? [];
    this.arriving.delete(room.name);
    for (const { kind, payload, generation } of arrived) this.received(room.name, kind, payload, generation);
    this.opts.fanout.publish(room.name, 'presence-query');
  }

  /** The room left memory, or failed to load. */
  unsubscribe(name: string): void {
    this.arriving.delete(name);
    this.opts.fanout.unsubscribe(name);
  }

  /** Committed entries (after the commit, with their seq), in `generation` (undefined: not known, as tests enqueue). */
  entries(room: string, firstSeq: number, envelopes: readonly Uint8Array[], generation?: number): void {
    const { payloads, complete } = entriesPayloads(firstSeq, envelopes, this.opts.fanout.maxPayloadBytes);
    let sent = true;
    for (const payload of payloads) sent = this.opts.fanout.publish(room, 'entries', payload, generation) && sent;
    if (!complete) sent = this.opts.fanout.publish(room, 'check', writeCheckPayload(firstSeq + envelopes.length - 1), generation) && sent;
    if (!sent) this.missed.set(room, generation);
  }

  presence(room: string, peer: number, envelope: Uint8Array): void {
    this.opts.fanout.publish(room, 'presence', writePresencePayload(peer, envelope));
  }

  peerLeft(room: string, peer: number): void {
    this.opts.fanout.publish(room, 'peer-left', writePeerPayload(peer));
  }

  private received(name: string, kind: SealedBusKind, payload: Uint8Array, generation: number | undefined): void {
    const pending = this.arriving.get(name);
    if (pending) return void pending.push({ kind, payload, generation });
    const room = this.opts.rooms.get(name);
    if (!room || room.unloaded) return;
    if (generation !== undefined && !this.ofRoom(room, generation)) return;
    if (!this.apply(room, kind, payload)) this.opts.log.warn({ kind, room: name }, 'malformed sealed bus payload dropped');
  }

  /**
   * Whether a message committed in `generation` is of the room's generation here: the one its
   * devices were welcomed in, else the one its head was read in at load (0, no row then: not
   * known, applied). If not, it is not applied, and storage's generation says why: the room here
   * is behind (a delete this instance missed): re-read as after an outage (the registry's resync
   * drops it as moved); or the message is of a deleted generation (committed just before the
   * delete, published after it): counted, and logged at most once per room per STALE_REPORT_MS.
   */
  private ofRoom(room: SealedRoom, generation: number): boolean {
    const current = room.logGeneration;
    const { readGeneration } = this.opts;
    if (current === 0 || current === generation || !readGeneration) return true;
    let read = this.reading.get(room);
    if (!read) {
      const started = readGeneration(room.name).then((g) => g.current, () => null);
      read = started;
      this.reading.set(room, started);
      void started.then(() => {
        if (this.reading.get(room) === started) this.reading.delete(room);
      });
    }
    void read.then((stored) => {
      if (room.unloaded) return;
      if (stored === current) return this.stale(room.name, generation);
      // the room here is behind, or storage did not answer: the resync reads again (and retries)
      this.resync(room);
    });
    return false;
  }

  private stale(room: string, generation: number): void {
    this.opts.metrics?.storageErrors.inc({ op: 'sealed_stale_entries' });
    if (this.staleReports.shouldReport(room)) this.opts.log.warn({ room, generation }, 'sealed entries from another instance of a deleted generation of the room dropped');
  }

  /** false when the payload is malformed */
  private apply(room: SealedRoom, kind: SealedBusKind, payload: Uint8Array): boolean {
    switch (kind) {
      case 'entries': {
        const entries = readEntriesPayload(payload);
        if (entries) room.deliver(entries);
        return entries !== null;
      }
      case 'presence': {
        const p = readPresencePayload(payload);
        if (p) room.setPresence(p.peer, p.envelope);
        return p !== null;
      }
      case 'peer-left': {
        const peer = readPeerPayload(payload);
        if (peer !== null) room.remoteLeft(peer);
        return peer !== null;
      }
      case 'presence-query':
        for (const peer of room.conns.keys()) {
          const p = room.presence.get(peer);
          if (p) this.presence(room.name, peer, p.envelope);
        }
        return true;
      case 'check': {
        // a last seq this room has delivered already: nothing to read
        const through = readCheckPayload(payload);
        if (through !== null && through > room.head) room.fillGap();
        return through !== null;
      }
    }
  }

  /** After an outage: re-read every held room's tail; tell the others what we could not publish. */
  private catchUp(): void {
    for (const room of this.opts.rooms.values()) this.resync(room);
    for (const [room, generation] of this.missed) if (this.opts.fanout.publish(room, 'check', undefined, generation)) this.missed.delete(room);
  }

  /** Re-reads the room's tail (the registry's resync checks its generation first). */
  private resync(room: SealedRoom): void {
    if (this.opts.resync) this.opts.resync(room);
    else room.fillGap();
  }
}
