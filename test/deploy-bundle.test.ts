/**
 * What the runtime image runs, short of Docker: deploy/bundle.ts's output, outside the
 * repository (so nothing resolves from the workspace's node_modules), started with plain
 * `node` and the .env.example values. The native addon loads from the bundle, both
 * processes serve health and metrics, and the HEALTHCHECK script reports them.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundle, runtimeClosure, RUNTIME_PACKAGES } from '../deploy/bundle.js';
import { SMOKE_SECRETS, startStack, type Stack } from '../deploy/ci/stack.js';
import { scrapeMetrics } from './helpers/prometheus.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'sync-bundle-'));
const out = join(work, 'app');
const dataDir = join(work, 'data');
let stack: Stack | undefined;

/** Exit code of `node healthcheck.mjs <role>` with the given env. */
async function healthcheck(role: string, env: Record<string, string>): Promise<number> {
  try {
    await run(process.execPath, [join(out, 'healthcheck.mjs'), role], { env: { PATH: process.env['PATH'], ...env }, timeout: 10_000 });
    return 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

beforeAll(async () => {
  // Nothing above the bundle may offer packages, or the test would prove nothing.
  for (let dir = dirname(out); dir !== dirname(dir); dir = dirname(dir)) expect(existsSync(join(dir, 'node_modules'))).toBe(false);
  await bundle(out);
  stack = await startStack({ root, cwd: out, dataDir, args: (app) => [join(out, `${app}.mjs`)] });
});

afterAll(async () => {
  await stack?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('the bundled runtime (what deploy/Dockerfile copies into the image)', () => {
  it('holds only the bundles and the runtime packages', () => {
    expect(readdirSync(out).sort()).toEqual(expect.arrayContaining(['healthcheck.mjs', 'node_modules', 'package.json', 'server.mjs', 'turn.mjs']));
    expect(readdirSync(join(out, 'node_modules')).sort()).toEqual(runtimeClosure(RUNTIME_PACKAGES));
    expect(existsSync(join(out, 'node_modules/better-sqlite3/deps'))).toBe(false);
    expect(existsSync(join(out, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node'))).toBe(true);
  });

  it("inlines better-sqlite3's JavaScript in the storage thread's bundle (only the addon is loaded from node_modules)", () => {
    // an import of the package would have node resolve its CommonJS files in the storage thread at
    // start, paging in V8's optimising compiler (apps/server/src/storage/sqlite-open.ts)
    const worker = readFileSync(join(out, 'sqlite-worker.mjs'), 'utf8');
    expect(worker).not.toMatch(/from\s*["']better-sqlite3["']/);
    expect(worker).toContain('better_sqlite3.node');
  });

  it('loads better-sqlite3 from the bundle and opens a database', async () => {
    const script = "const D = (await import('better-sqlite3')).default; const db = new D(':memory:'); console.log(db.prepare('select 41 + 1 as n').get().n)";
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: out, timeout: 10_000 });
    expect(stdout.trim()).toBe('42');
  });

  it('serves health and metrics from both processes (SQLite storage, production mode)', async () => {
    const s = stack as Stack;
    const ready = await fetch(`${s.serverUrl}/readyz`);
    expect(ready.status).toBe(200);
    // The storage check ran against the SQLite file the bundled addon opened.
    expect(Object.keys(((await ready.json()) as { checks: object }).checks)).toContain('storage');
    expect(readdirSync(dataDir).some((f) => /\.(db|sqlite3?)$/.test(f))).toBe(true);
    const metrics = await scrapeMetrics(`${s.serverUrl}/metrics`, { authorization: `Bearer ${SMOKE_SECRETS.METRICS_TOKEN}` });
    expect(metrics.types.get('sync_relay_connections')).toBe('gauge');
    expect((await scrapeMetrics(s.turnMetricsUrl)).types.get('turn_allocations')).toBe('gauge');
  });

  it('HEALTHCHECK script: 0 for a live process, 1 for a dead port', async () => {
    const s = stack as Stack;
    const serverPort = new URL(s.serverUrl).port;
    const turnMetricsPort = new URL(s.turnMetricsUrl).port;
    expect(await healthcheck('server', { HOST: '0.0.0.0', PORT: serverPort })).toBe(0);
    expect(await healthcheck('turn', { TURN_METRICS_HOST: '127.0.0.1', TURN_METRICS_PORT: turnMetricsPort })).toBe(0);
    expect(await healthcheck('server', { PORT: '9' })).toBe(1);
  });
});
