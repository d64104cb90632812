/**
 * How every SQLite engine opens DATA_DIR's file (relay/persistence/sqlite-file.ts,
 * sealed/store/sqlite-file.ts): WAL journal and synchronous=FULL, so a committed batch survives
 * power loss as well as a crash; busy_timeout lets the storage threads' short write transactions
 * on the same file take turns.
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

/**
 * better-sqlite3's addon, resolved once and handed to every constructor (`nativeBinding`). The
 * bundle inlines better-sqlite3's JavaScript (deploy/bundle.ts) and ships only its package for
 * this file: left to itself, better-sqlite3 would look for the addon beside the bundle. Inlined,
 * the storage thread no longer resolves a dozen CommonJS files at start, which made V8 optimise
 * node:path's normalizeString there and page in its optimising compiler (docs/benchmarks.md,
 * memory).
 */
export const SQLITE_ADDON = createRequire(import.meta.url).resolve('better-sqlite3/build/Release/better_sqlite3.node');

export function openSqliteFile(file: string): Database.Database {
  mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file, { nativeBinding: SQLITE_ADDON });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  return db;
}

/** The readiness probe's question to a file: does it answer a query? */
export function checkSqliteFile(db: Database.Database): void {
  if (db.prepare<[], { ok: number }>('SELECT 1 AS ok').get()?.ok !== 1) throw new Error('sqlite did not answer');
}
