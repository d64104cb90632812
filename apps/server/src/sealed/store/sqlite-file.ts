/**
 * Sealed tables in the relay's SQLite file (DATA_DIR/sync-relay.sqlite, so backups cover both),
 * on the same storage thread and connection as the relay's tables (storage/sqlite-worker.ts).
 */
import type Database from 'better-sqlite3';
import { redrawSqliteGenerations } from './redraw.js';
import { cursorSkipsSnapshot, EMPTY_READ, entriesWithin, newSealedGeneration, SEALED_FENCED, SEALED_GENERATION_LIMIT, sealedStoredBytes, snapshotMayReplace, type SealedAppend, type SealedFenced, type SealedGeneration, type SealedRead, type SealedRoomFigures, type SealedRoomStats } from './types.js';

/**
 * The snapshot lives in a table of its own: SQLite rewrites a whole row on UPDATE, so a snapshot
 * in sealed_rooms would be read and written again by every append (which moves the head).
 * `entries`, `entry_bytes` and `snapshot_bytes` are counters kept by append and replace in the
 * same transaction: stats never scans the log nor touches the snapshot. `generation` is drawn
 * when the row is made (types.ts, SealedStore.generation); 0 only in a row an earlier version made,
 * which gets one when the file opens. sealed_deleted_generations: every generation a purge ended
 * (types.ts purgeRoom). `deleted_generation` (0: none) is the one the version before this one
 * remembered, alone (the last purge's, unless nothing was stored since an earlier one): still
 * written so, for that version after a rollback, and read as deleted too (a file that version
 * wrote holds its deletes there only).
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS sealed_rooms (
  room TEXT PRIMARY KEY,
  head INTEGER NOT NULL DEFAULT 0,
  covers INTEGER NOT NULL DEFAULT 0,
  changed_at INTEGER,
  entries INTEGER NOT NULL DEFAULT 0,
  entry_bytes INTEGER NOT NULL DEFAULT 0,
  snapshot_bytes INTEGER,
  generation INTEGER NOT NULL DEFAULT 0,
  deleted_generation INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sealed_snapshots (
  room TEXT PRIMARY KEY,
  snapshot BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS sealed_deleted_generations (
  room TEXT NOT NULL,
  generation INTEGER NOT NULL,
  PRIMARY KEY (room, generation)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sealed_entries (
  room TEXT NOT NULL,
  seq INTEGER NOT NULL,
  envelope BLOB NOT NULL,
  PRIMARY KEY (room, seq)
) WITHOUT ROWID;
`;

interface RoomRow {
  head: number;
  covers: number;
  entries: number;
  entry_bytes: number;
  snapshot_bytes: number | null;
  generation: number;
}

/**
 * Files from earlier versions, once, in one transaction: the change-time column (null until the
 * next append), the counters computed from what is stored, the snapshot moved out of sealed_rooms,
 * the generation column. Rows without a generation (made before it) each get a random one. The
 * deleted-generation column (0: none known, as for every row purged before it existed); the table
 * of deleted generations is made by SCHEMA (empty: generationDeleted reads the column too).
 */
function migrate(db: Database.Database): void {
  const columns = new Set(db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('sealed_rooms')").all().map((c) => c.name));
  db.transaction(() => {
    if (!columns.has('changed_at')) db.exec('ALTER TABLE sealed_rooms ADD COLUMN changed_at INTEGER');
    if (!columns.has('entries')) {
      db.exec(`ALTER TABLE sealed_rooms ADD COLUMN entries INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE sealed_rooms ADD COLUMN entry_bytes INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE sealed_rooms ADD COLUMN snapshot_bytes INTEGER;
        UPDATE sealed_rooms SET
          entries = (SELECT COUNT(*) FROM sealed_entries e WHERE e.room = sealed_rooms.room AND e.seq > sealed_rooms.covers),
          entry_bytes = (SELECT COALESCE(SUM(LENGTH(envelope)), 0) FROM sealed_entries e WHERE e.room = sealed_rooms.room AND e.seq > sealed_rooms.covers);`);
    }
    if (columns.has('snapshot')) {
      db.exec(`INSERT INTO sealed_snapshots (room, snapshot) SELECT room, snapshot FROM sealed_rooms WHERE snapshot IS NOT NULL
          ON CONFLICT (room) DO UPDATE SET snapshot = excluded.snapshot;
        UPDATE sealed_rooms SET snapshot_bytes = LENGTH(snapshot) WHERE snapshot IS NOT NULL;
        ALTER TABLE sealed_rooms DROP COLUMN snapshot;`);
    }
    // SQLite's ADD COLUMN takes no expression default: 0, then a random one per row.
    if (!columns.has('generation')) db.exec('ALTER TABLE sealed_rooms ADD COLUMN generation INTEGER NOT NULL DEFAULT 0');
    if (!columns.has('deleted_generation')) db.exec('ALTER TABLE sealed_rooms ADD COLUMN deleted_generation INTEGER NOT NULL DEFAULT 0');
    db.exec(`UPDATE sealed_rooms SET generation = abs(random() % ${SEALED_GENERATION_LIMIT - 1}) + 1 WHERE generation = 0`);
  })();
}

export class SealedSqliteFile {
  private readonly db: Database.Database;
  private readonly st;

  constructor(db: Database.Database) {
    db.exec(SCHEMA);
    migrate(db);
    this.db = db;
    this.st = {
      room: db.prepare<[string], RoomRow>('SELECT head, covers, entries, entry_bytes, snapshot_bytes, generation FROM sealed_rooms WHERE room = ?'),
      ensure: db.prepare<[string, number]>('INSERT INTO sealed_rooms (room, generation) VALUES (?, ?) ON CONFLICT (room) DO NOTHING'),
      generation: db.prepare<[string], { generation: number }>('SELECT generation FROM sealed_rooms WHERE room = ?'),
      // any purge's (the table), or the one the version before this one wrote alone (the column)
      deleted: db.prepare<[{ room: string; generation: number }], { deleted: number }>(
        `SELECT EXISTS (SELECT 1 FROM sealed_deleted_generations WHERE room = @room AND generation = @generation)
           OR EXISTS (SELECT 1 FROM sealed_rooms WHERE room = @room AND deleted_generation = @generation) AS deleted`,
      ),
      appended: db.prepare<[number, number, number, number, string]>(
        'UPDATE sealed_rooms SET head = head + ?, entries = entries + ?, entry_bytes = entry_bytes + ?, changed_at = ? WHERE room = ?',
      ),
      insert: db.prepare<[string, number, Uint8Array]>('INSERT INTO sealed_entries (room, seq, envelope) VALUES (?, ?, ?)'),
      // LIMIT -1: no limit
      after: db.prepare<[string, number, number], { seq: number; envelope: Buffer }>('SELECT seq, envelope FROM sealed_entries WHERE room = ? AND seq > ? ORDER BY seq LIMIT ?'),
      // a page's sizes first (LENGTH of a blob reads no overflow page), then only the entries that fit
      sizes: db.prepare<[string, number, number], { seq: number; n: number }>('SELECT seq, LENGTH(envelope) AS n FROM sealed_entries WHERE room = ? AND seq > ? ORDER BY seq LIMIT ?'),
      between: db.prepare<[string, number, number], { seq: number; envelope: Buffer }>('SELECT seq, envelope FROM sealed_entries WHERE room = ? AND seq > ? AND seq <= ? ORDER BY seq'),
      snapshot: db.prepare<[string], { snapshot: Buffer }>('SELECT snapshot FROM sealed_snapshots WHERE room = ?'),
      setSnapshot: db.prepare<[string, Uint8Array]>(
        'INSERT INTO sealed_snapshots (room, snapshot) VALUES (?, ?) ON CONFLICT (room) DO UPDATE SET snapshot = excluded.snapshot',
      ),
      // the entries a snapshot replaces: counted as they are deleted (they were read to be covered anyway)
      through: db.prepare<[string, number], { n: number; bytes: number | null }>(
        'SELECT COUNT(*) AS n, SUM(LENGTH(envelope)) AS bytes FROM sealed_entries WHERE room = ? AND seq <= ?',
      ),
      deleteThrough: db.prepare<[string, number]>('DELETE FROM sealed_entries WHERE room = ? AND seq <= ?'),
      replaced: db.prepare<[number, number, number, number, string]>(
        'UPDATE sealed_rooms SET covers = ?, snapshot_bytes = ?, entries = entries - ?, entry_bytes = entry_bytes - ? WHERE room = ?',
      ),
      // Room names are ASCII below 0x7f: [prefix, prefix + DEL) is every name starting with prefix.
      list: db.prepare<[string, string, string, number], { room: string }>(
        'SELECT room FROM sealed_rooms WHERE room > ? AND room >= ? AND room < ? AND head > 0 ORDER BY room LIMIT ?',
      ),
      changedAt: db.prepare<[string], { changed_at: number | null }>('SELECT changed_at FROM sealed_rooms WHERE room = ?'),
      purgeEntries: db.prepare<[string]>('DELETE FROM sealed_entries WHERE room = ?'),
      purgeSnapshot: db.prepare<[string]>('DELETE FROM sealed_snapshots WHERE room = ?'),
      // the generation a purge ends, and the one in deleted_generation (the version before this
      // one may have put it there alone), which the purge is about to overwrite
      endGeneration: db.prepare<[{ room: string }]>(
        `INSERT OR IGNORE INTO sealed_deleted_generations (room, generation)
           SELECT room, generation FROM sealed_rooms WHERE room = @room
           UNION SELECT room, deleted_generation FROM sealed_rooms WHERE room = @room AND deleted_generation <> 0`,
      ),
      // the row stays, emptied, with a new generation; deleted_generation as the version before
      // this one wrote it: the purged one, unless nothing was stored in it since an earlier delete,
      // whose generation stays (the right-hand sides read the row before the update)
      purgeRoom: db.prepare<[{ room: string; next: number }]>(
        `UPDATE sealed_rooms SET head = 0, covers = 0, changed_at = NULL, entries = 0, entry_bytes = 0, snapshot_bytes = NULL,
           deleted_generation = CASE WHEN head > 0 OR deleted_generation = 0 THEN generation ELSE deleted_generation END,
           generation = @next WHERE room = @room`,
      ),
    };
  }

  append(batches: readonly SealedAppend[]): Array<number | SealedFenced> {
    const st = this.st;
    const now = Date.now();
    return this.db.transaction(() =>
      batches.map(({ room, envelopes, generation }) => {
        // checked in the appending transaction (the file's one writer): no purge comes between
        if (generation !== undefined && st.generation.get(room)?.generation !== generation) return SEALED_FENCED;
        st.ensure.run(room, newSealedGeneration());
        const head = (st.room.get(room) as RoomRow).head;
        let bytes = 0;
        envelopes.forEach((envelope, i) => {
          st.insert.run(room, head + 1 + i, envelope);
          bytes += envelope.length;
        });
        st.appended.run(envelopes.length, envelopes.length, bytes, now, room);
        return head + 1;
      }),
    )();
  }

  read(room: string, cursor: number, limit = Infinity, maxBytes = Infinity): SealedRead {
    const st = this.st;
    return this.db.transaction(() => {
      const row = st.room.get(room);
      if (!row) return EMPTY_READ;
      const skip = cursorSkipsSnapshot(cursor, row.covers, row.head);
      const from = skip ? cursor : row.covers;
      const count = Number.isFinite(limit) ? limit : -1;
      let rows: { seq: number; envelope: Buffer }[];
      if (Number.isFinite(maxBytes)) {
        const sizes = st.sizes.all(room, from, count);
        const n = entriesWithin(sizes.map((r) => r.n), maxBytes);
        rows = n === 0 ? [] : st.between.all(room, from, (sizes[n - 1] as { seq: number }).seq);
      } else rows = st.after.all(room, from, count);
      // the snapshot's bytes only when this read returns them
      const snapshot = !skip && row.snapshot_bytes !== null ? st.snapshot.get(room) : undefined;
      return {
        snapshot: snapshot ? { covers: row.covers, envelope: new Uint8Array(snapshot.snapshot) } : null,
        entries: rows.map((r) => ({ seq: r.seq, envelope: new Uint8Array(r.envelope) })),
        head: row.head,
        generation: row.generation,
      };
    })();
  }

  replaceWithSnapshot(room: string, covers: number, envelope: Uint8Array, generation?: number, refuted?: number): boolean | SealedFenced {
    const st = this.st;
    return this.db.transaction(() => {
      if (generation !== undefined && st.generation.get(room)?.generation !== generation) return SEALED_FENCED;
      const row = st.room.get(room);
      if (!row || !snapshotMayReplace(covers, row.covers, row.head, refuted)) return false;
      const gone = st.through.get(room, covers) ?? { n: 0, bytes: 0 };
      st.setSnapshot.run(room, envelope);
      st.deleteThrough.run(room, covers);
      st.replaced.run(covers, envelope.length, gone.n, gone.bytes ?? 0, room);
      return true;
    })();
  }

  stats(room: string): SealedRoomStats {
    const row = this.st.room.get(room);
    if (!row) return { head: 0, snapshotCovers: 0, entries: 0, bytes: 0, generation: 0 };
    const bytes = sealedStoredBytes(row.entries, row.entry_bytes, row.snapshot_bytes);
    return { head: row.head, snapshotCovers: row.covers, entries: row.entries, bytes, generation: row.generation };
  }

  listRooms(prefix: string, after: string, limit: number): SealedRoomFigures[] {
    return this.db.transaction(() =>
      this.st.list
        .all(after, prefix, `${prefix}\x7f`, limit)
        .map((r) => this.statRoom(r.room))
        .filter((f): f is SealedRoomFigures => f !== null),
    )();
  }

  statRoom(room: string): SealedRoomFigures | null {
    return this.db.transaction(() => {
      const s = this.stats(room);
      if (s.head === 0) return null;
      const changed = this.st.changedAt.get(room)?.changed_at ?? null;
      return { room, bytes: s.bytes, entries: s.entries + (s.snapshotCovers > 0 ? 1 : 0), lastChangeAt: changed };
    })();
  }

  generation(room: string): SealedGeneration {
    return this.db.transaction(() => {
      this.st.ensure.run(room, newSealedGeneration());
      return { current: (this.st.generation.get(room) as { generation: number }).generation };
    })();
  }

  generationDeleted(room: string, generation: number): boolean {
    return generation !== 0 && this.st.deleted.get({ room, generation })?.deleted === 1;
  }

  redrawGenerations(): number {
    return this.db.transaction(() => redrawSqliteGenerations(this.db))();
  }

  purgeRoom(room: string): void {
    this.db.transaction(() => {
      this.st.purgeEntries.run(room);
      this.st.purgeSnapshot.run(room);
      this.st.endGeneration.run({ room });
      this.st.purgeRoom.run({ room, next: newSealedGeneration() });
    })();
  }
}
