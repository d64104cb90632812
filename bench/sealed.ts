/**
 * Sealed rooms, side by side with the plain relay (one run):
 *  - fan-out: ROOMS x DEVICES devices, each sending UPDATES every INTERVAL_MS (one fixed-rate
 *    phase of the relay bench's harness, bench/relay/measure.ts, after a warm-up); server CPU per
 *    delivery on /sealed against /relay and the bare `ws` forwarder (the floor), each a child
 *    process (sealed/fanout.ts and relay/measure.ts);
 *  - a new device's load of a MESSAGES-message conversation (EDITS edits each) through /sealed
 *    against /relay, and the bytes stored for the sealed room after compaction against the
 *    document's own encoded size (sealed/load.ts).
 *
 *   node --import tsx bench/sealed.ts
 *   env: BENCH_SEALED_ROOMS (100), BENCH_SEALED_DEVICES (10), BENCH_SEALED_UPDATES (20),
 *        BENCH_SEALED_INTERVAL_MS (100), BENCH_SEALED_MESSAGES (10000), BENCH_SEALED_EDITS (10)
 */
import { pathToFileURL } from 'node:url';
import { runTarget, type PhaseResult, type RelayPlan } from './relay/measure.js';
import { relayTargets, removeBenchDirs } from './relay/targets.js';
import { runSealedFanout } from './sealed/fanout.js';
import { runLoad } from './sealed/load.js';

const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
/** updates per device sent first and not measured (JIT warm-up) */
const WARMUP_UPDATES = 5;

export async function run(): Promise<Array<Record<string, unknown>>> {
  const rooms = env('BENCH_SEALED_ROOMS', 100);
  const clients = env('BENCH_SEALED_DEVICES', 10);
  const updates = env('BENCH_SEALED_UPDATES', 20);
  const intervalMs = env('BENCH_SEALED_INTERVAL_MS', 100);
  // Every device sends one update per interval, each delivered to the room's other devices.
  const plan: RelayPlan = {
    rooms,
    clients,
    fixedRate: (rooms * clients * (clients - 1) * 1000) / intervalMs,
    highRate: 0,
    seconds: (updates * intervalMs) / 1000,
    warmupSeconds: (WARMUP_UPDATES * intervalMs) / 1000,
    stepSeconds: 0,
    stepFactor: 2,
    maxSteps: 0, // one fixed rate, no saturation search
    p99LimitMs: 1000,
  };
  const fanout: Array<{ server: string; fixed: PhaseResult }> = [await runSealedFanout(plan)];
  try {
    for (const t of (await relayTargets()).filter((t) => t.name.startsWith('sync-suite /relay') || t.name.startsWith('bare ws'))) fanout.push(await runTarget(t, plan));
  } finally {
    removeBenchDirs();
  }
  const floor = fanout.find((r) => r.server.startsWith('bare ws'))?.fixed;
  const rows: Array<Record<string, unknown>> = fanout.map(({ server, fixed: r }) => ({
    scenario: `fan-out ${rooms} rooms x ${clients} devices x ${updates} updates every ${intervalMs} ms`,
    server,
    'delivered/expected': `${r.delivered}/${r.expected}`,
    'p50 ms': r.p50ms.toFixed(2),
    'p99 ms': r.p99ms.toFixed(2),
    'CPU us/delivery': r.cpuUsPerDelivery.toFixed(2),
    'CPU vs bare ws': floor ? (r.cpuUsPerDelivery / floor.cpuUsPerDelivery).toFixed(2) : '',
  }));
  process.stdout.write('sealed fan-out\n');
  console.table(rows);
  const load = await runLoad(env('BENCH_SEALED_MESSAGES', 10_000), env('BENCH_SEALED_EDITS', 10));
  process.stdout.write('new device load and stored bytes\n');
  console.table(load);
  return [...rows, ...load.map((l) => ({ scenario: `new device load, ${l.messages} messages (${l.edits} edits)`, ...l }))];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run().catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
}
