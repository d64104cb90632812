/**
 * PostgreSQL backup and restore as docs/operations.md describes them (pg_dump -Fc,
 * pg_restore --clean --if-exists --single-transaction, then sealed-restore.mjs), with the bundled server on
 * STORAGE=postgres: a document written through the relay survives the data being wiped.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabaseUrl } from './helpers/test-env.js';
import * as Y from 'yjs';
import { createRoomToken } from '@sync-suite/shared';
import { bundle } from '../deploy/bundle.js';
import { SMOKE_SECRETS, startStack, type Stack } from '../deploy/ci/stack.js';
import { docUntil, stockProvider, synced } from './fixtures/relay-clients.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'sync-pg-backup-'));
const out = join(work, 'app');
const database = `sync_deploy_${randomBytes(4).toString('hex')}`;
const admin = testDatabaseUrl();
const adminUrl = new URL(admin);
const url = `postgres://postgres@${adminUrl.host}/${database}`;
const pgArgs = ['-h', adminUrl.hostname, '-p', adminUrl.port || '5432', '-U', 'postgres', '-d', database];
const ROOM = 'acme-conversation-pg-backup-1';
let stack: Stack | undefined;

const start = () =>
  startStack({ root, cwd: out, dataDir: join(work, 'data'), args: (app) => [join(out, `${app}.mjs`)], env: { STORAGE: 'postgres', DATABASE_URL: url } });

async function sql(connection: string, text: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: connection });
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}

async function client(sub: string): Promise<{ doc: Y.Doc; close(): void }> {
  const token = await createRoomToken(SMOKE_SECRETS.AUTH_SECRET, { sub, rooms: [ROOM], ttlSeconds: 60 });
  const doc = new Y.Doc();
  const provider = stockProvider(3, (stack as Stack).serverUrl.replace('http', 'ws'), ROOM, doc, { token });
  await synced(provider);
  return { doc, close: () => (provider.destroy(), doc.destroy()) };
}

beforeAll(async () => {
  await sql(admin, `CREATE DATABASE ${database}`);
  await bundle(out);
  stack = await start();
});

afterAll(async () => {
  await stack?.stop();
  await sql(admin, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  rmSync(work, { recursive: true, force: true });
});

describe('PostgreSQL backup and restore', () => {
  it('pg_dump (online and after a graceful stop), wipe, pg_restore, and the document comes back', async () => {
    const writer = await client('writer');
    const reader = await client('reader');
    writer.doc.getText('text').insert(0, 'kept in postgres');
    await docUntil(reader.doc, () => reader.doc.getText('text').toString() === 'kept in postgres');
    writer.close();
    reader.close();
    // Online: a consistent snapshot while the server runs.
    const online = join(work, 'online.dump');
    await run('sh', ['-c', `pg_dump ${pgArgs.join(' ')} -Fc > ${online}`], { timeout: 30_000 });
    expect((await run('pg_restore', ['--list', online])).stdout).toMatch(/TABLE DATA/);
    // Graceful stop commits everything accepted.
    expect(await (stack as Stack).stop()).toEqual({ server: 0, turn: 0 });

    const dump = join(work, 'sync.dump');
    await run('sh', ['-c', `pg_dump ${pgArgs.join(' ')} -Fc > ${dump}`], { timeout: 30_000 });
    const tables = (await sql(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).rows.map((r: { tablename: string }) => r.tablename);
    expect(tables.length).toBeGreaterThan(0);
    await sql(url, `TRUNCATE ${tables.join(', ')}`);

    await run('pg_restore', [...pgArgs, '--clean', '--if-exists', '--single-transaction', dump], { timeout: 30_000 });
    // The restore step for sealed rooms, from the bundle (no sealed room here;
    // packages/client/test/sealed-restore.test.ts: what it does to one)
    const { stdout } = await run(process.execPath, [join(out, 'sealed-restore.mjs')], { cwd: out, env: { PATH: process.env['PATH'], STORAGE: 'postgres', DATABASE_URL: url }, timeout: 15_000 });
    expect(JSON.parse(stdout)).toEqual({ storage: 'postgres', newGenerations: 0 });
    stack = await start();
    const restored = await client('after-restore');
    try {
      expect(restored.doc.getText('text').toString()).toBe('kept in postgres');
    } finally {
      restored.close();
    }
  });
});
