/**
 * How every PostgreSQL engine opens its pool (relay/persistence/postgres.ts,
 * sealed/store/postgres.ts): pg is loaded here, on first use, so a server on SQLite never pays
 * for it (bench/memory.ts); the schema is created if asked for and the migrations
 * (relay/persistence/postgres-migrations.ts) run before the pool is handed out.
 */
import type pg from 'pg';
import { migrate } from '../relay/persistence/postgres-migrations.js';

/** Goes into a libpq options string and DDL: kept to plain identifiers. */
export function assertSchemaName(schema: string | undefined): void {
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`invalid PostgreSQL schema name: ${schema}`);
}

export async function openPgPool(url: string, schema: string | undefined, onPoolError: (err: unknown) => void): Promise<pg.Pool> {
  const { default: pgLib } = await import('pg');
  const pool = new pgLib.Pool({
    connectionString: url,
    max: 10,
    connectionTimeoutMillis: 5000,
    // client-side limit per query, so a cut network fails a commit instead of hanging it
    query_timeout: 15_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', onPoolError);
  try {
    if (schema) await createSchema(pool, schema);
    const client = await pool.connect();
    try {
      await migrate(client);
    } finally {
      client.release();
    }
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  return pool;
}

async function createSchema(pool: pg.Pool, schema: string): Promise<void> {
  try {
    await pool.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  } catch (err) {
    // Two instances creating it at once: the loser sees a unique violation; the schema exists.
    if ((err as { code?: string }).code !== '23505') throw err;
  }
}
