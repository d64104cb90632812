/**
 * The relay's tables in the SQLite file, synchronous (better-sqlite3): schema, statements and one
 * transaction per call. It runs on the storage thread (storage/sqlite-worker.ts) so that commits,
 * whose fsync can take milliseconds, never stall the event loop that forwards updates. The
 * connection is the thread's (opened by storage/sqlite-open.ts, shared with the sealed tables).
 */
import type Database from 'better-sqlite3';
import type { Revocation } from '../../auth/revocations.js';
import { SqliteOutboxTable } from '../../webhooks/outbox/sqlite.js';
import { withTransfer } from '../../storage/sqlite-thread-host.js';
import { RELAY_FENCED, type AppendBatch, type Compaction, type RelayFenced, type StoredRoom, type StoredRoomStat } from './types.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS relay_snapshots (
  room TEXT PRIMARY KEY,
  snapshot BLOB NOT NULL,
  through_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS relay_updates (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  room TEXT NOT NULL,
  data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS relay_updates_room_seq ON relay_updates (room, seq);
`;

/** Added later: rooms by name with their last change (admin API), and stored revocations. */
const ADMIN_SCHEMA = `
CREATE TABLE IF NOT EXISTS relay_room_meta (
  room TEXT PRIMARY KEY,
  changed_at INTEGER
);
CREATE TABLE IF NOT EXISTS relay_revocations (
  sub TEXT,
  jti TEXT,
  until INTEGER NOT NULL
);
`;

/** Rooms stored before relay_room_meta existed get a row (with no change time). */
const BACKFILL_META = `
INSERT OR IGNORE INTO relay_room_meta (room, changed_at)
SELECT room, NULL FROM relay_snapshots UNION SELECT DISTINCT room, NULL FROM relay_updates
`;

/**
 * Added later: each purged room's generation (types.ts), advanced by every purge and kept when the
 * purge drops the room's rows; a room without a row is in generation 0 (every room stored before
 * the table existed). Only purged rooms have a row: appends read it once per room per batch.
 */
const GENERATIONS_SCHEMA = `
CREATE TABLE IF NOT EXISTS relay_generations (
  room TEXT PRIMARY KEY,
  generation INTEGER NOT NULL
);
`;

/** Added later: the snapshot's stamp (snapshot-stamp.ts); rows written before it have none and are checked in full. */
const STAMP_COLUMN = 'ALTER TABLE relay_snapshots ADD COLUMN stamp BLOB';

export class SqliteFile {
  private readonly db: Database.Database;
  private readonly st;
  /** the webhook outbox's table (webhooks/outbox/sqlite.ts) */
  readonly outbox: SqliteOutboxTable;

  constructor(db: Database.Database) {
    db.exec(SCHEMA);
    const hadMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'relay_room_meta'").get() !== undefined;
    db.exec(ADMIN_SCHEMA);
    if (!hadMeta) db.exec(BACKFILL_META);
    db.exec(GENERATIONS_SCHEMA);
    const snapshotColumns = db.prepare<[], { name: string }>('PRAGMA table_info(relay_snapshots)').all();
    if (!snapshotColumns.some((c) => c.name === 'stamp')) db.exec(STAMP_COLUMN);
    this.db = db;
    this.outbox = new SqliteOutboxTable(db);
    this.st = {
      snapshot: db.prepare<[string], { snapshot: Buffer; through_seq: number; stamp: Buffer | null }>('SELECT snapshot, through_seq, stamp FROM relay_snapshots WHERE room = ?'),
      updates: db.prepare<[string], { seq: number; data: Buffer }>('SELECT seq, data FROM relay_updates WHERE room = ? ORDER BY seq'),
      insert: db.prepare<[string, Uint8Array]>('INSERT INTO relay_updates (room, data) VALUES (?, ?)'),
      upsertSnapshot: db.prepare<[string, Uint8Array, number, Uint8Array | null]>(
        `INSERT INTO relay_snapshots (room, snapshot, through_seq, stamp) VALUES (?, ?, ?, ?)
         ON CONFLICT (room) DO UPDATE SET snapshot = excluded.snapshot, through_seq = excluded.through_seq, stamp = excluded.stamp
         WHERE excluded.through_seq > relay_snapshots.through_seq`,
      ),
      deleteThrough: db.prepare<[string, number]>('DELETE FROM relay_updates WHERE room = ? AND seq <= ?'),
      touch: db.prepare<[string, number]>(
        'INSERT INTO relay_room_meta (room, changed_at) VALUES (?, ?) ON CONFLICT (room) DO UPDATE SET changed_at = excluded.changed_at',
      ),
      list: db.prepare<[string, string, string, number], { room: string }>(
        'SELECT room FROM relay_room_meta WHERE room > ? AND room >= ? AND room < ? ORDER BY room LIMIT ?',
      ),
      stat: db.prepare<[{ room: string }], { changed_at: number | null; log_bytes: number; log_entries: number; snap_bytes: number | null }>(
        `SELECT m.changed_at,
           (SELECT coalesce(sum(length(data)), 0) FROM relay_updates WHERE room = @room) AS log_bytes,
           (SELECT count(*) FROM relay_updates WHERE room = @room) AS log_entries,
           (SELECT length(snapshot) FROM relay_snapshots WHERE room = @room) AS snap_bytes
         FROM (SELECT @room AS room) AS r LEFT JOIN relay_room_meta m ON m.room = r.room`,
      ),
      purgeUpdates: db.prepare<[string]>('DELETE FROM relay_updates WHERE room = ?'),
      purgeSnapshot: db.prepare<[string]>('DELETE FROM relay_snapshots WHERE room = ?'),
      purgeMeta: db.prepare<[string]>('DELETE FROM relay_room_meta WHERE room = ?'),
      generation: db.prepare<[string], { generation: number }>('SELECT generation FROM relay_generations WHERE room = ?'),
      nextGeneration: db.prepare<[string]>(
        'INSERT INTO relay_generations (room, generation) VALUES (?, 1) ON CONFLICT (room) DO UPDATE SET generation = relay_generations.generation + 1',
      ),
      saveRevocation: db.prepare<[string | null, string | null, number]>('INSERT INTO relay_revocations (sub, jti, until) VALUES (?, ?, ?)'),
      dropRevocations: db.prepare<[number]>('DELETE FROM relay_revocations WHERE until <= ?'),
      revocations: db.prepare<[number], { sub: string | null; jti: string | null; until: number }>(
        'SELECT sub, jti, until FROM relay_revocations WHERE until > ?',
      ),
    };
  }

  load(room: string): StoredRoom {
    const st = this.st;
    // One read transaction: a snapshot and its tail from the same moment.
    return this.db.transaction(() => {
      const snap = st.snapshot.get(room);
      const rows = st.updates.all(room);
      const snapshotSeq = snap?.through_seq ?? 0;
      // Rows at or below the snapshot can only exist if a compaction was interrupted; skip them.
      const tail = rows.filter((r) => r.seq > snapshotSeq);
      // Copied into a buffer of its own, then moved (not cloned again) to the event loop.
      const snapshot = snap ? new Uint8Array(snap.snapshot) : null;
      const stored: StoredRoom = {
        snapshot,
        snapshotSeq,
        ...(snap?.stamp ? { snapshotStamp: new Uint8Array(snap.stamp) } : {}),
        updates: tail.map((r) => new Uint8Array(r.data)),
        lastSeq: tail.at(-1)?.seq ?? snapshotSeq,
        generation: this.generation(room),
      };
      return snapshot ? withTransfer(stored, [snapshot.buffer as ArrayBuffer]) : stored;
    })();
  }

  /** Returns the rooms refused for their generation (types.ts); one lookup per room that names one. */
  append(batches: readonly AppendBatch[]): string[] {
    const st = this.st;
    const now = Date.now();
    const fenced: string[] = [];
    this.db.transaction(() => {
      for (const { room, updates, generation } of batches) {
        if (this.namesAnother(room, generation)) {
          fenced.push(room);
          continue;
        }
        for (const update of updates) st.insert.run(room, update);
        if (updates.length > 0) st.touch.run(room, now);
      }
    })();
    return fenced;
  }

  /** A write naming `generation` (absent: none) of a room now in another one: refused. */
  private namesAnother(room: string, generation: number | undefined): boolean {
    return generation !== undefined && generation !== this.generation(room);
  }

  private generation(room: string): number {
    return this.st.generation.get(room)?.generation ?? 0;
  }

  listRooms(prefix: string, after: string, limit: number): StoredRoomStat[] {
    // Room names are ASCII below 0x7f: [prefix, prefix + DEL) is every name starting with prefix.
    const rows = this.st.list.all(after, prefix, `${prefix}\x7f`, limit);
    return this.db.transaction(() => rows.map((r) => this.statRoom(r.room)).filter((s): s is StoredRoomStat => s !== null))();
  }

  statRoom(room: string): StoredRoomStat | null {
    const row = this.st.stat.get({ room });
    if (!row || (row.log_entries === 0 && row.snap_bytes === null)) return null;
    return {
      room,
      bytes: row.log_bytes + (row.snap_bytes ?? 0),
      entries: row.log_entries + (row.snap_bytes === null ? 0 : 1),
      lastChangeAt: row.changed_at,
    };
  }

  /** Resolves with the room's new generation, read back in the purge's transaction. */
  purgeRoom(room: string): number {
    const st = this.st;
    return this.db.transaction(() => {
      st.purgeUpdates.run(room);
      st.purgeSnapshot.run(room);
      st.purgeMeta.run(room);
      st.nextGeneration.run(room);
      return st.generation.get(room)?.generation ?? 0;
    })();
  }

  saveRevocation(r: Revocation): void {
    const st = this.st;
    this.db.transaction(() => {
      st.dropRevocations.run(Math.floor(Date.now() / 1000));
      st.saveRevocation.run(r.sub ?? null, r.jti ?? null, r.until);
    })();
  }

  loadRevocations(now: number): Revocation[] {
    return this.st.revocations.all(now).map((r) => ({ ...(r.sub !== null ? { sub: r.sub } : {}), ...(r.jti !== null ? { jti: r.jti } : {}), until: r.until }));
  }

  /** RELAY_FENCED (nothing written) when `generation` is given and is not the room's any more */
  compact(room: string, { snapshot, throughSeq, stamp = null, keep = [], generation }: Compaction): RelayFenced | undefined {
    const st = this.st;
    let fenced = false;
    const replaced = this.db.transaction(() => {
      if (this.namesAnother(room, generation)) {
        fenced = true;
        return false;
      }
      const current = st.snapshot.get(room);
      if (current && current.through_seq >= throughSeq) return false;
      // Deleted first: an overwrite allocates the new blob's pages before it frees the old ones, so
      // the file would hold every snapshot twice; freed in the same transaction, they are reused.
      if (current) st.purgeSnapshot.run(room);
      st.upsertSnapshot.run(room, snapshot, throughSeq, stamp);
      st.deleteThrough.run(room, throughSeq);
      // Entries set aside by compaction, appended again after the snapshot (not a change: no touch).
      for (const update of keep) st.insert.run(room, update);
      return true;
    })();
    // The new snapshot went through the WAL, which keeps its largest size until a checkpoint
    // truncates it: without this the files hold each snapshot about twice (bench/cold-load.ts).
    if (replaced) this.db.pragma('wal_checkpoint(TRUNCATE)');
    return fenced ? RELAY_FENCED : undefined;
  }
}
