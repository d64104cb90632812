/**
 * The restore step's statement on each SQL engine (SealedStore.redrawGenerations, types.ts): every
 * sealed room's row gets a new generation; its deleted generations (`deleted_generation` and
 * sealed_deleted_generations) stay. Shared by the stores and
 * deploy/sealed-restore.ts, which runs it on a restored database without opening a store: a store
 * would first bring the tables to this version's schema (SQLite migrate in sqlite-file.ts, the
 * PostgreSQL migrations), which a copy restored to roll back to an older version must not get.
 * Tables without the generation column (from before generations) are left alone: the version that
 * adds it draws a random generation for every row, which no device holds.
 */
import type Database from 'better-sqlite3';
// Types only: pg is loaded by whoever opens the connection.
import type pg from 'pg';
import { SEALED_GENERATION_LIMIT } from './types.js';

/**
 * An offset of 1 .. LIMIT-2 from the current generation, around the cycle of the LIMIT-1 nonzero
 * values: random, nonzero, and never the generation a device may hold (types.ts otherSealedGeneration).
 * SQLite's random() is a 64-bit integer; `%` before abs() keeps it from overflowing.
 */
const SQLITE_REDRAW = `UPDATE sealed_rooms SET generation = ((generation + abs(random() % ${SEALED_GENERATION_LIMIT - 2})) % ${SEALED_GENERATION_LIMIT - 1}) + 1`;
/** The same draw with PostgreSQL's random() (a double in [0, 1)), as migration 8 drew the first ones. */
const POSTGRES_REDRAW = `UPDATE sealed_rooms SET generation = ((generation + floor(random() * ${SEALED_GENERATION_LIMIT - 2})::bigint) % ${SEALED_GENERATION_LIMIT - 1}) + 1`;

/** Rows given a new generation; 0 when the file has no sealed table with generations. Runs in the caller's transaction, if any. */
export function redrawSqliteGenerations(db: Database.Database): number {
  const columns = db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('sealed_rooms')").all();
  if (!columns.some((c) => c.name === 'generation')) return 0;
  return db.prepare(SQLITE_REDRAW).run().changes;
}

/** Rows given a new generation; 0 when the schema (search_path's first) has no sealed table with generations. */
export async function redrawPostgresGenerations(client: pg.ClientBase): Promise<number> {
  const column = await client.query(
    "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'sealed_rooms' AND column_name = 'generation'",
  );
  if (column.rowCount === 0) return 0;
  return (await client.query(POSTGRES_REDRAW)).rowCount ?? 0;
}
