/**
 * The benchmarks run our server as it ships: deploy/bundle.ts's output started with node, the
 * flags and environment of deploy/launch.ts and server.mjs, not the tsx loader (which costs
 * start-up time, memory and some CPU).
 * Built once per process into a temporary directory outside the repository, removed at exit.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundle } from '../../deploy/bundle.js';
import { SERVER_ENV, SERVER_NODE_FLAGS, TURN_NODE_FLAGS } from '../../deploy/launch.js';

let built: Promise<string> | undefined;

/**
 * The directory holding server.mjs (and sqlite-worker.mjs, node_modules/) of a fresh bundle, or
 * BENCH_BUNDLE_DIR's: a bundle built beforehand (`node --import tsx deploy/bundle.ts DIR`), so
 * that the code measured is the code of that moment, whatever the working tree holds by the time
 * the run starts.
 */
export function productionBundle(): Promise<string> {
  const prebuilt = process.env['BENCH_BUNDLE_DIR'];
  if (prebuilt) return Promise.resolve(prebuilt);
  if (!built) {
    const work = mkdtempSync(join(tmpdir(), 'bench-bundle-'));
    process.once('exit', () => rmSync(work, { recursive: true, force: true }));
    const out = join(work, 'app');
    built = bundle(out).then(() => out);
  }
  return built;
}

/** An HS256 secret for the runs with auth on (the server wants at least 32 bytes). */
export const BENCH_AUTH_SECRET = 'bench-auth-secret-0123456789abcdef0123';
/**
 * The per-sub limits for the benches: every bench connection uses the one sub 'bench', and they
 * open more sockets (bench/memory.ts: 5,000 per endpoint) and join more signaling topics
 * (bench/signaling.ts: 100 topics x 10 clients at once) than a real user.
 */
export const BENCH_ONE_SUB_ENV = { MAX_CONNECTIONS_PER_SUB: '1000000', SIGNALING_TOPIC_JOINS_PER_MINUTE: '1000000' } as const;

/**
 * The node flags our server ships with (deploy/launch.ts), then BENCH_NODE_FLAGS: extra flags,
 * e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to see where its time goes (a later V8 flag wins,
 * e.g. `--max-semi-space-size=16` to compare with V8's default).
 */
export function serverNodeFlags(): string[] {
  return [...SERVER_NODE_FLAGS, ...benchNodeFlags()];
}

/** The node flags the TURN bundle ships with (deploy/launch.ts), then BENCH_NODE_FLAGS. */
export function turnNodeFlags(): string[] {
  return [...TURN_NODE_FLAGS, ...benchNodeFlags()];
}

function benchNodeFlags(): string[] {
  return (process.env['BENCH_NODE_FLAGS'] ?? '').split(' ').filter(Boolean);
}

/** The environment our server ships with (deploy/launch.ts), for the benches to add to theirs. */
export function serverEnv(): Record<string, string> {
  return { ...SERVER_ENV };
}
