/**
 * How every SQLite engine opens DATA_DIR's file (relay/persistence/sqlite-file.ts,
 * sealed/store/sqlite-file.ts): WAL journal and synchronous=FULL, so a committed batch survives
 * power loss as well as a crash; busy_timeout lets the storage threads' short write transactions
 * on the same file take turns.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

export function openSqliteFile(file: string): Database.Database {
  mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  return db;
}

/** The readiness probe's question to a file: does it answer a query? */
export function checkSqliteFile(db: Database.Database): void {
  if (db.prepare<[], { ok: number }>('SELECT 1 AS ok').get()?.ok !== 1) throw new Error('sqlite did not answer');
}
