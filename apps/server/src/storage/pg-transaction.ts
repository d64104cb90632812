/**
 * One PostgreSQL transaction on a pooled client, as every PostgreSQL engine runs its writes
 * (relay/persistence/postgres.ts, sealed/store/postgres.ts): `begin` opens it (with the isolation
 * level the caller needs), `work` runs, COMMIT. A client whose transaction failed is rolled back
 * and destroyed, not returned to the pool in an unknown state.
 */
// Types only: pg is loaded by the engines' init(), so a server on SQLite never pays for it.
import type pg from 'pg';

export async function inTransaction<T>(pool: pg.Pool, begin: string, work: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  let client: pg.PoolClient | undefined;
  try {
    client = await pool.connect();
    await client.query(begin);
    const result = await work(client);
    await client.query('COMMIT');
    client.release();
    return result;
  } catch (err) {
    if (client) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release(true);
    }
    throw err;
  }
}
