/** In-process storage for tests and throwaway servers: nothing survives the process. */
import type { Revocation } from '../../auth/revocations.js';
import { MemoryOutbox } from '../../webhooks/outbox/memory.js';
import { RELAY_FENCED, StoreNotReadyError, type AppendBatch, type Compaction, type RelayFenced, type EngineStore, type StoredRoom, type StoredRoomStat } from './types.js';

interface MemoryRoom {
  snapshot: Uint8Array | null;
  snapshotSeq: number;
  stamp: Uint8Array | null;
  log: Array<{ seq: number; update: Uint8Array }>;
  changedAt: number | null;
}

export class MemoryStore implements EngineStore {
  readonly engine = 'memory';
  private rooms: Map<string, MemoryRoom> | null = null;
  /** each purged room's generation (types.ts); absent: 0. Kept when the purge drops the room. */
  private readonly generations = new Map<string, number>();
  private seq = 0;
  private revocations: Revocation[] = [];
  private readonly outbox = new MemoryOutbox();

  async init(): Promise<void> {
    this.rooms ??= new Map();
  }

  async load(room: string): Promise<StoredRoom> {
    const stored = this.open().get(room);
    const generation = this.generation(room);
    if (!stored) return { snapshot: null, snapshotSeq: 0, updates: [], lastSeq: 0, generation };
    const last = stored.log.at(-1);
    return {
      generation,
      snapshot: stored.snapshot,
      snapshotSeq: stored.snapshotSeq,
      ...(stored.stamp ? { snapshotStamp: stored.stamp } : {}),
      updates: stored.log.map((e) => e.update),
      lastSeq: last ? last.seq : stored.snapshotSeq,
    };
  }

  async append(batches: readonly AppendBatch[]): Promise<string[]> {
    const rooms = this.open();
    const fenced: string[] = [];
    for (const { room, updates, generation } of batches) {
      if (this.namesAnother(room, generation)) {
        fenced.push(room);
        continue;
      }
      let stored = rooms.get(room);
      if (!stored) rooms.set(room, (stored = { snapshot: null, snapshotSeq: 0, stamp: null, log: [], changedAt: null }));
      if (updates.length > 0) stored.changedAt = Date.now();
      // Copies: callers may reuse their buffers.
      for (const update of updates) stored.log.push({ seq: ++this.seq, update: Uint8Array.from(update) });
    }
    return fenced;
  }

  async compact(room: string, { snapshot, throughSeq, stamp, keep = [], generation }: Compaction): Promise<RelayFenced | undefined> {
    const stored = this.open().get(room);
    if (this.namesAnother(room, generation)) return RELAY_FENCED;
    if (!stored || stored.snapshotSeq >= throughSeq) return undefined;
    stored.snapshot = Uint8Array.from(snapshot);
    stored.stamp = stamp ? Uint8Array.from(stamp) : null;
    stored.snapshotSeq = throughSeq;
    stored.log = stored.log.filter((e) => e.seq > throughSeq);
    for (const update of keep) stored.log.push({ seq: ++this.seq, update: Uint8Array.from(update) });
    return undefined;
  }

  /** A write naming `generation` (absent: none) of a room now in another one: refused. */
  private namesAnother(room: string, generation: number | undefined): boolean {
    return generation !== undefined && generation !== this.generation(room);
  }

  private generation(room: string): number {
    return this.generations.get(room) ?? 0;
  }

  async check(): Promise<void> {
    this.open();
  }

  async listRooms(prefix: string, after: string, limit: number): Promise<StoredRoomStat[]> {
    const names = [...this.open().keys()].filter((r) => r > after && r.startsWith(prefix)).sort(byteOrder);
    const out: StoredRoomStat[] = [];
    for (const name of names) {
      if (out.length >= limit) break;
      const stat = await this.statRoom(name);
      if (stat) out.push(stat);
    }
    return out;
  }

  async statRoom(room: string): Promise<StoredRoomStat | null> {
    const stored = this.open().get(room);
    if (!stored || (stored.snapshot === null && stored.log.length === 0)) return null;
    const logBytes = stored.log.reduce((n, e) => n + e.update.length, 0);
    return {
      room,
      bytes: logBytes + (stored.snapshot?.length ?? 0),
      entries: stored.log.length + (stored.snapshot ? 1 : 0),
      lastChangeAt: stored.changedAt,
    };
  }

  async purgeRoom(room: string): Promise<number> {
    this.open().delete(room);
    const next = this.generation(room) + 1;
    this.generations.set(room, next);
    return next;
  }

  async saveRevocation(r: Revocation): Promise<void> {
    this.open();
    this.revocations.push({ ...r });
  }

  async loadRevocations(now: number): Promise<Revocation[]> {
    this.open();
    this.revocations = this.revocations.filter((r) => r.until > now);
    return this.revocations.map((r) => ({ ...r }));
  }

  webhookOutbox(): MemoryOutbox {
    return this.outbox;
  }

  async close(): Promise<void> {
    this.rooms = null;
  }

  async storageBytes(): Promise<number> {
    let bytes = 0;
    for (const stored of this.open().values()) {
      bytes += stored.snapshot?.length ?? 0;
      for (const e of stored.log) bytes += e.update.length;
    }
    return bytes;
  }

  private open(): Map<string, MemoryRoom> {
    if (!this.rooms) throw new StoreNotReadyError(this.engine);
    return this.rooms;
  }
}

function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
