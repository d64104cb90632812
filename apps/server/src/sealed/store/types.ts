/**
 * The storage contract for sealed rooms: per room, a log of opaque envelopes numbered by a
 * per-room sequence (1, 2, 3, ... with no gaps) and at most one snapshot envelope that covers
 * every entry up to `covers`. One file per engine implements it (memory.ts, sqlite.ts,
 * postgres.ts); apps/server/test/sealed-store-contract.ts runs the same suite on each.
 *
 * Sequence numbers are drawn inside the appending transaction under the room's lock, so a
 * room's entries become visible in increasing order: a reader that has seen seq N never later
 * finds a smaller one appear. That is what makes snapshot replacement and cursors safe.
 */

export interface SealedEntry {
  seq: number;
  envelope: Uint8Array;
}

export interface SealedSnapshot {
  covers: number;
  envelope: Uint8Array;
}

export interface SealedAppend {
  room: string;
  envelopes: Uint8Array[];
}

export interface SealedRead {
  /** set when the reader must start from the snapshot (cursor before it, or not a seq given out) */
  snapshot: SealedSnapshot | null;
  /** the entries after the cursor (or after the snapshot), in order */
  entries: SealedEntry[];
  /** the room's highest seq */
  head: number;
}

export interface SealedRoomStats {
  head: number;
  snapshotCovers: number;
  /** entries stored after the snapshot */
  entries: number;
  /** bytes stored: entries and snapshot */
  bytes: number;
}

/** What the admin API shows of a stored room (admin/room-source.ts). */
export interface SealedRoomFigures {
  room: string;
  /** entries and snapshot */
  bytes: number;
  /** entries after the snapshot, plus one for the snapshot */
  entries: number;
  /** unix ms of the last append, or null when storage has no record of it */
  lastChangeAt: number | null;
}

export interface SealedStore {
  readonly engine: string;
  /** open files, connections and create tables; every other call throws before it */
  init(): Promise<void>;
  /** one transaction for the whole batch (group commit); the first seq drawn for each batch, in order */
  append(batches: readonly SealedAppend[]): Promise<number[]>;
  /**
   * From a device's cursor: only the entries after it when the cursor is at or past the snapshot
   * and not past the head; otherwise the snapshot (if any) and every entry after it. At most
   * `limit` entries (the first ones): callers page through a long log with bounded memory.
   */
  read(room: string, cursor: number, limit?: number): Promise<SealedRead>;
  /**
   * Store `envelope` as the room's snapshot covering entries <= covers and delete those entries,
   * atomically; only if covers is above the stored snapshot's and at most the head. Entries after
   * `covers` always stay. Returns whether it was stored.
   */
  replaceWithSnapshot(room: string, covers: number, envelope: Uint8Array): Promise<boolean>;
  stats(room: string): Promise<SealedRoomStats>;
  /** rooms with something stored, names starting with `prefix` and after `after`, in byte order */
  listRooms(prefix: string, after: string, limit: number): Promise<SealedRoomFigures[]>;
  /** null when nothing is stored */
  statRoom(room: string): Promise<SealedRoomFigures | null>;
  /** deletes the room's entries and snapshot; the next append starts again at seq 1 */
  purgeRoom(room: string): Promise<void>;
  /** throws when storage does not answer (readiness) */
  check(): Promise<void>;
  close(): Promise<void>;
}

export const EMPTY_READ: SealedRead = { snapshot: null, entries: [], head: 0 };

/** Whether a read from `cursor` may skip the snapshot (see SealedStore.read). */
export function cursorSkipsSnapshot(cursor: number, covers: number, head: number): boolean {
  return cursor >= covers && cursor <= head;
}
