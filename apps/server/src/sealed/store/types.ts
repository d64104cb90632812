/**
 * The storage contract for sealed rooms: per room, a log of opaque envelopes numbered by a
 * per-room sequence (1, 2, 3, ... with no gaps) and at most one snapshot envelope that covers
 * every entry up to `covers`. One file per engine implements it (memory.ts, sqlite.ts,
 * postgres.ts); apps/server/test/sealed-store-contract.ts runs the same suite on each.
 *
 * Sequence numbers are drawn inside the appending transaction under the room's lock, so a
 * room's entries become visible in increasing order: a reader that has seen seq N never later
 * finds a smaller one appear. That is what makes snapshot replacement and cursors safe.
 *
 * Every room also has a generation (see SealedStore.generation): a device's cursor counts in one
 * generation's numbering, and a delete followed by new writes starts another.
 *
 * Cost: a snapshot may be megabytes. Only a read that returns it loads it; append, stats, a
 * read from a cursor past the snapshot, listRooms and statRoom never touch its bytes. Each room
 * keeps its entry count and byte counts next to its head, updated in the appending (or
 * replacing) transaction, so stats is one row lookup however long the log.
 */
import { randomInt } from 'node:crypto';

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
  /**
   * The generation the writer believes the room is in (the one its devices were welcomed with):
   * the batch is stored only if it is the room's current one, otherwise refused (SEALED_FENCED)
   * and nothing of it is written. Absent: not conditioned (tests and tools writing the store
   * directly; the server always names one, sealed/registry.ts).
   */
  generation?: number;
}

/**
 * What append (per batch) and replaceWithSnapshot answer when the write named a generation that
 * is not the room's current one (or the room has no row): another instance deleted the room and
 * this writer did not hear of it. Nothing of the write is stored.
 */
export const SEALED_FENCED = 'fenced';
export type SealedFenced = typeof SEALED_FENCED;

export interface SealedRead {
  /** set when the reader must start from the snapshot (cursor before it, or not a seq given out) */
  snapshot: SealedSnapshot | null;
  /** the entries after the cursor (or after the snapshot), in order */
  entries: SealedEntry[];
  /** the room's highest seq */
  head: number;
  /** the room's generation, read with the entries (0: the room has no row): a reader in another one must not be served them */
  generation: number;
}

export interface SealedRoomStats {
  head: number;
  snapshotCovers: number;
  /** entries stored after the snapshot */
  entries: number;
  /** bytes stored as ROOM_MAX_BYTES counts them: entries and snapshot, each with SEALED_ROW_OVERHEAD_BYTES (sealedStoredBytes) */
  bytes: number;
  /**
   * the generation these figures count in, read with them (0: the room has no row; stats makes
   * none): a room loaded with them is the room of that generation (sealed/registry.ts)
   */
  generation: number;
}

/**
 * What ROOM_MAX_BYTES charges for each stored entry and for the snapshot on top of the envelope's
 * own bytes: every row also stores the room name (up to 255 bytes), its seq and the B-tree's key
 * and cell overhead. Measured with a 146-character room name: a SQLite row costs ~40 bytes plus
 * the name plus the envelope; a PostgreSQL row holds the name twice (table and primary key
 * index) plus ~70 bytes. So with the smallest envelope accepted (SEALED_ENVELOPE_MIN_BYTES, 46)
 * the disk holds at most ~1.1x (SQLite) or ~2x (PostgreSQL, 255-character names) what the quota
 * counts, instead of ~190x for 1-byte envelopes counted alone. docs/limits.md.
 */
export const SEALED_ROW_OVERHEAD_BYTES = 256;

/** A room's stored bytes as counted for ROOM_MAX_BYTES, from the counters every engine keeps (O(1)). */
export function sealedStoredBytes(entries: number, entryBytes: number, snapshotBytes: number | null): number {
  return entryBytes + entries * SEALED_ROW_OVERHEAD_BYTES + (snapshotBytes === null ? 0 : snapshotBytes + SEALED_ROW_OVERHEAD_BYTES);
}

/** What the admin API shows of a stored room (admin/room-source.ts). */
export interface SealedRoomFigures {
  room: string;
  /** entries and snapshot, as SealedRoomStats.bytes counts them */
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
  /**
   * One transaction for the whole batch (group commit); the first seq drawn for each batch, in
   * order, or SEALED_FENCED for a batch whose generation is not the room's (the other batches are
   * stored: one writer that missed a delete does not fail the other rooms of its commit).
   */
  append(batches: readonly SealedAppend[]): Promise<Array<number | SealedFenced>>;
  /**
   * From a device's cursor: only the entries after it when the cursor is at or past the snapshot
   * and not past the head; otherwise the snapshot (if any) and every entry after it. At most
   * `limit` entries (the first ones), and no more of them than fit in `maxBytes` of envelopes
   * (at least one): callers page through a long log with bounded memory, whatever the sizes of
   * its entries (a count alone let a page hold `limit` frames near the frame limit). With the
   * room's generation, read in the same transaction (makes no row).
   */
  read(room: string, cursor: number, limit?: number, maxBytes?: number): Promise<SealedRead>;
  /**
   * Store `envelope` as the room's snapshot covering entries <= covers and delete those entries,
   * atomically; only if covers is above the stored snapshot's and at most the head, or, with
   * `refuted` (a device reported the snapshot covering it as not opening, sealed/room.ts), also
   * at equal covers when the stored snapshot is still that one (snapshotMayReplace). Entries after
   * `covers` always stay. Returns whether it was stored; SEALED_FENCED (nothing stored) when
   * `generation` is given and is not the room's current one, as for append.
   */
  replaceWithSnapshot(room: string, covers: number, envelope: Uint8Array, generation?: number, refuted?: number): Promise<boolean | SealedFenced>;
  /** from counters kept by append and replaceWithSnapshot, with the room's generation: never a scan of the log, never the snapshot's bytes */
  stats(room: string): Promise<SealedRoomStats>;
  /** rooms with something stored, names starting with `prefix` and after `after`, in byte order */
  listRooms(prefix: string, after: string, limit: number): Promise<SealedRoomFigures[]>;
  /** null when nothing is stored */
  statRoom(room: string): Promise<SealedRoomFigures | null>;
  /**
   * The room's generation: a random id, nonzero and below 2^48 (a lib0 varUint), drawn when the
   * room's row is first made (by this call or by an append) and kept until purgeRoom, which draws
   * a new one. A room with no row gets one now, with nothing stored (head 0: listed nowhere,
   * statRoom null), so a device welcomed before the first entry learns the generation its cursor
   * will count in. docs/PROTOCOL-sealed.md, "Generation".
   */
  generation(room: string): Promise<SealedGeneration>;
  /**
   * Whether a purge of the room ended `generation`: any of its purges, not only the last. The only
   * generations the server may call deleted; any other it never saw is storage lost or restored,
   * not a delete (docs/PROTOCOL-sealed.md, "Generation"). Makes no row. On PostgreSQL the
   * generation in the row's `deleted_generation` (migration 9) counts too: a purge by an instance
   * of the version before this one (a rolling upgrade) writes only that.
   */
  generationDeleted(room: string, generation: number): Promise<boolean>;
  /**
   * Deletes the room's entries and snapshot; its row stays (head 0, nothing stored, listed nowhere)
   * with a new generation, and the purged one joins the room's deleted generations
   * (generationDeleted), so the next append starts again at seq 1, a write naming the purged
   * generation is refused, and a device naming it is known to name a deleted room. Every purge
   * ends the generation it finds, even one in which nothing was stored (head 0: a device welcomed
   * in the empty room, maybe emptied by an earlier delete when the DELETE is sent again, writes no
   * more and is told the room was deleted). Every deleted generation is kept (a small row each,
   * one per admin delete): a device that missed several deletes is told too. Only the instance an
   * admin delete came to calls it (sealed/registry.ts purge): the others leave storage alone.
   * The SQL engines also keep `deleted_generation` as the version before this one wrote it (read
   * by such an instance during a rolling upgrade, or after a rollback), and first add the one it
   * holds to the deleted generations (that version may have put it there alone). A room with no
   * row gets none.
   */
  purgeRoom(room: string): Promise<void>;
  /**
   * After a restore from a backup, with no server running (deploy/sealed-restore.ts runs the same
   * statement, redraw.ts): every room's row gets a new generation, unlike its current one, and
   * keeps its deleted ones; nothing stored changes. No device holds the new generation, so each is served from 0 and uploads its copy
   * again (docs/PROTOCOL-sealed.md, "Generation"): the entries written after the backup come back
   * from the devices that hold them, and no cursor counts in the restored, shorter log.
   * Returns how many rooms it gave one.
   */
  redrawGenerations(): Promise<number>;
  /** throws when storage does not answer (readiness) */
  check(): Promise<void>;
  close(): Promise<void>;
}

/** store.generation's answer. */
export interface SealedGeneration {
  current: number;
}

/** Generations are below this: 48 random bits fit a lib0 varUint and a JS number exactly. */
export const SEALED_GENERATION_LIMIT = 2 ** 48;

/** A new room's generation: random (not a counter: a lost or restored row leaves nothing to count from), nonzero. */
export function newSealedGeneration(): number {
  return randomInt(1, SEALED_GENERATION_LIMIT);
}

/**
 * How many of a page's entries, of these sizes in seq order, a read returns under `maxBytes`:
 * those whose bytes fit in it together, and always the first (one frame alone always goes).
 */
export function entriesWithin(sizes: readonly number[], maxBytes: number): number {
  let bytes = 0;
  let n = 0;
  for (const size of sizes) {
    if (n > 0 && bytes + size > maxBytes) break;
    bytes += size;
    n++;
  }
  return n;
}

export const EMPTY_READ: SealedRead = { snapshot: null, entries: [], head: 0, generation: 0 };

/**
 * Whether a snapshot covering `covers` may replace the stored one (covering `stored`) in a room
 * whose head is `head`: it must cover more, or, as the replacement of a refuted snapshot (`refuted`:
 * its covers), as much when the stored one is still the refuted one.
 */
export function snapshotMayReplace(covers: number, stored: number, head: number, refuted?: number): boolean {
  if (covers > head) return false;
  return covers > stored || (refuted !== undefined && refuted > 0 && stored === refuted && covers === stored);
}

/** Whether a read from `cursor` may skip the snapshot (see SealedStore.read). */
export function cursorSkipsSnapshot(cursor: number, covers: number, head: number): boolean {
  return cursor >= covers && cursor <= head;
}

/** A new generation for a room whose generation is `current`: random, nonzero, never `current` itself. */
export function otherSealedGeneration(current: number): number {
  // an offset of 1 .. LIMIT-2 around the cycle of the LIMIT-1 nonzero values (redraw.ts draws it the same way in SQL)
  return ((current - 1 + randomInt(1, SEALED_GENERATION_LIMIT - 1)) % (SEALED_GENERATION_LIMIT - 1)) + 1;
}
