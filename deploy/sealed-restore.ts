/**
 * The restore step for sealed rooms: run on a restored database before any server starts.
 *   node /app/sealed-restore.mjs            (image and bundle; from a checkout: npm run sealed-restore)
 * Reads STORAGE, DATA_DIR and DATABASE_URL as the server does (sqlite and ./data by default).
 * Gives every sealed room a new generation and keeps the generations its deletes ended
 * (SealedStore.redrawGenerations, apps/server/src/sealed/store/types.ts): every device is then
 * served from 0 and uploads its copy again, so entries written after the backup come back and no
 * cursor counts in the restored, shorter log (docs/operations.md, "Backup and restore").
 * It changes nothing else: no table is made or migrated (apps/server/src/sealed/store/redraw.ts
 * says why), so an empty database, or one from before generations, is left as it is (0 rooms).
 * Safe to run again: it draws again, and devices upload once more. A SQLite file that does not
 * exist is an error: the restore did not put it where the server looks. An error leaves the
 * database as it was (one transaction).
 * Prints one JSON line; exits 1 with a one-line message on failure.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { SQLITE_FILE_NAME } from '../apps/server/src/relay/persistence/sqlite.js';
import { redrawPostgresGenerations, redrawSqliteGenerations } from '../apps/server/src/sealed/store/redraw.js';
import { openSqliteFile } from '../apps/server/src/storage/sqlite-open.js';

async function main(): Promise<void> {
  if (process.argv.length > 2) throw new Error('usage: sealed-restore (no arguments; STORAGE, DATA_DIR and DATABASE_URL as for the server)');
  // empty values count as unset, as for the server (docker-compose.yml passes them empty)
  const storage = process.env['STORAGE'] || 'sqlite';
  if (storage === 'sqlite') {
    const file = join(resolve(process.env['DATA_DIR'] || './data'), SQLITE_FILE_NAME);
    if (!existsSync(file)) throw new Error(`no database at ${file}`);
    const db = openSqliteFile(file);
    try {
      const rooms = db.transaction(() => redrawSqliteGenerations(db))();
      report({ storage, file, newGenerations: rooms });
    } finally {
      db.close();
    }
  } else if (storage === 'postgres') {
    const url = process.env['DATABASE_URL'];
    if (!url) throw new Error('STORAGE=postgres needs DATABASE_URL');
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
    await client.connect();
    try {
      await client.query('BEGIN');
      const rooms = await redrawPostgresGenerations(client);
      await client.query('COMMIT');
      report({ storage, newGenerations: rooms });
    } finally {
      await client.end();
    }
  } else if (storage === 'memory') {
    throw new Error('STORAGE=memory keeps nothing to restore');
  } else {
    throw new Error(`unknown STORAGE ${storage}`);
  }
}

function report(result: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`sealed-restore: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
