/**
 * The storage contract for relay rooms: an append-only log of Yjs updates per room plus an
 * optional snapshot that replaces a prefix of the log. One file per engine implements it
 * (memory.ts, sqlite.ts; postgres.ts with the scale-out issue).
 *
 * Sequence numbers grow monotonically per store (not per room) and are assigned on append.
 * compact() only ever removes entries up to a sequence number the caller has seen in load(),
 * so several server instances holding the same room can compact at any time without losing
 * an update that another instance appended meanwhile.
 */
import type { RevocationStore } from '../../auth/revocations.js';
import type { WebhookOutbox } from '../../webhooks/outbox/types.js';

export interface StoredRoom {
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

export interface AppendBatch {
  room: string;
  updates: Uint8Array[];
}

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
  /** deletes everything stored for the room, in one transaction */
  purgeRoom(room: string): Promise<void>;
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
  /** one transaction for the whole batch (group commit): all of it is durable, or none */
  append(batches: readonly AppendBatch[]): Promise<void>;
  /**
   * Replace the room's snapshot with `snapshot` and delete its log entries with seq <= throughSeq.
   * `snapshot` must contain every entry up to throughSeq, except the entries given as `keep`
   * (set aside by compaction: relay/compaction.ts), which are appended again after the snapshot
   * in the same transaction: they are never out of storage, whatever fails or stops midway. A
   * no-op (keep included) if the stored snapshot already covers throughSeq (another instance
   * compacted further). `stamp` is stored with the snapshot (none: the previous one is dropped);
   * only compaction writes one, append() never does.
   */
  compact(room: string, snapshot: Uint8Array, throughSeq: number, stamp?: Uint8Array | null, keep?: readonly Uint8Array[]): Promise<void>;
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
