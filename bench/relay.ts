/**
 * Relay fan-out: ROOMS rooms x CLIENTS clients exchanging small Yjs updates, against our /relay
 * (the production bundle, auth on, default limits), the stock @y/websocket-server, a bare `ws`
 * forwarder (the floor: every frame to the other sockets of its path, no Yjs, no storage) and
 * Hocuspocus, each a child process on loopback, in one run. For each server, on one process:
 * a warm-up, a phase at a fixed light delivery rate, a phase at a fixed high rate (near the
 * stock server's knee on this machine: it sustained about 84,000 deliveries/s with p99 < 50 ms,
 * docs/benchmarks.md), then, from two steps below the high rate, rates rising by
 * BENCH_RELAY_STEP until p99 reaches 50 ms or deliveries go missing: the highest rate that
 * passed is the server's saturation rate. Rounds interleave the servers;
 * every figure is the median of the rounds. A delivery is one update arriving at one other
 * client of its room (servers that merge updates deliver several in one message: each counts).
 * Server CPU comes from /proc/<pid>/stat, so the load generator's own CPU is not charged.
 *
 *   node --import tsx bench/relay.ts
 *   env: BENCH_ROOMS (100), BENCH_CLIENTS (10), BENCH_RELAY_RATE (5695 deliveries/s),
 *        BENCH_RELAY_HIGH_RATE (60000 deliveries/s; 0: no such phase), BENCH_SECONDS (5),
 *        BENCH_WARMUP_SECONDS (2), BENCH_STEP_SECONDS (3), BENCH_RELAY_STEP (1.4), BENCH_MAX_STEPS (10),
 *        BENCH_ROUNDS (3), BENCH_RELAY_STORAGE (sqlite), BENCH_BASELINE_DIR (before/after: a checkout run from source, or a bundle directory with server.mjs;
 *        BENCH_BASELINE_NODE_FLAGS: a bundle baseline's extra node flags instead of BENCH_NODE_FLAGS),
 *        BENCH_NODE_FLAGS (node flags for our server, e.g. --cpu-prof --cpu-prof-dir=DIR), BENCH_THREAD_CPU (print CPU per thread,
 *        by thread id: the main thread and, with SQLite, its worker), BENCH_RELAY_TARGETS (only these, comma-separated:
 *        ours, baseline, stock, bare, hocuspocus; e.g. ours,stock,bare for a quick A/B)
 */
import { pathToFileURL } from 'node:url';
import { median, rounds, spread } from './lib/stats.js';
import { runTarget, type PhaseResult, type RelayPlan, type ServerRound } from './relay/measure.js';
import { relayTargets, removeBenchDirs } from './relay/targets.js';

const num = (name: string, dflt: number): number => Number(process.env[name] ?? dflt);

export function relayPlan(): RelayPlan {
  return {
    rooms: num('BENCH_ROOMS', 100),
    clients: num('BENCH_CLIENTS', 10),
    fixedRate: num('BENCH_RELAY_RATE', 5695),
    highRate: num('BENCH_RELAY_HIGH_RATE', 60_000),
    seconds: num('BENCH_SECONDS', 5),
    warmupSeconds: num('BENCH_WARMUP_SECONDS', 2),
    stepSeconds: num('BENCH_STEP_SECONDS', 3),
    stepFactor: num('BENCH_RELAY_STEP', 1.4),
    maxSteps: num('BENCH_MAX_STEPS', 10),
    p99LimitMs: 50,
  };
}

export async function run(): Promise<Array<Record<string, string | number>>> {
  const plan = relayPlan();
  const targets = await relayTargets();
  const n = rounds();
  const all: ServerRound[][] = targets.map(() => []);
  try {
    for (let r = 0; r < n; r++) {
      for (const [i, t] of targets.entries()) {
        const result = await runTarget(t, plan);
        all[i]?.push(result);
        const high = result.high ? `, high ${result.high.cpuUsPerDelivery.toFixed(2)} us/delivery p99 ${result.high.p99ms.toFixed(1)} ms${result.high.ok ? '' : ' (failed)'}` : '';
        process.stdout.write(`round ${r + 1}/${n} ${t.name}: fixed ${result.fixed.cpuUsPerDelivery.toFixed(2)} us/delivery p99 ${result.fixed.p99ms.toFixed(1)} ms${high}, saturation ${Math.round(result.saturation)}/s${result.failedAt ? ` (failed at ${result.failedAt.targetRate}/s: p99 ${result.failedAt.p99ms.toFixed(0)} ms, ${result.failedAt.delivered}/${result.failedAt.expected})` : ''}\n`);
      }
    }
  } finally {
    removeBenchDirs();
  }
  return rows(all, plan);
}

function rows(all: ServerRound[][], plan: RelayPlan): Array<Record<string, string | number>> {
  const stockIdx = all.findIndex((l) => l[0]?.server.startsWith('@y/websocket-server'));
  const floorIdx = all.findIndex((l) => l[0]?.server.startsWith('bare ws'));
  const cpuOf = (pick: (r: ServerRound) => PhaseResult | undefined) => all.map((l) => median(l.map((r) => pick(r)?.cpuUsPerDelivery ?? NaN)));
  const cpu = cpuOf((r) => r.fixed);
  const highCpu = cpuOf((r) => r.high);
  const mine = cpu[0] as number;
  const stock = cpu[stockIdx] ?? NaN;
  const floor = cpu[floorIdx] ?? NaN;
  process.stdout.write(
    `relay: ${plan.rooms} rooms x ${plan.clients} clients; fixed ${plan.fixedRate} deliveries/s for ${plan.seconds} s after ${plan.warmupSeconds} s warm-up; ` +
      `saturation: x${plan.stepFactor} steps of ${plan.stepSeconds} s while p99 < ${plan.p99LimitMs} ms; median of ${all[0]?.length ?? 0} round(s); ours runs the production bundle\n`,
  );
  return all.map((list, i) => {
    const f = (pick: (r: ServerRound) => number) => median(list.map(pick));
    const c = cpu[i] as number;
    return {
      server: list[0]?.server ?? '?',
      'fixed deliveries/s': Math.round(f((r) => r.fixed.deliveriesPerSecond)),
      'p50 ms': Number(f((r) => r.fixed.p50ms).toFixed(2)),
      'p99 ms': Number(f((r) => r.fixed.p99ms).toFixed(2)),
      'CPU us/delivery': Number(c.toFixed(2)),
      'CPU rounds': spread(list.map((r) => r.fixed.cpuUsPerDelivery)),
      'of which kernel': Number(f((r) => r.fixed.sysUsPerDelivery).toFixed(2)),
      'CPU vs stock': Number((c / stock).toFixed(2)),
      'CPU vs bare ws': Number((c / floor).toFixed(2)),
      'CPU vs ours': Number((c / mine).toFixed(2)),
      ...(plan.highRate > 0 ? highRow(list, highCpu, i, stockIdx, floorIdx) : {}),
      'saturation deliveries/s (p99 < 50 ms)': Math.round(f((r) => r.saturation)),
      'saturation rounds': spread(list.map((r) => r.saturation), 0),
    };
  });
}

/** The columns of the phase at the high rate (near the stock server's knee). */
function highRow(list: ServerRound[], cpu: number[], i: number, stockIdx: number, floorIdx: number): Record<string, string | number> {
  const f = (pick: (r: PhaseResult) => number) => median(list.map((r) => (r.high ? pick(r.high) : NaN)));
  const c = cpu[i] as number;
  return {
    'high deliveries/s': Math.round(f((r) => r.deliveriesPerSecond)),
    'high p99 ms': Number(f((r) => r.p99ms).toFixed(2)),
    'high CPU us/delivery': Number(c.toFixed(2)),
    'high CPU rounds': spread(list.map((r) => r.high?.cpuUsPerDelivery ?? NaN)),
    'high CPU vs stock': Number((c / (cpu[stockIdx] ?? NaN)).toFixed(2)),
    'high CPU vs bare ws': Number((c / (cpu[floorIdx] ?? NaN)).toFixed(2)),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run().then(
    (r) => (console.table(r), process.exit(0)),
    (err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exit(1);
    },
  );
}
