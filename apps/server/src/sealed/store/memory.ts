/** In-process sealed storage for tests and throwaway servers: nothing survives the process. */
import { StoreNotReadyError } from '../../relay/persistence/types.js';
import { cursorSkipsSnapshot, EMPTY_READ, newSealedGeneration, sealedStoredBytes, type SealedAppend, type SealedGeneration, type SealedRoomFigures, type SealedRead, type SealedRoomStats, type SealedSnapshot, type SealedStore } from './types.js';

interface MemoryRoom {
  generation: number;
  /** the generation the last purge ended (0: none) */
  deletedGeneration: number;
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

  async append(batches: readonly SealedAppend[]): Promise<number[]> {
    this.open();
    return batches.map(({ room, envelopes }) => {
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

  async read(room: string, cursor: number, limit = Infinity): Promise<SealedRead> {
    const stored = this.open().get(room);
    if (!stored) return EMPTY_READ;
    const covers = stored.snapshot?.covers ?? 0;
    const skip = cursorSkipsSnapshot(cursor, covers, stored.head);
    const after = skip ? cursor : covers;
    return { snapshot: skip ? null : stored.snapshot, entries: stored.entries.filter((e) => e.seq > after).slice(0, limit), head: stored.head };
  }

  async replaceWithSnapshot(room: string, covers: number, envelope: Uint8Array): Promise<boolean> {
    const stored = this.open().get(room);
    if (!stored || covers <= (stored.snapshot?.covers ?? 0) || covers > stored.head) return false;
    stored.snapshot = { covers, envelope: Uint8Array.from(envelope) };
    stored.entries = stored.entries.filter((e) => e.seq > covers);
    stored.entryBytes = stored.entries.reduce((n, e) => n + e.envelope.length, 0);
    return true;
  }

  async stats(room: string): Promise<SealedRoomStats> {
    const stored = this.open().get(room);
    if (!stored) return { head: 0, snapshotCovers: 0, entries: 0, bytes: 0 };
    const bytes = sealedStoredBytes(stored.entries.length, stored.entryBytes, stored.snapshot?.envelope.length ?? null);
    return { head: stored.head, snapshotCovers: stored.snapshot?.covers ?? 0, entries: stored.entries.length, bytes };
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
    const { generation, deletedGeneration } = this.row(room);
    return { current: generation, deleted: deletedGeneration };
  }

  async purgeRoom(room: string, endGeneration = true): Promise<void> {
    const rooms = this.open();
    const stored = rooms.get(room);
    // a generation is ended only if something was stored in it: a second purge (every instance
    // purges) keeps the first one's
    if (!stored || stored.head === 0) return;
    rooms.set(room, endGeneration ? emptyRoom(newSealedGeneration(), stored.generation) : emptyRoom(stored.generation, stored.deletedGeneration));
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
    if (!stored) rooms.set(room, (stored = emptyRoom(newSealedGeneration(), 0)));
    return stored;
  }

  private open(): Map<string, MemoryRoom> {
    if (!this.rooms) throw new StoreNotReadyError(this.engine);
    return this.rooms;
  }
}

/** A row with nothing stored, in `generation` (`deleted`: the one a purge ended, or 0). */
function emptyRoom(generation: number, deleted: number): MemoryRoom {
  return { generation, deletedGeneration: deleted, head: 0, snapshot: null, entries: [], entryBytes: 0, changedAt: null };
}
