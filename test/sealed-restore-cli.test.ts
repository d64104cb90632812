/**
 * deploy/sealed-restore.ts on databases with nothing to restore: an empty SQLite file and an empty
 * PostgreSQL database are left as they are (no table made), twice; a SQLite file that is not
 * there, STORAGE=memory and arguments are errors (exit 1, one line). What it does to sealed rooms:
 * packages/client/test/sealed-restore.test.ts; from the bundle: test/deploy-backup*.test.ts.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { testDatabaseUrl } from './helpers/test-env.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'sealed-restore-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function step(env: Record<string, string>, args: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', join(root, 'deploy/sealed-restore.ts'), ...args], {
      cwd: root,
      env: { PATH: process.env['PATH'], ...env },
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('sealed-restore with nothing to restore', () => {
  it('SQLite: an empty file stays empty (0 rooms, twice); a missing file, STORAGE=memory and arguments fail with one line', async () => {
    const file = join(dir, 'sync-relay.sqlite');
    expect(await step({ DATA_DIR: dir })).toEqual({ code: 1, stdout: '', stderr: `sealed-restore: no database at ${file}\n` });
    new Database(file).close();
    for (let i = 0; i < 2; i++) {
      const r = await step({ DATA_DIR: dir, STORAGE: '' });
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ storage: 'sqlite', file, newGenerations: 0 });
    }
    const db = new Database(file, { readonly: true });
    try {
      expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all()).toEqual([]);
    } finally {
      db.close();
    }
    expect(await step({ STORAGE: 'memory' })).toMatchObject({ code: 1, stderr: 'sealed-restore: STORAGE=memory keeps nothing to restore\n' });
    expect(await step({ DATA_DIR: dir }, ['extra'])).toMatchObject({ code: 1, stderr: expect.stringMatching(/^sealed-restore: usage: /) });
  });

  it('PostgreSQL: an empty database stays empty (0 rooms, twice); no DATABASE_URL fails', async () => {
    const admin = new URL(testDatabaseUrl());
    const database = `sync_sealed_restore_cli_${randomBytes(4).toString('hex')}`;
    const sql = async (url: string, text: string): Promise<pg.QueryResult> => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        return await c.query(text);
      } finally {
        await c.end();
      }
    };
    await sql(admin.href, `CREATE DATABASE ${database}`);
    try {
      const url = `postgres://postgres@${admin.host}/${database}`;
      for (let i = 0; i < 2; i++) {
        const r = await step({ STORAGE: 'postgres', DATABASE_URL: url });
        expect(r.code).toBe(0);
        expect(JSON.parse(r.stdout)).toEqual({ storage: 'postgres', newGenerations: 0 });
      }
      expect((await sql(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).rows).toEqual([]);
      expect(await step({ STORAGE: 'postgres' })).toMatchObject({ code: 1, stderr: 'sealed-restore: STORAGE=postgres needs DATABASE_URL\n' });
    } finally {
      await sql(admin.href, `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    }
  });
});
