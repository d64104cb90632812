/**
 * The benchmarks run our server as it ships: deploy/bundle.ts's output started with plain
 * `node server.mjs`, not the tsx loader (which costs start-up time, memory and some CPU).
 * Built once per process into a temporary directory outside the repository, removed at exit.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundle } from '../../deploy/bundle.js';

let built: Promise<string> | undefined;

/** The directory holding server.mjs (and sqlite-worker.mjs, node_modules/) of a fresh bundle. */
export function productionBundle(): Promise<string> {
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

/** BENCH_NODE_FLAGS: extra node flags for our server, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to see where its time goes. */
export function serverNodeFlags(): string[] {
  return (process.env['BENCH_NODE_FLAGS'] ?? '').split(' ').filter(Boolean);
}
