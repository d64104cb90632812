/**
 * What the runtime image runs, short of Docker: deploy/bundle.ts's output, outside the
 * repository (so nothing resolves from the workspace's node_modules), started with plain
 * `node` and the .env.example values. The native addon loads from the bundle, both
 * processes serve health and metrics, and the HEALTHCHECK script reports them.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode, encode } from '@jridgewell/sourcemap-codec';
import { bundle, ownSourcesOnly, runtimeClosure, RUNTIME_PACKAGES, type SourceMap } from '../deploy/bundle.js';
import { SERVER_NODE_FLAGS } from '../deploy/launch.js';
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
    // a scoped package (@sync-suite/udp-relay) is a folder in its scope's folder
    const topLevel = [...new Set(runtimeClosure(RUNTIME_PACKAGES).map((name) => name.split('/')[0] as string))].sort();
    expect(readdirSync(join(out, 'node_modules')).sort()).toEqual(topLevel);
    expect(readdirSync(join(out, 'node_modules/@sync-suite'))).toEqual(['udp-relay']);
    expect(existsSync(join(out, 'node_modules/@sync-suite/udp-relay/src'))).toBe(false);
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

  it.runIf(process.platform === 'linux')("loads TURN's native ChannelData path (packages/udp-relay) from the bundle", async () => {
    const script = "const m = (await import('node:module')).createRequire(import.meta.url)('@sync-suite/udp-relay'); console.log(m.addon ? Object.keys(m.addon).sort().join(',') : m.reason)";
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: out, timeout: 10_000 });
    expect(stdout.trim()).toBe('channels,close,counters,open,route');
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
    // TURN's /metrics takes the same METRICS_TOKEN (apps/turn/src/health.ts)
    expect((await fetch(s.turnMetricsUrl)).status).toBe(401);
    expect((await scrapeMetrics(s.turnMetricsUrl, { authorization: `Bearer ${SMOKE_SECRETS.METRICS_TOKEN}` })).types.get('turn_allocations')).toBe('gauge');
  });

  it('with --enable-source-maps, a stack trace from our code names its source file and line', async () => {
    // off by default (RSS at start, deploy/launch.ts), on when an operator debugs
    // A preload that prints the stack of the first write to stderr: the configuration error
    // written by our code (packages/shared/src/config/env.ts, called from apps/server/src/main.ts).
    const probe = join(work, 'stack-probe.mjs');
    writeFileSync(
      probe,
      'const write = process.stderr.write.bind(process.stderr); let seen = false;\n' +
        "process.stderr.write = (chunk, ...rest) => { if (!seen) { seen = true; write(`${new Error('probe').stack}\\n`); } return write(chunk, ...rest); };\n",
    );
    const started = run(process.execPath, [...SERVER_NODE_FLAGS, '--enable-source-maps', '--import', probe, join(out, 'server.mjs')], { cwd: out, env: { PATH: process.env['PATH'], AUTH_SECRET: 'short' }, timeout: 10_000 });
    const stderr = await started.then(
      () => '',
      (err: unknown) => String((err as { stderr?: string }).stderr),
    );
    expect(stderr).toContain('AUTH_SECRET');
    expect(stderr).toMatch(/at loadEnvOrExit \(.*packages[\\/]shared[\\/]src[\\/]config[\\/]env\.ts:\d+:\d+\)/);
    expect(stderr).toMatch(/apps[\\/]server[\\/]src[\\/]main\.ts:\d+:\d+/);
  });

  it("maps only our own sources: the maps name no dependency's file and hold no source text", () => {
    // with the flag node keeps each map in memory from start (deploy/launch.ts, deploy/bundle.ts)
    for (const file of readdirSync(out).filter((f) => f.endsWith('.mjs.map'))) {
      const map = JSON.parse(readFileSync(join(out, file), 'utf8')) as SourceMap & { sourcesContent?: unknown };
      expect(map.sourcesContent, file).toBeUndefined();
      expect(map.sources.filter((source) => source.includes('node_modules')), file).toEqual([]);
    }
    const server = JSON.parse(readFileSync(join(out, 'server.mjs.map'), 'utf8')) as SourceMap;
    expect(server.sources).toEqual(expect.arrayContaining([expect.stringMatching(/apps\/server\/src\/main\.ts$/)]));
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

describe('ownSourcesOnly (deploy/bundle.ts)', () => {
  it('unmaps what dependency code covered, so that no lookup there lands on our source before it', () => {
    const map: SourceMap = {
      version: 3,
      sources: ['../node_modules/dep/index.js', '../apps/server/src/a.ts', '../node_modules/dep/other.js', '../packages/shared/src/b.ts'],
      names: ['depName', 'ourName'],
      mappings: encode([
        [[0, 1, 0, 0], [10, 0, 5, 2, 0], [20, 2, 1, 1], [30, 3, 7, 4, 1]],
        [[0, 0, 0, 0], [5, 1, 2, 0]],
      ]),
    };
    const trimmed = ownSourcesOnly(map);
    expect(trimmed.sources).toEqual(['../apps/server/src/a.ts', '../packages/shared/src/b.ts']);
    expect(trimmed.names).toEqual(['ourName']);
    // columns 10-29 of line 1 and 0-4 of line 2 were dependency code: one unmapped segment each
    expect(decode(trimmed.mappings)).toEqual([
      [[0, 0, 0, 0], [10], [30, 1, 7, 4, 0]],
      [[0], [5, 0, 2, 0]],
    ]);
  });
});
