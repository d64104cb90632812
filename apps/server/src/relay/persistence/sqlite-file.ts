/**
 * The SQLite file itself, synchronous (better-sqlite3): schema, statements and one transaction
 * per call. It runs on the storage thread (sqlite-worker.ts) so that commits, whose fsync can
 * take milliseconds, never stall the event loop that forwards updates.
 *
 * WAL journal, synchronous=FULL: a committed batch survives power loss as well as a crash.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { AppendBatch, StoredRoom } from './types.js';

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

export class SqliteFile {
  private readonly db: Database.Database;
  private readonly st;

  constructor(file: string) {
    mkdirSync(dirname(file), { recursive: true });
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    db.exec(SCHEMA);
    this.db = db;
    this.st = {
      snapshot: db.prepare<[string], { snapshot: Buffer; through_seq: number }>('SELECT snapshot, through_seq FROM relay_snapshots WHERE room = ?'),
      updates: db.prepare<[string], { seq: number; data: Buffer }>('SELECT seq, data FROM relay_updates WHERE room = ? ORDER BY seq'),
      insert: db.prepare<[string, Uint8Array]>('INSERT INTO relay_updates (room, data) VALUES (?, ?)'),
      upsertSnapshot: db.prepare<[string, Uint8Array, number]>(
        `INSERT INTO relay_snapshots (room, snapshot, through_seq) VALUES (?, ?, ?)
         ON CONFLICT (room) DO UPDATE SET snapshot = excluded.snapshot, through_seq = excluded.through_seq
         WHERE excluded.through_seq > relay_snapshots.through_seq`,
      ),
      deleteThrough: db.prepare<[string, number]>('DELETE FROM relay_updates WHERE room = ? AND seq <= ?'),
      ping: db.prepare<[], { ok: number }>('SELECT 1 AS ok'),
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
      return {
        snapshot: snap ? new Uint8Array(snap.snapshot) : null,
        snapshotSeq,
        updates: tail.map((r) => new Uint8Array(r.data)),
        lastSeq: tail.at(-1)?.seq ?? snapshotSeq,
      };
    })();
  }

  append(batches: readonly AppendBatch[]): void {
    const st = this.st;
    this.db.transaction(() => {
      for (const { room, updates } of batches) for (const update of updates) st.insert.run(room, update);
    })();
  }

  compact(room: string, snapshot: Uint8Array, throughSeq: number): void {
    const st = this.st;
    this.db.transaction(() => {
      const current = st.snapshot.get(room);
      if (current && current.through_seq >= throughSeq) return;
      st.upsertSnapshot.run(room, snapshot, throughSeq);
      st.deleteThrough.run(room, throughSeq);
    })();
  }

  check(): void {
    if (this.st.ping.get()?.ok !== 1) throw new Error('sqlite did not answer');
  }

  close(): void {
    this.db.close();
  }
}
