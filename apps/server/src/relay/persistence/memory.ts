/** In-process storage for tests and throwaway servers: nothing survives the process. */
import { StoreNotReadyError, type AppendBatch, type DocStore, type StoredRoom } from './types.js';

interface MemoryRoom {
  snapshot: Uint8Array | null;
  snapshotSeq: number;
  log: Array<{ seq: number; update: Uint8Array }>;
}

export class MemoryStore implements DocStore {
  readonly engine = 'memory';
  private rooms: Map<string, MemoryRoom> | null = null;
  private seq = 0;

  async init(): Promise<void> {
    this.rooms ??= new Map();
  }

  async load(room: string): Promise<StoredRoom> {
    const stored = this.open().get(room);
    if (!stored) return { snapshot: null, snapshotSeq: 0, updates: [], lastSeq: 0 };
    const last = stored.log.at(-1);
    return {
      snapshot: stored.snapshot,
      snapshotSeq: stored.snapshotSeq,
      updates: stored.log.map((e) => e.update),
      lastSeq: last ? last.seq : stored.snapshotSeq,
    };
  }

  async append(batches: readonly AppendBatch[]): Promise<void> {
    const rooms = this.open();
    for (const { room, updates } of batches) {
      let stored = rooms.get(room);
      if (!stored) rooms.set(room, (stored = { snapshot: null, snapshotSeq: 0, log: [] }));
      // Copies: callers may reuse their buffers.
      for (const update of updates) stored.log.push({ seq: ++this.seq, update: Uint8Array.from(update) });
    }
  }

  async compact(room: string, snapshot: Uint8Array, throughSeq: number): Promise<void> {
    const stored = this.open().get(room);
    if (!stored || stored.snapshotSeq >= throughSeq) return;
    stored.snapshot = Uint8Array.from(snapshot);
    stored.snapshotSeq = throughSeq;
    stored.log = stored.log.filter((e) => e.seq > throughSeq);
  }

  async check(): Promise<void> {
    this.open();
  }

  async close(): Promise<void> {
    this.rooms = null;
  }

  private open(): Map<string, MemoryRoom> {
    if (!this.rooms) throw new StoreNotReadyError(this.engine);
    return this.rooms;
  }
}
