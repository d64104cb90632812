/**
 * An UpdateLogStore in a SQLite file (better-sqlite3, an optional peer dependency loaded when
 * the store opens). Synchronous: an update is committed before the Yjs update handler returns,
 * so an edit survives kill -9 the moment it is made. WAL journal, synchronous=NORMAL (durable
 * across a crash of the app; the last commits may be lost on power loss).
 */
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { UpdateLogStore } from './types.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS sync_updates (seq INTEGER PRIMARY KEY AUTOINCREMENT, doc TEXT NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS sync_updates_doc_seq ON sync_updates (doc, seq);
CREATE TABLE IF NOT EXISTS sync_meta (doc TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (doc, key));
`;

interface Statement {
  run(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  get(...params: unknown[]): unknown;
}
interface Database {
  pragma(source: string): unknown;
  exec(source: string): unknown;
  prepare(source: string): Statement;
  transaction(fn: () => void): () => void;
  close(): void;
}

function openDatabase(file: string): Database {
  let Ctor: new (file: string) => Database;
  try {
    Ctor = createRequire(import.meta.url)('better-sqlite3') as typeof Ctor;
  } catch (err) {
    throw new Error(`sqlitePersistence: install better-sqlite3 (npm install better-sqlite3): ${err instanceof Error ? err.message : String(err)}`);
  }
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Ctor(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.exec(SCHEMA);
  return db;
}

const bytes = (value: unknown): Uint8Array => new Uint8Array(value as Uint8Array);

export class SqliteUpdateStore implements UpdateLogStore {
  private readonly db: Database;
  private readonly st: Record<'load' | 'insert' | 'clear' | 'getMeta' | 'setMeta', Statement>;

  /** `doc`: which document of the file (several may share one file) */
  constructor(
    file: string,
    private readonly doc: string,
  ) {
    this.db = openDatabase(file);
    this.st = {
      load: this.db.prepare('SELECT data FROM sync_updates WHERE doc = ? ORDER BY seq'),
      insert: this.db.prepare('INSERT INTO sync_updates (doc, data) VALUES (?, ?)'),
      clear: this.db.prepare('DELETE FROM sync_updates WHERE doc = ?'),
      getMeta: this.db.prepare('SELECT value FROM sync_meta WHERE doc = ? AND key = ?'),
      setMeta: this.db.prepare('INSERT INTO sync_meta (doc, key, value) VALUES (?, ?, ?) ON CONFLICT (doc, key) DO UPDATE SET value = excluded.value'),
    };
  }

  load(): Uint8Array[] {
    return this.st.load.all(this.doc).map((row) => bytes((row as { data: unknown }).data));
  }

  append(update: Uint8Array): void {
    this.st.insert.run(this.doc, update);
  }

  replaceAll(state: Uint8Array): void {
    this.db.transaction(() => {
      this.st.clear.run(this.doc);
      this.st.insert.run(this.doc, state);
    })();
  }

  getMeta(key: string): Uint8Array | undefined {
    const row = this.st.getMeta.get(this.doc, key) as { value: unknown } | undefined;
    return row ? bytes(row.value) : undefined;
  }

  setMeta(key: string, value: Uint8Array): void {
    this.st.setMeta.run(this.doc, key, value);
  }

  close(): void {
    this.db.close();
  }
}
