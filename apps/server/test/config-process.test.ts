import { once } from 'node:events';
import { createSocket } from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { baseEnv, exitWithin, listeningPort, runEntry, type RunningProcess } from '../../../test/helpers/process.js';

const ENTRY = 'apps/server/src/main.ts';
const TURN_ENTRY = 'apps/turn/src/main.ts';
let proc: RunningProcess | undefined;
afterEach(async () => {
  await proc?.kill();
  proc = undefined;
});

/** Start the server with env, expect it to refuse: exit 1 and exactly one stderr line. */
async function refusal(env: Record<string, string>): Promise<string> {
  proc = runEntry(ENTRY, baseEnv({ HOST: '127.0.0.1', STORAGE: 'memory', ...env }));
  const exit = await exitWithin(proc, 20_000);
  expect(exit.code).toBe(1);
  const lines = proc.stderr().split('\n').filter((l) => l.trim().length > 0);
  expect(lines).toHaveLength(1);
  expect(proc.stdout()).toBe('');
  return lines[0] as string;
}

describe('server start-up configuration', () => {
  it('an invalid value exits 1 with one line naming the variable', async () => {
    expect(await refusal({ PORT: 'abc' })).toMatch(/^invalid configuration: PORT: /);
  });

  it('an unknown storage engine names STORAGE', async () => {
    expect(await refusal({ STORAGE: 'mongodb' })).toMatch(/^invalid configuration: STORAGE: .*sqlite/);
  });

  it('NODE_ENV=production without AUTH_SECRET refuses to start', async () => {
    expect(await refusal({ NODE_ENV: 'production', PORT: '0' })).toMatch(/^invalid configuration: AUTH_SECRET: .*production/);
  });

  it('a short AUTH_SECRET is refused without printing it', async () => {
    const line = await refusal({ AUTH_SECRET: 'hunter2-hunter2', PORT: '0' });
    expect(line).toMatch(/^invalid configuration: AUTH_SECRET: /);
    expect(line).not.toContain('hunter2');
  });

  it('a WEBHOOK_URL with user:password@ is refused, naming the variable and not printing the password', async () => {
    const line = await refusal({ WEBHOOK_URL: 'https://hookuser:S3cretHookPass@hooks.example.com/sync', WEBHOOK_SECRET: 'webhook-secret-0123456789', PORT: '0' });
    expect(line).toMatch(/^invalid configuration: WEBHOOK_URL: .*user name or password/);
    expect(line).not.toContain('S3cretHookPass');
    expect(line).not.toContain('hookuser');
  });

  it('REDIS_URL without STORAGE=postgres is refused', async () => {
    expect(await refusal({ REDIS_URL: 'redis://127.0.0.1:6379', PORT: '0' })).toMatch(/^invalid configuration: REDIS_URL: /);
  });

  it('without AUTH_SECRET it starts and warns that auth is off', async () => {
    proc = runEntry(ENTRY, baseEnv({ HOST: '127.0.0.1', PORT: '0', STORAGE: 'memory' }));
    const warning = await proc.waitForLine((l) => l['level'] === 40 && /AUTH_SECRET/.test(String(l['msg'])));
    expect(String(warning['msg'])).toMatch(/authentication is OFF/);
    const port = await listeningPort(proc);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    proc.child.kill('SIGTERM');
    expect((await exitWithin(proc, 15_000)).code).toBe(0);
  });

  it('with AUTH_SECRET it does not warn', async () => {
    proc = runEntry(ENTRY, baseEnv({ HOST: '127.0.0.1', PORT: '0', STORAGE: 'memory', AUTH_SECRET: 's'.repeat(40) }));
    await listeningPort(proc);
    proc.child.kill('SIGTERM');
    expect((await exitWithin(proc, 15_000)).code).toBe(0);
    expect(proc.lines.filter((l) => /AUTH_SECRET/.test(String(l['msg'])))).toEqual([]);
  });

  it('warms up with one relay connection to itself before it listens, unless WARM_UP_AT_START=false', async () => {
    const msgs = (p: RunningProcess) => p.lines.map((l) => String(l['msg']));
    proc = runEntry(ENTRY, baseEnv({ HOST: '127.0.0.1', PORT: '0', STORAGE: 'memory', AUTH_SECRET: 's'.repeat(40) }));
    await listeningPort(proc);
    const warmed = msgs(proc).findIndex((m) => m.startsWith('warmed up'));
    expect(warmed).toBeGreaterThanOrEqual(0);
    expect(warmed).toBeLessThan(msgs(proc).findIndex((m) => m.startsWith('Server listening at')));
    expect(proc.lines.filter((l) => Number(l['level']) >= 40)).toEqual([]);
    proc.child.kill('SIGTERM');
    expect((await exitWithin(proc, 15_000)).code).toBe(0);

    proc = runEntry(ENTRY, baseEnv({ HOST: '127.0.0.1', PORT: '0', STORAGE: 'memory', AUTH_SECRET: 's'.repeat(40), WARM_UP_AT_START: 'false' }));
    await listeningPort(proc);
    expect(msgs(proc).filter((m) => /warm/.test(m))).toEqual([]);
    proc.child.kill('SIGTERM');
    expect((await exitWithin(proc, 15_000)).code).toBe(0);
  });

});

/** Start `entry` with env, expect exit 1 and exactly one stderr line (stdout may hold log lines). */
async function startupFailure(env: Record<string, string>, entry = ENTRY): Promise<string> {
  proc = runEntry(entry, baseEnv({ HOST: '127.0.0.1', PORT: '0', ...env }));
  const exit = await exitWithin(proc, 30_000);
  expect(exit.code).toBe(1);
  const lines = proc.stderr().split('\n').filter((l) => l.trim().length > 0);
  expect(lines).toHaveLength(1);
  return lines[0] as string;
}

async function withBusyPort<T>(kind: 'tcp' | 'udp', use: (port: number) => Promise<T>): Promise<T> {
  const blocker = kind === 'tcp' ? createServer().listen(0, '127.0.0.1') : createSocket('udp4').bind(0, '127.0.0.1');
  await once(blocker, 'listening');
  const port = (blocker.address() as { port: number }).port;
  try {
    return await use(port);
  } finally {
    blocker.close();
  }
}

describe('server start-up failures name the variable in one line', () => {
  it('a port already in use names PORT', async () => {
    const line = await withBusyPort('tcp', (port) => startupFailure({ PORT: String(port), STORAGE: 'memory' }));
    expect(line).toMatch(/^startup failed: PORT: 127\.0\.0\.1:\d+ is already in use \(EADDRINUSE\)$/);
  });

  it('a DATA_DIR that is a file names DATA_DIR', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sync-startup-')), 'not-a-dir');
    writeFileSync(file, 'x');
    expect(await startupFailure({ STORAGE: 'sqlite', DATA_DIR: file })).toMatch(/^startup failed: DATA_DIR: cannot open the SQLite database in .*not-a-dir: /);
  });

  it('an unreachable PostgreSQL names DATABASE_URL without its password', async () => {
    const line = await startupFailure({ STORAGE: 'postgres', DATABASE_URL: 'postgres://postgres:hunter2-secret@127.0.0.1:1/test' });
    expect(line).toMatch(/^startup failed: DATABASE_URL: cannot use PostgreSQL at 127\.0\.0\.1:1\/test: .*ECONNREFUSED/);
    expect(line).not.toContain('hunter2');
    expect(proc?.stdout()).not.toContain('hunter2');
  });

  it('a missing PostgreSQL database names DATABASE_URL', async () => {
    const line = await startupFailure({ STORAGE: 'postgres', DATABASE_URL: 'postgres://postgres:hunter2-secret@127.0.0.1:5432/no_such_database_here' });
    expect(line).toMatch(/^startup failed: DATABASE_URL: .*"no_such_database_here" does not exist/);
    expect(line).not.toContain('hunter2');
  });

  it('an unreachable Redis names REDIS_URL without its password', async () => {
    const line = await startupFailure({ STORAGE: 'postgres', DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test', REDIS_URL: 'redis://:hunter2-secret@127.0.0.1:1' });
    expect(line).toMatch(/^startup failed: REDIS_URL: cannot connect to Redis at 127\.0\.0\.1:1: .*ECONNREFUSED/);
    expect(line).not.toContain('hunter2');
  });

  it('the TURN server names TURN_PORT and TURN_METRICS_PORT when they are in use', async () => {
    const turnEnv = { TURN_SECRET: 'turn-secret-123-0123456789abcdefgh', TURN_LISTEN_IP: '127.0.0.1', TURN_METRICS_HOST: '127.0.0.1' };
    const udp = await withBusyPort('udp', (port) => startupFailure({ ...turnEnv, TURN_PORT: String(port), TURN_METRICS_PORT: '0' }, TURN_ENTRY));
    expect(udp).toMatch(/^startup failed: TURN_PORT: 127\.0\.0\.1:\d+ is already in use \(EADDRINUSE\)$/);
    const tcp = await withBusyPort('tcp', (port) => startupFailure({ ...turnEnv, TURN_PORT: '0', TURN_METRICS_PORT: String(port) }, TURN_ENTRY));
    expect(tcp).toMatch(/^startup failed: TURN_METRICS_PORT: 127\.0\.0\.1:\d+ is already in use \(EADDRINUSE\)$/);
  });
});
