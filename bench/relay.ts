/**
 * Relay throughput: ROOMS rooms x CLIENTS clients, each client sending UPDATES small Yjs updates
 * at a steady pace, against our /relay, the stock @y/websocket-server, a bare `ws` forwarder (the
 * floor: every frame to the other sockets of its path, no Yjs, no storage) and Hocuspocus, each
 * run as a child process on loopback. Reports delivered updates/s, delivery latency p50/p99 and
 * server CPU microseconds per delivered update (from /proc/<pid>/stat), with ratios to ours and
 * to the bare forwarder. A delivery is one update arriving at one other client of its room
 * (servers that merge updates, like Hocuspocus, deliver several in one message: each counts).
 * The servers are in relay/targets.ts, the client in relay/client.ts, one run in relay/measure.ts.
 *
 *   node --import tsx bench/relay.ts
 *   env: BENCH_ROOMS, BENCH_CLIENTS, BENCH_UPDATES, BENCH_INTERVAL_MS, BENCH_WARMUP, BENCH_ROUNDS, BENCH_RELAY_STORAGE,
 *        BENCH_BASELINE_DIR (a checkout of an older sync-suite, run as an extra target: before/after)
 */
import { pathToFileURL } from 'node:url';
import { runTarget, type BenchOptions, type BenchResult } from './relay/measure.js';
import { removeBenchDirs, targets } from './relay/targets.js';

export type { BenchOptions, BenchResult } from './relay/measure.js';
export { runTarget } from './relay/measure.js';
export { targets } from './relay/targets.js';

export async function run(opts: Partial<BenchOptions> = {}): Promise<BenchResult[]> {
  const o: BenchOptions = {
    rooms: opts.rooms ?? Number(process.env['BENCH_ROOMS'] ?? 10),
    clients: opts.clients ?? Number(process.env['BENCH_CLIENTS'] ?? 5),
    updates: opts.updates ?? Number(process.env['BENCH_UPDATES'] ?? 300),
    intervalMs: opts.intervalMs ?? Number(process.env['BENCH_INTERVAL_MS'] ?? 10),
    warmup: opts.warmup ?? Number(process.env['BENCH_WARMUP'] ?? 100),
  };
  // Rounds run the targets interleaved and keep each one's median (by CPU): a shared machine is noisy.
  const rounds = Math.max(1, Number(process.env['BENCH_ROUNDS'] ?? 1));
  const all: BenchResult[][] = targets.map(() => []);
  try {
    for (let r = 0; r < rounds; r++) for (const [i, t] of targets.entries()) all[i]?.push(await runTarget(t, o));
  } finally {
    removeBenchDirs();
  }
  const results = all.map(median);
  printResults(results, all, o, rounds);
  return results;
}

function printResults(results: BenchResult[], all: BenchResult[][], o: BenchOptions, rounds: number): void {
  const mine = results[0] as BenchResult;
  const floor = results.find((r) => r.server.startsWith('bare ws')) ?? mine;
  const rows = results.map((r) => ({
    server: r.server,
    'delivered/expected': `${r.delivered}/${r.expected}`,
    'updates/s': Math.round(r.updatesPerSecond),
    'p50 ms': r.p50ms.toFixed(2),
    'p99 ms': r.p99ms.toFixed(2),
    'CPU us/delivery': r.cpuUsPerDelivery.toFixed(2),
    'of which kernel': r.sysUsPerDelivery.toFixed(2),
    'CPU vs ours': (r.cpuUsPerDelivery / mine.cpuUsPerDelivery).toFixed(2),
    'CPU vs bare ws': (r.cpuUsPerDelivery / floor.cpuUsPerDelivery).toFixed(2),
  }));
  process.stdout.write(`relay: ${o.rooms} rooms x ${o.clients} clients x ${o.updates} updates, one update per client every ${o.intervalMs} ms after ${o.warmup} unmeasured, median of ${rounds} round(s)\n`);
  console.table(rows);
  if (rounds > 1) process.stdout.write(`CPU us/delivery per round: ${all.map((l) => `${l[0]?.server}: ${l.map((r) => r.cpuUsPerDelivery.toFixed(1)).join(' ')}`).join('; ')}\n`);
}

function median(list: BenchResult[]): BenchResult {
  const sorted = [...list].sort((a, b) => a.cpuUsPerDelivery - b.cpuUsPerDelivery);
  return sorted[Math.floor((sorted.length - 1) / 2)] as BenchResult;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run().catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
}
