/** In-process sealed storage for tests and throwaway servers: nothing survives the process. */
import { StoreNotReadyError } from '../../relay/persistence/types.js';
import { cursorSkipsSnapshot, EMPTY_READ, entriesWithin, newSealedGeneration, otherSealedGeneration, SEALED_FENCED, sealedStoredBytes, snapshotMayReplace, type SealedAppend, type SealedFenced, type SealedGeneration, type SealedRoomFigures, type SealedRead, type SealedRoomStats, type SealedSnapshot, type SealedStore } from './types.js';

interface MemoryRoom {
  generation: number;
  /** every generation a purge of the room ended */
  deleted: Set<number>;
  head: number;
  snapshot: SealedSnapshot | null;
  entries: Array<{ seq: number; envelope: Uint8Array }>;
  /** bytes of `entries`, kept as they change (stats is O(1) on every engine) */
  entryBytes: number;
  changedAt: number | null;
}

export class MemorySealedStore implements SealedStore {
  readonly engine = 'memory';
  private rooms: Map<string, MemoryRoom> | null = null;

  async init(): Promise<void> {
    this.rooms ??= new Map();
  }

  async append(batches: readonly SealedAppend[]): Promise<Array<number | SealedFenced>> {
    const rooms = this.open();
    return batches.map(({ room, envelopes, generation }) => {
      if (generation !== undefined && rooms.get(room)?.generation !== generation) return SEALED_FENCED;
      const stored = this.row(room);
      const first = stored.head + 1;
      // Copies: callers may reuse their buffers.
      for (const envelope of envelopes) {
        stored.entries.push({ seq: ++stored.head, envelope: Uint8Array.from(envelope) });
        stored.entryBytes += envelope.length;
      }
      if (envelopes.length > 0) stored.changedAt = Date.now();
      return first;
    });
  }

  async read(room: string, cursor: number, limit = Infinity, maxBytes = Infinity): Promise<SealedRead> {
    const stored = this.open().get(room);
    if (!stored) return EMPTY_READ;
    const covers = stored.snapshot?.covers ?? 0;
    const skip = cursorSkipsSnapshot(cursor, covers, stored.head);
    const after = skip ? cursor : covers;
    const page = stored.entries.filter((e) => e.seq > after).slice(0, limit);
    const entries = page.slice(0, entriesWithin(page.map((e) => e.envelope.length), maxBytes));
    return { snapshot: skip ? null : stored.snapshot, entries, head: stored.head, generation: stored.generation };
  }

  async replaceWithSnapshot(room: string, covers: number, envelope: Uint8Array, generation?: number, refuted?: number): Promise<boolean | SealedFenced> {
    const stored = this.open().get(room);
    if (generation !== undefined && stored?.generation !== generation) return SEALED_FENCED;
    if (!stored || !snapshotMayReplace(covers, stored.snapshot?.covers ?? 0, stored.head, refuted)) return false;
    stored.snapshot = { covers, envelope: Uint8Array.from(envelope) };
    stored.entries = stored.entries.filter((e) => e.seq > covers);
    stored.entryBytes = stored.entries.reduce((n, e) => n + e.envelope.length, 0);
    return true;
  }

  async stats(room: string): Promise<SealedRoomStats> {
    const stored = this.open().get(room);
    if (!stored) return { head: 0, snapshotCovers: 0, entries: 0, bytes: 0, generation: 0 };
    const bytes = sealedStoredBytes(stored.entries.length, stored.entryBytes, stored.snapshot?.envelope.length ?? null);
    return { head: stored.head, snapshotCovers: stored.snapshot?.covers ?? 0, entries: stored.entries.length, bytes, generation: stored.generation };
  }

  /**
   * Bytes held, for the status page. Only this engine has it: on SQLite and PostgreSQL the sealed
   * rooms live in the relay's database, which the relay store measures (relay/persistence/types.ts).
   */
  async storageBytes(): Promise<number> {
    let bytes = 0;
    for (const room of this.open().keys()) bytes += (await this.stats(room)).bytes;
    return bytes;
  }

  async listRooms(prefix: string, after: string, limit: number): Promise<SealedRoomFigures[]> {
    // Room names are ASCII: string order is byte order.
    const names = [...this.open().keys()].filter((r) => r > after && r.startsWith(prefix)).sort();
    const out: SealedRoomFigures[] = [];
    for (const name of names) {
      if (out.length >= limit) break;
      const figures = await this.statRoom(name);
      if (figures) out.push(figures);
    }
    return out;
  }

  async statRoom(room: string): Promise<SealedRoomFigures | null> {
    const stored = this.open().get(room);
    if (!stored || stored.head === 0) return null;
    const { bytes, entries } = await this.stats(room);
    return { room, bytes, entries: entries + (stored.snapshot ? 1 : 0), lastChangeAt: stored.changedAt };
  }

  async generation(room: string): Promise<SealedGeneration> {
    return { current: this.row(room).generation };
  }

  async generationDeleted(room: string, generation: number): Promise<boolean> {
    return this.open().get(room)?.deleted.has(generation) ?? false;
  }

  async purgeRoom(room: string): Promise<void> {
    const rooms = this.open();
    const stored = rooms.get(room);
    if (!stored) return;
    stored.deleted.add(stored.generation);
    rooms.set(room, emptyRoom(newSealedGeneration(), stored.deleted));
  }

  async redrawGenerations(): Promise<number> {
    const rooms = this.open();
    for (const stored of rooms.values()) stored.generation = otherSealedGeneration(stored.generation);
    return rooms.size;
  }

  async check(): Promise<void> {
    this.open();
  }

  async close(): Promise<void> {
    this.rooms = null;
  }

  /** The room's row, made (with a new generation) if it has none. */
  private row(room: string): MemoryRoom {
    const rooms = this.open();
    let stored = rooms.get(room);
    if (!stored) rooms.set(room, (stored = emptyRoom(newSealedGeneration(), new Set())));
    return stored;
  }

  private open(): Map<string, MemoryRoom> {
    if (!this.rooms) throw new StoreNotReadyError(this.engine);
    return this.rooms;
  }
}

/** A row with nothing stored, in `generation` (`deleted`: the generations purges ended). */
function emptyRoom(generation: number, deleted: Set<number>): MemoryRoom {
  return { generation, deleted, head: 0, snapshot: null, entries: [], entryBytes: 0, changedAt: null };
}
