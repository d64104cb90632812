/** Per-run PostgreSQL schemas on the shared test database, dropped when the run ends. */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { testDatabaseUrl } from '../../../test/helpers/test-env.js';

export const PG_URL = testDatabaseUrl();

/** A fresh schema name, unique per call. */
export function uniqueSchema(tag = 'scale'): string {
  return `t_${tag}_${randomBytes(5).toString('hex')}`;
}

/** DATABASE_URL whose connections use `schema` (for server processes). */
export function urlWithSchema(schema: string, url = PG_URL): string {
  return `${url}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
}

export async function withPg<T>(fn: (c: pg.Client) => Promise<T>, url = PG_URL): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function dropSchemas(schemas: string[]): Promise<void> {
  if (schemas.length === 0) return;
  await withPg(async (c) => {
    for (const s of schemas.splice(0)) await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  });
}

/** Call at a test file's top level: a fresh schema, created before the file's tests and dropped after them. */
export function schemaForThisFile(tag: string): string {
  const schema = uniqueSchema(tag);
  beforeAll(() => withPg((c) => c.query(`CREATE SCHEMA "${schema}"`)));
  afterAll(() => dropSchemas([schema]));
  return schema;
}
