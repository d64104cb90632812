/**
 * The storage contract for relay rooms: an append-only log of Yjs updates per room plus an
 * optional snapshot that replaces a prefix of the log. One file per engine implements it
 * (memory.ts, sqlite.ts; postgres.ts with the scale-out issue).
 *
 * Sequence numbers grow monotonically per store (not per room) and are assigned on append.
 * compact() only ever removes entries up to a sequence number the caller has seen in load(),
 * so several server instances holding the same room can compact at any time without losing
 * an update that another instance appended meanwhile.
 *
 * Generations: every room has one, a counter that purgeRoom advances (0 for a room never
 * purged, rooms stored before generations existed included). A room loaded on an instance
 * remembers the generation load() read, and its appends and compactions name it: the store
 * refuses them, in the same transaction, when a purge has moved the room on since (an admin
 * delete made on another instance that this one did not hear of in time: relay/room-registry.ts
 * fenced). What is refused is never stored; the rest of a batch is.
 */
import type { RevocationStore } from '../../auth/revocations.js';
import type { WebhookOutbox } from '../../webhooks/outbox/types.js';

/** What a room's stored state is made of, for the code that reads it (merge.ts, stored-bytes.ts). */
export interface StoredContent {
  /** merged state of every entry up to snapshotSeq, or null when the room was never compacted */
  snapshot: Uint8Array | null;
  snapshotSeq: number;
  /**
   * what compaction found when it checked the snapshot (persistence/snapshot-stamp.ts), stored
   * with it and replaced with it; absent for a snapshot stored without one
   */
  snapshotStamp?: Uint8Array;
  /** updates appended after the snapshot, oldest first */
  updates: Uint8Array[];
  /** highest sequence number included in snapshot + updates (0 for an empty room) */
  lastSeq: number;
}

/** A room as load() reads it. */
export interface StoredRoom extends StoredContent {
  /** the room's generation, read with the rest (0: never purged) */
  generation: number;
}

export interface AppendBatch {
  room: string;
  updates: Uint8Array[];
  /**
   * the generation the writer loaded the room in: the updates are stored only if it is still the
   * room's, else refused (see above). Absent: stored whatever the generation (tools, tests).
   */
  generation?: number;
}

/** What RelayStore.compact() writes for a room. */
export interface Compaction {
  snapshot: Uint8Array;
  /**
   * the caller gives the snapshot's bytes away (nothing reads them after the call): a store on
   * another thread may move its buffer there instead of copying it (persistence/sqlite.ts)
   */
  handOver?: boolean;
  throughSeq: number;
  stamp?: Uint8Array | null;
  keep?: readonly Uint8Array[];
  generation?: number;
}

/** What compact() answers when the generation it named is not the room's any more (nothing written). */
export const RELAY_FENCED = 'fenced';
export type RelayFenced = typeof RELAY_FENCED;

/** What storage holds for one room, for the admin API (GET /admin/rooms). */
export interface StoredRoomStat {
  room: string;
  /** bytes of the snapshot plus the log */
  bytes: number;
  /** log entries, plus one for the snapshot */
  entries: number;
  /** unix ms of the last append (null if the engine has no record of it) */
  lastChangeAt: number | null;
}

/** Admin operations on stored rooms, the stored revocations and the database size; every engine implements them. */
export interface DocStoreAdmin extends RevocationStore {
  /** rooms with anything stored, in name (byte) order: name starts with `prefix` and sorts after `after` */
  listRooms(prefix: string, after: string, limit: number): Promise<StoredRoomStat[]>;
  /** null when nothing is stored */
  statRoom(room: string): Promise<StoredRoomStat | null>;
  /**
   * deletes everything stored for the room and advances its generation, in one transaction (a
   * write naming the generation before is refused from then on: see DocStore). Resolves with the
   * room's new generation, read in the same transaction (told to the other instances: a room
   * they loaded in it, after the purge, is the new room: relay/room-registry.ts purge)
   */
  purgeRoom(room: string): Promise<number>;
  /**
   * Bytes the database holds, for the status page: SQLite the file plus its WAL, PostgreSQL the
   * total relation size (indexes, TOAST) of the relay_ and sealed_ tables in this schema, memory
   * the relay's stored bytes. The sealed store shares the SQLite file and the PostgreSQL schema,
   * so this one figure covers both there. Costs a stat or one catalogue query: callers cache it.
   */
  storageBytes(): Promise<number>;
}

export interface DocStore {
  /** engine name, for logs and readiness */
  readonly engine: string;
  /** open files, connections and create tables; every other call throws before it */
  init(): Promise<void>;
  load(room: string): Promise<StoredRoom>;
  /**
   * one transaction for the whole batch (group commit): all of it is durable, or none, except the
   * batches refused for their generation (never stored), whose rooms it answers, in batch order
   * (empty: everything stored). A refusal is not a failure: the rest of the batch commits.
   */
  append(batches: readonly AppendBatch[]): Promise<string[]>;
  /**
   * Replace the room's snapshot with `compaction.snapshot` and delete its log entries with seq <= throughSeq.
   * `snapshot` must contain every entry up to throughSeq, except the entries given as `keep`
   * (set aside by compaction: relay/compaction.ts), which are appended again after the snapshot
   * in the same transaction: they are never out of storage, whatever fails or stops midway. A
   * no-op (keep included) if the stored snapshot already covers throughSeq (another instance
   * compacted further). `stamp` is stored with the snapshot (none: the previous one is dropped);
   * only compaction writes one, append() never does. With `generation` (the one the snapshot's
   * content was loaded in), nothing is written and RELAY_FENCED answered when it is not the
   * room's any more.
   */
  compact(room: string, compaction: Compaction): Promise<RelayFenced | undefined>;
  /** throws when storage does not answer (readiness) */
  check(): Promise<void>;
  close(): Promise<void>;
}

/** Where webhook events wait for delivery; every engine keeps one (webhooks/outbox/). */
export interface WebhookOutboxSource {
  /** usable between init() and close() */
  webhookOutbox(): WebhookOutbox;
}

/** An engine: the relay's store with the admin operations and the webhook outbox. */
export type EngineStore = DocStore & DocStoreAdmin & WebhookOutboxSource;

export class StoreNotReadyError extends Error {
  constructor(engine: string) {
    super(`${engine} store used before init() or after close()`);
    this.name = 'StoreNotReadyError';
  }
}
