/**
 * SQLite storage (the default): one file in DATA_DIR, WAL journal, synchronous=FULL so that a
 * committed batch survives power loss as well as a crash. better-sqlite3 is synchronous; a
 * group commit of one PERSIST_FLUSH_MS window is one short transaction.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreNotReadyError, type AppendBatch, type DocStore, type StoredRoom } from './types.js';

export const SQLITE_FILE_NAME = 'sync-relay.sqlite';

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

interface Statements {
  snapshot: Database.Statement<[string], { snapshot: Buffer; through_seq: number }>;
  updates: Database.Statement<[string], { seq: number; data: Buffer }>;
  insert: Database.Statement<[string, Uint8Array]>;
  upsertSnapshot: Database.Statement<[string, Uint8Array, number]>;
  deleteThrough: Database.Statement<[string, number]>;
  ping: Database.Statement<[], { ok: number }>;
}

export class SqliteStore implements DocStore {
  readonly engine = 'sqlite';
  private db: Database.Database | null = null;
  private st: Statements | null = null;
  readonly file: string;

  constructor(dataDir: string) {
    this.file = join(dataDir, SQLITE_FILE_NAME);
  }

  async init(): Promise<void> {
    if (this.db) return;
    mkdirSync(join(this.file, '..'), { recursive: true });
    const db = new Database(this.file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    db.exec(SCHEMA);
    this.st = {
      snapshot: db.prepare('SELECT snapshot, through_seq FROM relay_snapshots WHERE room = ?'),
      updates: db.prepare('SELECT seq, data FROM relay_updates WHERE room = ? ORDER BY seq'),
      insert: db.prepare('INSERT INTO relay_updates (room, data) VALUES (?, ?)'),
      upsertSnapshot: db.prepare(
        `INSERT INTO relay_snapshots (room, snapshot, through_seq) VALUES (?, ?, ?)
         ON CONFLICT (room) DO UPDATE SET snapshot = excluded.snapshot, through_seq = excluded.through_seq
         WHERE excluded.through_seq > relay_snapshots.through_seq`,
      ),
      deleteThrough: db.prepare('DELETE FROM relay_updates WHERE room = ? AND seq <= ?'),
      ping: db.prepare('SELECT 1 AS ok'),
    };
    this.db = db;
  }

  async load(room: string): Promise<StoredRoom> {
    const { db, st } = this.open();
    // One read transaction: a snapshot and its tail from the same moment.
    return db.transaction(() => {
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

  async append(batches: readonly AppendBatch[]): Promise<void> {
    const { db, st } = this.open();
    db.transaction(() => {
      for (const { room, updates } of batches) for (const update of updates) st.insert.run(room, update);
    })();
  }

  async compact(room: string, snapshot: Uint8Array, throughSeq: number): Promise<void> {
    const { db, st } = this.open();
    db.transaction(() => {
      const current = st.snapshot.get(room);
      if (current && current.through_seq >= throughSeq) return;
      st.upsertSnapshot.run(room, snapshot, throughSeq);
      st.deleteThrough.run(room, throughSeq);
    })();
  }

  async check(): Promise<void> {
    const { st } = this.open();
    if (st.ping.get()?.ok !== 1) throw new Error('sqlite did not answer');
  }

  async close(): Promise<void> {
    const db = this.db;
    this.db = null;
    this.st = null;
    db?.close();
  }

  private open(): { db: Database.Database; st: Statements } {
    if (!this.db || !this.st) throw new StoreNotReadyError(this.engine);
    return { db: this.db, st: this.st };
  }
}
