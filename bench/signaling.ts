/**
 * Signaling fan-out: ROOMS rooms x PEERS peers on y-webrtc signaling, every peer subscribed to
 * its room and publishing 300-byte signals (the size of an ICE candidate), against our /signal
 * (the production bundle, auth on, default limits) and the stock y-webrtc server
 * (node_modules/y-webrtc/bin/server.js), each a child process on loopback, in one run. For
 * each server, on one process: a warm-up, a phase at a fixed publish rate, then rates rising
 * by BENCH_SIGNAL_STEP until p99 reaches 50 ms or deliveries go missing (saturation). A
 * delivery is one publish arriving at one subscriber (the sender hears its own, as with the
 * stock server). Medians of BENCH_ROUNDS interleaved rounds. Server CPU from /proc/<pid>/stat.
 *
 *   node --import tsx bench/signaling.ts
 *   env: BENCH_SIGNAL_ROOMS (100), BENCH_PEERS (5), BENCH_SIGNAL_RATE (5695 publishes/s), BENCH_SECONDS (5),
 *        BENCH_WARMUP_SECONDS (2), BENCH_STEP_SECONDS (3), BENCH_SIGNAL_STEP (1.4), BENCH_MAX_STEPS (8), BENCH_ROUNDS (3)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRoomToken } from '@sync-suite/shared';
import { freePort } from '../test/helpers/process.js';
import { BENCH_AUTH_SECRET, BENCH_ONE_SUB_ENV, productionBundle, serverEnv, serverNodeFlags } from './lib/bundle.js';
import { cpuTimes } from './lib/cpu-times.js';
import { pace } from './lib/pace.js';
import { percentile } from './lib/percentile.js';
import { median, rounds, spread } from './lib/stats.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
// y-webrtc's ws (8.x); the root `ws` is an older copy pulled in by another package.
const { WebSocket } = createRequire(resolve(ROOT, 'node_modules/y-webrtc/package.json'))('ws') as typeof import('ws');
type WS = InstanceType<typeof WebSocket>;

const num = (name: string, dflt: number) => Number(process.env[name] ?? dflt);
const PLAN = {
  rooms: num('BENCH_SIGNAL_ROOMS', 100),
  peers: num('BENCH_PEERS', 5),
  rate: num('BENCH_SIGNAL_RATE', 5695),
  seconds: num('BENCH_SECONDS', 5),
  warmup: num('BENCH_WARMUP_SECONDS', 2),
  stepSeconds: num('BENCH_STEP_SECONDS', 3),
  step: num('BENCH_SIGNAL_STEP', 1.4),
  maxSteps: num('BENCH_MAX_STEPS', 8),
  p99LimitMs: 50,
};
const PAYLOAD = 'x'.repeat(300);

interface Server {
  name: string;
  start(port: number): ChildProcess;
  url(port: number): string;
}

interface Phase {
  rate: number;
  delivered: number;
  expected: number;
  deliveriesPerSecond: number;
  p50ms: number;
  p99ms: number;
  cpuUsPerDelivery: number;
  ok: boolean;
}

async function servers(): Promise<Server[]> {
  const dir = await productionBundle();
  const token = await createRoomToken(BENCH_AUTH_SECRET, { sub: 'bench', rooms: ['bench-conversation-*'], ttlSeconds: 3600 });
  const env = { PATH: process.env['PATH'] ?? '' };
  return [
    {
      name: 'sync-suite /signal',
      // Auth on (a token per connection) and every limit at its default.
      start: (port) => spawn(process.execPath, [...serverNodeFlags(), join(dir, 'server.mjs')], { cwd: dir, env: { ...serverEnv(), ...env, HOST: '127.0.0.1', PORT: String(port), STORAGE: 'memory', LOG_LEVEL: 'warn', AUTH_SECRET: BENCH_AUTH_SECRET, ...BENCH_ONE_SUB_ENV }, stdio: ['ignore', 'pipe', 'pipe'] }),
      url: (port) => `ws://127.0.0.1:${port}/signal?token=${token}`,
    },
    {
      name: 'stock y-webrtc',
      start: (port) => spawn(process.execPath, ['node_modules/y-webrtc/bin/server.js'], { cwd: ROOT, env: { ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] }),
      url: (port) => `ws://127.0.0.1:${port}`,
    },
  ];
}

/** Resolves once the port accepts TCP connections (the servers log readiness differently, ours not at LOG_LEVEL=warn). */
async function started(child: ChildProcess, port: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited (${child.exitCode}) before it was ready`);
    const ok = await new Promise<boolean>((done) => {
      const sock = connect(port, '127.0.0.1', () => (sock.destroy(), done(true)));
      sock.on('error', () => done(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100)); // no readiness event is common to both servers
  }
  throw new Error('server did not start');
}

interface Peer {
  ws: WS;
  room: string;
}

async function connectPeers(url: string): Promise<Peer[]> {
  const peers: Peer[] = [];
  for (let r = 0; r < PLAN.rooms; r++) {
    const room = `bench-conversation-${r}`;
    const batch = await Promise.all(
      Array.from({ length: PLAN.peers }, async () => {
        const ws = new WebSocket(url);
        await once(ws, 'open');
        ws.send(JSON.stringify({ type: 'subscribe', topics: [room] }));
        const pong = once(ws, 'message');
        ws.send('{"type":"ping"}'); // answered after the subscribe: the subscription is in place
        await pong;
        return { ws, room };
      }),
    );
    peers.push(...batch);
  }
  return peers;
}

async function phase(peers: Peer[], pid: number, rate: number, seconds: number): Promise<Phase> {
  const latencies: number[] = [];
  let delivered = 0;
  const total = Math.round(rate * seconds);
  const expected = total * PLAN.peers;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((r) => (finish = r));
  const onMessage = (raw: Buffer) => {
    const msg = JSON.parse(raw.toString()) as { type: string; data?: { t: number } };
    if (msg.type !== 'publish' || !msg.data) return;
    latencies.push(performance.now() - msg.data.t);
    if (++delivered === expected) finish();
  };
  for (const p of peers) p.ws.on('message', onMessage);
  const cpu0 = cpuTimes(pid);
  const t0 = performance.now();
  await pace(rate, seconds, (n) => {
    const p = peers[n % peers.length] as Peer;
    p.ws.send(JSON.stringify({ type: 'publish', topic: p.room, data: { type: 'signal', from: n, t: performance.now(), payload: PAYLOAD } }));
  });
  let grace: NodeJS.Timeout | undefined;
  await Promise.race([done, new Promise<void>((r) => (grace = setTimeout(r, 2000)))]);
  clearTimeout(grace);
  const elapsed = (performance.now() - t0) / 1000;
  const cpu1 = cpuTimes(pid);
  for (const p of peers) p.ws.off('message', onMessage);
  latencies.sort((a, b) => a - b);
  const p99ms = percentile(latencies, 0.99);
  return {
    rate: Math.round(rate),
    delivered,
    expected,
    deliveriesPerSecond: delivered / elapsed,
    p50ms: percentile(latencies, 0.5),
    p99ms,
    cpuUsPerDelivery: ((cpu1[0] - cpu0[0] + cpu1[1] - cpu0[1]) * 1e6) / Math.max(1, delivered),
    ok: delivered === expected && p99ms < PLAN.p99LimitMs,
  };
}

interface Round {
  server: string;
  fixed: Phase;
  /** publishes per second of the highest passing phase */
  saturation: number;
}

async function runServer(s: Server): Promise<Round> {
  const port = await freePort();
  const child = s.start(port);
  try {
    await started(child, port);
    const pid = child.pid as number;
    const peers = await connectPeers(s.url(port));
    await phase(peers, pid, PLAN.rate, PLAN.warmup);
    const fixed = await phase(peers, pid, PLAN.rate, PLAN.seconds);
    // From two steps below the fixed rate, upwards, whether or not the fixed rate passed.
    let saturation = 0;
    for (let i = 1, rate = PLAN.rate / PLAN.step ** 2; i <= PLAN.maxSteps; i++, rate *= PLAN.step) {
      // A failed step runs once more: one stall of another process can spoil a single phase's p99.
      let r = await phase(peers, pid, rate, PLAN.stepSeconds);
      if (!r.ok) r = await phase(peers, pid, rate, PLAN.stepSeconds);
      if (!r.ok) break;
      saturation = rate;
    }
    for (const p of peers) p.ws.terminate();
    return { server: s.name, fixed, saturation };
  } finally {
    child.kill('SIGKILL');
  }
}

export async function run(): Promise<Array<Record<string, string | number>>> {
  const list = await servers();
  const n = rounds();
  const all: Round[][] = list.map(() => []);
  for (let r = 0; r < n; r++) {
    for (const [i, s] of list.entries()) {
      const result = await runServer(s);
      all[i]?.push(result);
      process.stdout.write(`round ${r + 1}/${n} ${s.name}: ${result.fixed.cpuUsPerDelivery.toFixed(2)} us/delivery, p99 ${result.fixed.p99ms.toFixed(1)} ms, saturation ${Math.round(result.saturation)} publishes/s\n`);
    }
  }
  const cpu = all.map((l) => median(l.map((r) => r.fixed.cpuUsPerDelivery)));
  const stock = cpu[1] ?? NaN;
  process.stdout.write(
    `signaling: ${PLAN.rooms} rooms x ${PLAN.peers} peers, 300-byte payloads; fixed ${PLAN.rate} publishes/s for ${PLAN.seconds} s after ${PLAN.warmup} s warm-up; ` +
      `saturation: x${PLAN.step} steps while p99 < ${PLAN.p99LimitMs} ms; median of ${n} round(s); ours runs the production bundle with auth and limits on\n`,
  );
  return all.map((l, i) => {
    const f = (pick: (r: Round) => number) => median(l.map(pick));
    const c = cpu[i] as number;
    return {
      server: l[0]?.server ?? '?',
      'deliveries/s': Math.round(f((r) => r.fixed.deliveriesPerSecond)),
      'p50 ms': Number(f((r) => r.fixed.p50ms).toFixed(2)),
      'p99 ms': Number(f((r) => r.fixed.p99ms).toFixed(2)),
      'CPU us/delivery': Number(c.toFixed(2)),
      'CPU rounds': spread(l.map((r) => r.fixed.cpuUsPerDelivery), 2),
      'CPU vs stock': Number((c / stock).toFixed(2)),
      'saturation publishes/s (p99 < 50 ms)': Math.round(f((r) => r.saturation)),
      'saturation rounds': spread(l.map((r) => r.saturation), 0),
    };
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  run().then(
    (r) => (console.table(r), process.exit(0)),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
