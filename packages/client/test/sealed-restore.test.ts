/**
 * A database restored from a copy taken after a sealed room existed (docs/operations.md, "Backup
 * and restore"): the room's log is shorter than what its devices saw. Without the restore step
 * (deploy/sealed-restore.ts) the room keeps its generation: a device whose cursor was at or below
 * the restored head writes new entries with the sequence numbers the lost ones had, a device
 * whose cursor was past the head then reads from that cursor and never gets them, and the entries
 * the server lost are never uploaded again. With the step, every device is served from 0 in a new
 * generation and uploads its copy again: every device ends with everything.
 * Real server (in-process, test/helpers/server.ts) on SQLite and on PostgreSQL; the copy is taken
 * while it runs, with deploy/sqlite-backup.ts or pg_dump, and put back as docs/operations.md says.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterEach, expect, it } from 'vitest';
import * as Y from 'yjs';
import { startServer, TEST_SECRET } from '../../../test/helpers/server.js';
import { testDatabaseUrl } from '../../../test/helpers/test-env.js';
import { SQLITE_FILE_NAME } from '../../../apps/server/src/relay/persistence/sqlite.js';
import type { SealedProgress } from '../src/sealed/progress.js';
import { sealedDevices, type SealedDevice as Device } from './helpers/sealed-device.js';
import { until } from './helpers/until.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..', '..');
const KEY = new Uint8Array(32).fill(7);
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const device = sealedDevices(KEY, cleanup);

const keys = (d: Device): string[] => [...d.doc.getMap<string>('m').keys()].sort();
const last = (d: Device): SealedProgress => d.progress.at(-1) as SealedProgress;

/** One entry per key: each set alone and acked before the next. */
async function write(d: Device, names: string[]): Promise<void> {
  for (const name of names) {
    d.doc.getMap<string>('m').set(name, name);
    await until(async () => d.t.pending === 0 && keys(d).includes(name), `${name} acked`);
  }
}

/** The device goes offline keeping what a client persists: its document and its last progress. */
function offline(d: Device): { resume: SealedProgress; doc: Y.Doc } {
  const resume = last(d);
  const doc = new Y.Doc();
  Y.applyUpdate(doc, Y.encodeStateAsUpdate(d.doc));
  d.t.destroy();
  return { resume, doc };
}

interface Engine {
  env: Record<string, string>;
  /** a copy of the database, taken while the server runs */
  backup(): Promise<void>;
  /** the database replaced by the copy, the server stopped */
  restore(): Promise<void>;
}

async function restoredRoom(engine: Engine, room: string): Promise<void> {
  const env = { AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn', PERSIST_FLUSH_MS: '5', ...engine.env };
  let server = await startServer(env);
  cleanup.push(() => server.close());

  // a1 stored; y reads it (cursor 1) and goes offline; a2 stored: the copy holds a1, a2 (head 2)
  const a = device(server, room);
  await until(async () => a.t.synced, 'a caught up');
  await write(a, ['a1']);
  const y = device(server, room);
  await until(async () => y.t.synced && keys(y).includes('a1') && last(y)?.cursor === 1, 'y read a1, cursor 1');
  const yHeld = offline(y);
  await write(a, ['a2']);
  await engine.backup();

  // after the copy: a3, a4 (head 4), and a has seen them (cursor 4)
  await write(a, ['a3', 'a4']);
  await until(async () => last(a)?.cursor === 4, 'a cursor 4');
  const generation = last(a).generation;
  expect(yHeld.resume.generation).toBe(generation);
  const aHeld = offline(a);

  await server.close();
  await engine.restore();
  const { stdout } = await run(process.execPath, ['--import', 'tsx', join(root, 'deploy/sealed-restore.ts')], {
    cwd: root,
    env: { PATH: process.env['PATH'], ...engine.env },
    timeout: 30_000,
  });
  expect(JSON.parse(stdout)).toMatchObject({ storage: engine.env['STORAGE'], newGenerations: 1 });
  server = await startServer(env);
  cleanup.push(() => server.close());

  // y comes back (cursor 1, below the restored head) and writes y1, y2 after the restore
  const y2 = device(server, room, yHeld.resume, yHeld.doc);
  await until(async () => y2.t.synced || y2.refused.length > 0, 'y back');
  await write(y2, ['y1', 'y2']);
  // a comes back (cursor 4, past the restored head 2)
  const a2 = device(server, room, aHeld.resume, aHeld.doc);
  const all = ['a1', 'a2', 'a3', 'a4', 'y1', 'y2'];
  await until(async () => a2.t.synced && a2.t.pending === 0 && keys(a2).join() === all.join(), `a has ${all.join()} (has ${keys(a2).join()})`, 20_000);
  await until(async () => keys(y2).join() === all.join(), `y has ${all.join()} (has ${keys(y2).join()})`, 20_000);
  // the server has it all again: a new device reads it from storage
  const z = device(server, room);
  await until(async () => z.t.synced && keys(z).join() === all.join(), `a new device has ${all.join()} (has ${keys(z).join()})`, 20_000);
  // no 4410: a restore is not a delete; both devices keep the new generation
  expect([...a2.refused, ...y2.refused, ...z.refused]).toEqual([]);
  await until(async () => last(a2)?.generation !== generation && last(a2)?.generation === last(y2)?.generation, 'a and y in the new generation');
}

it('SQLite file restored from a copy taken after the room existed, then the restore step: every device ends with every entry', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'client-sealed-restore-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, SQLITE_FILE_NAME);
  const copy = join(dir, 'backup.sqlite');
  await restoredRoom(
    {
      env: { STORAGE: 'sqlite', DATA_DIR: dir },
      async backup() {
        await run(process.execPath, ['--import', 'tsx', join(root, 'deploy/sqlite-backup.ts'), copy, file], { cwd: root, timeout: 30_000 });
      },
      async restore() {
        for (const f of ['-wal', '-shm']) rmSync(file + f, { force: true });
        copyFileSync(copy, file);
      },
    },
    'test-conversation-restore-sqlite',
  );
}, 90_000);

it('PostgreSQL database restored with pg_restore from a pg_dump taken after the room existed, then the restore step: every device ends with every entry', async () => {
  const admin = new URL(testDatabaseUrl());
  const database = `sync_sealed_restore_${randomBytes(4).toString('hex')}`;
  const url = `postgres://postgres@${admin.host}/${database}`;
  const sql = async (text: string): Promise<void> => {
    const c = new pg.Client({ connectionString: admin.href });
    await c.connect();
    try {
      await c.query(text);
    } finally {
      await c.end();
    }
  };
  await sql(`CREATE DATABASE ${database}`);
  cleanup.push(() => sql(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
  const dir = mkdtempSync(join(tmpdir(), 'client-sealed-restore-pg-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const dump = join(dir, 'sync.dump');
  const pgArgs = ['-h', admin.hostname, '-p', admin.port || '5432', '-U', 'postgres', '-d', database];
  await restoredRoom(
    {
      env: { STORAGE: 'postgres', DATABASE_URL: url },
      async backup() {
        await run('pg_dump', [...pgArgs, '-Fc', '-f', dump], { timeout: 30_000 });
      },
      async restore() {
        await run('pg_restore', [...pgArgs, '--clean', '--if-exists', '--single-transaction', dump], { timeout: 30_000 });
      },
    },
    'test-conversation-restore-postgres',
  );
}, 90_000);
