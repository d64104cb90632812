import { once } from 'node:events';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { baseEnv, exitWithin, listeningPort, runEntry, type RunningProcess } from '../../../test/helpers/process.js';

const ENTRY = 'apps/server/src/main.ts';
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

  it('a port already in use exits 1 with a fatal log line', async () => {
    const blocker = createServer();
    blocker.listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const port = (blocker.address() as { port: number }).port;
    try {
      proc = runEntry(ENTRY, baseEnv({ HOST: '127.0.0.1', PORT: String(port), STORAGE: 'memory' }));
      const fatal = await proc.waitForLine((l) => l['level'] === 60);
      expect(fatal['msg']).toBe('could not listen');
      expect(JSON.stringify(fatal['err'])).toContain('EADDRINUSE');
      expect((await exitWithin(proc, 15_000)).code).toBe(1);
    } finally {
      blocker.close();
    }
  });
});
