/**
 * Online backup of the server's SQLite file, safe while the server writes (SQLite's backup
 * API reads a consistent snapshot, WAL included), then an integrity check of the copy.
 *   node /app/sqlite-backup.mjs <destination> [source]
 * source defaults to $DATA_DIR/sync-relay.sqlite (DATA_DIR defaults to ./data).
 * Prints one JSON line; exits 1 with a one-line message on failure.
 */
import Database from 'better-sqlite3';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SQLITE_FILE_NAME } from '../apps/server/src/relay/persistence/sqlite.js';
import { SQLITE_ADDON } from '../apps/server/src/storage/sqlite-open.js';

async function main(): Promise<void> {
  const [destArg, sourceArg] = process.argv.slice(2);
  if (!destArg) throw new Error('usage: sqlite-backup <destination> [source]');
  const source = resolve(sourceArg ?? join(process.env['DATA_DIR'] || './data', SQLITE_FILE_NAME));
  const dest = resolve(destArg);
  if (!existsSync(source)) throw new Error(`no database at ${source}`);
  if (existsSync(dest)) throw new Error(`${dest} exists: refusing to overwrite a backup`);

  const db = new Database(source, { readonly: true, fileMustExist: true, nativeBinding: SQLITE_ADDON });
  try {
    await db.backup(dest);
  } finally {
    db.close();
  }
  const copy = new Database(dest, { readonly: true, fileMustExist: true, nativeBinding: SQLITE_ADDON });
  try {
    const check = copy.pragma('integrity_check', { simple: true });
    if (check !== 'ok') throw new Error(`backup failed its integrity check: ${String(check)}`);
    const rooms = copy.prepare('SELECT count(*) AS n FROM (SELECT room FROM relay_updates UNION SELECT room FROM relay_snapshots)').get() as { n: number };
    process.stdout.write(`${JSON.stringify({ source, dest, bytes: statSync(dest).size, rooms: rooms.n, integrity: 'ok' })}\n`);
  } finally {
    copy.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`sqlite-backup: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
