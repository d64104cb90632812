/**
 * WARM_UP_AT_START (apps/server/src/lifecycle/warm-up.ts): the relay connection the server makes
 * to itself before its port opens goes the whole way (a token it signs, a room opened, a sync
 * answer), and leaves nothing behind: no stored row, no auth failure, no warning.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { warmUp } from '../src/lifecycle/warm-up.js';
import { scrapeMetric } from '../../../test/helpers/prometheus.js';
import { startServer, TEST_SECRET, type TestServer } from '../../../test/helpers/server.js';
import { eventually } from '../../../test/helpers/timeout.js';

let server: TestServer | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await server?.close();
  server = undefined;
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function rowsIn(file: string): Record<string, number> {
  const db = new Database(file, { readonly: true });
  try {
    const tables = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'sqlite_sequence'").all();
    return Object.fromEntries(tables.map(({ name }) => [name, (db.prepare(`SELECT count(*) AS n FROM "${name}"`).get() as { n: number }).n]));
  } finally {
    db.close();
  }
}

describe('warm-up at start', () => {
  it('joins a room of its own with a token it signs, gets the answer, and leaves nothing stored', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'warm-up-'));
    dirs.push(dataDir);
    server = await startServer({ AUTH_SECRET: TEST_SECRET, STORAGE: 'sqlite', DATA_DIR: dataDir, ROOM_IDLE_MS: '1000' });
    const { app, config, url } = server;
    const outcome = await warmUp(app, config);
    expect(outcome).toMatchObject({ done: true, room: expect.stringMatching(/^sync-suite-conversation-warm-up\.[0-9a-f]{16}$/) });
    // The room was opened (a refused token opens none) and nothing was refused.
    expect(await scrapeMetric(`${url}/metrics`, 'sync_relay_rooms')).toBe(1);
    expect(await scrapeMetric(`${url}/metrics`, 'sync_auth_failures_total')).toBe(0);
    await eventually(async () => (await scrapeMetric(`${url}/metrics`, 'sync_relay_rooms')) === 0, 10_000, 'the warm-up room to leave memory');
    expect(await scrapeMetric(`${url}/metrics`, 'sync_relay_connections')).toBe(0);
    await server.close();
    expect(Object.entries(rowsIn(join(dataDir, 'sync-relay.sqlite'))).filter(([, n]) => n > 0)).toEqual([]);
    expect(server.logs.filter((l) => Number(l['level']) >= 40)).toEqual([]);
  });

  it('a sub of its own each time and a token within TOKEN_MAX_TTL_SECONDS: new-room budgets and short token lifetimes do not refuse it', async () => {
    // One new room per sub and hour: a warm-up sharing one sub (as every restart would, with
    // REDIS_URL) was refused the second time; a 60 s token was refused under a 30 s maximum.
    server = await startServer({ AUTH_SECRET: TEST_SECRET, MAX_NEW_ROOMS_PER_SUB_PER_HOUR: '1', TOKEN_MAX_TTL_SECONDS: '30' });
    expect(await warmUp(server.app, server.config)).toMatchObject({ done: true });
    expect(await warmUp(server.app, server.config)).toMatchObject({ done: true });
    expect(await scrapeMetric(`${server.url}/metrics`, 'sync_auth_failures_total')).toBe(0);
  });

  it('with auth off it connects without a token', async () => {
    server = await startServer({});
    expect(await warmUp(server.app, server.config)).toMatchObject({ done: true });
  });

  it('uses ROOM_PREFIX and the first room type that is not sealed', async () => {
    server = await startServer({ AUTH_SECRET: TEST_SECRET, ROOM_PREFIX: 'acme', ROOM_TYPES: 'conversation,notes', SEALED_ROOM_TYPES: 'conversation' });
    expect(await warmUp(server.app, server.config)).toMatchObject({ done: true, room: expect.stringMatching(/^acme-notes-warm-up\./) });
  });

  it('with every room type sealed there is nothing to warm, which is not a failure', async () => {
    server = await startServer({ ROOM_TYPES: 'conversation', SEALED_ROOM_TYPES: 'conversation' });
    expect(await warmUp(server.app, server.config)).toEqual({ done: false, failed: false, reason: expect.stringMatching(/sealed/) });
  });

  it('a refused or late warm-up is reported as failed, and the server still serves', async () => {
    server = await startServer({ AUTH_SECRET: TEST_SECRET });
    // A token signed with another secret: the server closes the connection without answering.
    expect(await warmUp(server.app, { ...server.config, AUTH_SECRET: 'another-secret-at-least-32-bytes-long!!' })).toEqual({ done: false, failed: true, reason: 'closed before answering' });
    expect(await warmUp(server.app, server.config, 1)).toEqual({ done: false, failed: true, reason: 'timed out after 1 ms' });
    expect(await warmUp(server.app, server.config)).toMatchObject({ done: true });
  });
});
