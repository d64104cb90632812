/**
 * Sealed tables in the relay's SQLite file (DATA_DIR/sync-relay.sqlite, so backups cover both),
 * on the same storage thread and connection as the relay's tables (storage/sqlite-worker.ts).
 */
import type Database from 'better-sqlite3';
import { cursorSkipsSnapshot, EMPTY_READ, type SealedAppend, type SealedRead, type SealedRoomFigures, type SealedRoomStats } from './types.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS sealed_rooms (
  room TEXT PRIMARY KEY,
  head INTEGER NOT NULL DEFAULT 0,
  covers INTEGER NOT NULL DEFAULT 0,
  snapshot BLOB,
  changed_at INTEGER
);
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
  snapshot: Buffer | null;
}

export class SealedSqliteFile {
  private readonly db: Database.Database;
  private readonly st;

  constructor(db: Database.Database) {
    db.exec(SCHEMA);
    // Files written before the admin API have no change time: add the column (null until the next append).
    const columns = db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('sealed_rooms')").all();
    if (!columns.some((c) => c.name === 'changed_at')) db.exec('ALTER TABLE sealed_rooms ADD COLUMN changed_at INTEGER');
    this.db = db;
    this.st = {
      room: db.prepare<[string], RoomRow>('SELECT head, covers, snapshot FROM sealed_rooms WHERE room = ?'),
      ensure: db.prepare<[string]>('INSERT INTO sealed_rooms (room) VALUES (?) ON CONFLICT (room) DO NOTHING'),
      setHead: db.prepare<[number, number, string]>('UPDATE sealed_rooms SET head = ?, changed_at = ? WHERE room = ?'),
      insert: db.prepare<[string, number, Uint8Array]>('INSERT INTO sealed_entries (room, seq, envelope) VALUES (?, ?, ?)'),
      // LIMIT -1: no limit
      after: db.prepare<[string, number, number], { seq: number; envelope: Buffer }>('SELECT seq, envelope FROM sealed_entries WHERE room = ? AND seq > ? ORDER BY seq LIMIT ?'),
      setSnapshot: db.prepare<[number, Uint8Array, string]>('UPDATE sealed_rooms SET covers = ?, snapshot = ? WHERE room = ?'),
      deleteThrough: db.prepare<[string, number]>('DELETE FROM sealed_entries WHERE room = ? AND seq <= ?'),
      count: db.prepare<[string, number], { n: number; bytes: number | null }>(
        'SELECT COUNT(*) AS n, SUM(LENGTH(envelope)) AS bytes FROM sealed_entries WHERE room = ? AND seq > ?',
      ),
      // Room names are ASCII below 0x7f: [prefix, prefix + DEL) is every name starting with prefix.
      list: db.prepare<[string, string, string, number], { room: string }>(
        'SELECT room FROM sealed_rooms WHERE room > ? AND room >= ? AND room < ? AND head > 0 ORDER BY room LIMIT ?',
      ),
      changedAt: db.prepare<[string], { changed_at: number | null }>('SELECT changed_at FROM sealed_rooms WHERE room = ?'),
      purgeEntries: db.prepare<[string]>('DELETE FROM sealed_entries WHERE room = ?'),
      purgeRoom: db.prepare<[string]>('DELETE FROM sealed_rooms WHERE room = ?'),
    };
  }

  append(batches: readonly SealedAppend[]): number[] {
    const st = this.st;
    const now = Date.now();
    return this.db.transaction(() =>
      batches.map(({ room, envelopes }) => {
        st.ensure.run(room);
        const head = (st.room.get(room) as RoomRow).head;
        envelopes.forEach((envelope, i) => st.insert.run(room, head + 1 + i, envelope));
        st.setHead.run(head + envelopes.length, now, room);
        return head + 1;
      }),
    )();
  }

  read(room: string, cursor: number, limit = Infinity): SealedRead {
    const st = this.st;
    return this.db.transaction(() => {
      const row = st.room.get(room);
      if (!row) return EMPTY_READ;
      const skip = cursorSkipsSnapshot(cursor, row.covers, row.head);
      const rows = st.after.all(room, skip ? cursor : row.covers, Number.isFinite(limit) ? limit : -1);
      return {
        snapshot: !skip && row.snapshot ? { covers: row.covers, envelope: new Uint8Array(row.snapshot) } : null,
        entries: rows.map((r) => ({ seq: r.seq, envelope: new Uint8Array(r.envelope) })),
        head: row.head,
      };
    })();
  }

  replaceWithSnapshot(room: string, covers: number, envelope: Uint8Array): boolean {
    const st = this.st;
    return this.db.transaction(() => {
      const row = st.room.get(room);
      if (!row || covers <= row.covers || covers > row.head) return false;
      st.setSnapshot.run(covers, envelope, room);
      st.deleteThrough.run(room, covers);
      return true;
    })();
  }

  stats(room: string): SealedRoomStats {
    const st = this.st;
    return this.db.transaction(() => {
      const row = st.room.get(room);
      if (!row) return { head: 0, snapshotCovers: 0, entries: 0, bytes: 0 };
      const c = st.count.get(room, row.covers) ?? { n: 0, bytes: 0 };
      return { head: row.head, snapshotCovers: row.covers, entries: c.n, bytes: (c.bytes ?? 0) + (row.snapshot?.length ?? 0) };
    })();
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

  purgeRoom(room: string): void {
    this.db.transaction(() => {
      this.st.purgeEntries.run(room);
      this.st.purgeRoom.run(room);
    })();
  }
}
