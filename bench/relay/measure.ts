/**
 * One server of the relay bench, one round: start it, connect ROOMS x CLIENTS clients, warm it
 * up, then run phases at fixed delivery rates on the same process: the fixed rate (a light
 * load), the high rate (near the stock server's knee) and then ever higher rates until p99
 * reaches the limit or deliveries go missing (saturation). Each phase charges the server process the CPU it used.
 */
import { once } from 'node:events';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { freePort } from '../../test/helpers/process.js';
import { cpuTimes, threadCpuTimes } from '../lib/cpu-times.js';
import { pace } from '../lib/pace.js';
import { percentile } from '../lib/percentile.js';
import { connect, frame, roomName, type Client } from './client.js';
import type { Target } from './targets.js';

export interface RelayPlan {
  rooms: number;
  clients: number;
  /** deliveries per second of the fixed-rate phase */
  fixedRate: number;
  /**
   * deliveries per second of a second fixed-rate phase, near the stock server's knee (0: none);
   * the saturation search starts two steps below it (else below fixedRate)
   */
  highRate: number;
  seconds: number;
  /** unmeasured seconds at the fixed rate first (JIT warm-up): steady state is what a server lives in */
  warmupSeconds: number;
  /** seconds per saturation step, each `stepFactor` times the previous rate */
  stepSeconds: number;
  stepFactor: number;
  maxSteps: number;
  /** a phase passes when p99 stays under this and every delivery arrived */
  p99LimitMs: number;
}

export interface PhaseResult {
  targetRate: number;
  delivered: number;
  expected: number;
  deliveriesPerSecond: number;
  p50ms: number;
  p99ms: number;
  cpuUsPerDelivery: number;
  /** the kernel's share (stime) of cpuUsPerDelivery: loopback TCP is processed in the sender */
  sysUsPerDelivery: number;
  ok: boolean;
}

export interface ServerRound {
  server: string;
  fixed: PhaseResult;
  /** the phase at plan.highRate, when there is one */
  high?: PhaseResult;
  /** the highest delivery rate that passed (p99 under the limit, nothing lost); 0 if none did */
  saturation: number;
  /** the phase that failed, to show why the search stopped */
  failedAt?: PhaseResult;
}

/** Waits until the server accepts WebSocket connections (its log format varies by server). */
async function waitReady(port: number, proc: ReturnType<Target['start']>): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error('server exited during start');
    const ok = await new Promise<boolean>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
      ws.on('open', () => (ws.terminate(), resolve(true)));
      ws.on('unexpected-response', () => resolve(true));
      ws.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error('server did not start');
    await new Promise((r) => setTimeout(r, 100)); // startup has no event we can subscribe to across these servers
  }
}

const clientIdOf = (c: Client): number => 1_000_000 + c.room * 1000 + c.idx;
/** One number per (client, clock): clientIDs stay below 2^21 and clocks below 2^31. */
const keyOf = (client: number, clock: number): number => client * 2 ** 31 + clock;

/** Counts each measured update's first arrival at each other client of its room, with its latency. */
class Deliveries {
  private sent = new Map<number, { n: number; t: number }>();
  private seen = new Set<number>();
  latencies: number[] = [];
  delivered = 0;
  expected = 0;
  private onDone: () => void = () => undefined;

  reset(expected: number): Promise<void> {
    this.sent = new Map();
    this.seen = new Set();
    this.latencies = [];
    this.delivered = 0;
    this.expected = expected;
    return new Promise((r) => (this.onDone = r));
  }

  sentNow(client: number, clock: number, n: number): void {
    this.sent.set(keyOf(client, clock), { n, t: performance.now() });
  }

  readonly onUpdate = (c: Client, u: Uint8Array): void => {
    const now = performance.now();
    const own = clientIdOf(c);
    // Fast path: one struct of one client (what a forwarder delivers); servers that merge updates
    // (Hocuspocus) deliver several at once: each struct counts.
    const d = decoding.createDecoder(u);
    if (decoding.readVarUint(d) === 1 && decoding.readVarUint(d) === 1) {
      const client = decoding.readVarUint(d);
      if (client !== own) this.count(c, keyOf(client, decoding.readVarUint(d)), now);
      return;
    }
    for (const struct of Y.decodeUpdate(u).structs) {
      if (struct.id.client === own) continue;
      for (let clock = struct.id.clock; clock < struct.id.clock + struct.length; clock++) this.count(c, keyOf(struct.id.client, clock), now);
    }
  };

  private count(c: Client, key: number, now: number): void {
    const s = this.sent.get(key);
    if (!s) return; // initial sync content or an earlier phase's update
    const seenKey = s.n * 1024 + c.idx;
    if (this.seen.has(seenKey)) return;
    this.seen.add(seenKey);
    this.latencies.push(now - s.t);
    if (++this.delivered === this.expected) this.onDone();
  }
}

interface Session {
  target: Target;
  pid: number;
  clients: Client[];
  docs: Y.Doc[];
  deliveries: Deliveries;
  plan: RelayPlan;
}

/** Each client's next updates, encoded before the clock starts: the clients should spend their time sending. */
function encodeUpdates(s: Session, sends: number): Array<{ client: Client; id: number; clock: number; bytes: Uint8Array }> {
  const out: Array<{ client: Client; id: number; clock: number; bytes: Uint8Array }> = [];
  for (let n = 0; n < sends; n++) {
    const i = n % s.clients.length;
    const client = s.clients[i] as Client;
    const doc = s.docs[i] as Y.Doc;
    const clock = Y.getState(doc.store, doc.clientID);
    let bytes: Uint8Array = new Uint8Array();
    const take = (u: Uint8Array): void => {
      bytes = frame(s.target, roomName(client.room), (e) => (encoding.writeVarUint(e, 0), encoding.writeVarUint(e, 2), encoding.writeVarUint8Array(e, u)));
    };
    doc.once('update', take);
    doc.getMap('m').set(`k${clock}`, n);
    out.push({ client, id: doc.clientID, clock, bytes });
  }
  return out;
}

/** Sends at `rate` deliveries per second for `seconds`, then waits (bounded) for the stragglers. */
async function phase(s: Session, rate: number, seconds: number): Promise<PhaseResult> {
  const receivers = s.plan.clients - 1;
  const sendsPerSecond = rate / receivers;
  const updates = encodeUpdates(s, Math.round(sendsPerSecond * seconds));
  const done = s.deliveries.reset(updates.length * receivers);
  const cpu0 = cpuTimes(s.pid);
  const threads0 = process.env['BENCH_THREAD_CPU'] ? threadCpuTimes(s.pid) : null;
  const t0 = performance.now();
  await pace(sendsPerSecond, seconds, (n) => {
    const u = updates[n];
    if (!u) return;
    s.deliveries.sentNow(u.id, u.clock, n);
    if (u.client.ws.readyState === WebSocket.OPEN) u.client.ws.send(u.bytes);
  });
  let grace: NodeJS.Timeout | undefined;
  await Promise.race([done, new Promise<void>((r) => (grace = setTimeout(r, 2000 + 100 * seconds)))]);
  clearTimeout(grace);
  const elapsed = (performance.now() - t0) / 1000;
  const cpu1 = cpuTimes(s.pid);
  const { delivered, expected, latencies } = s.deliveries;
  if (threads0) printThreads(s.pid, threads0, threadCpuTimes(s.pid), delivered);
  return phaseResult({ rate, delivered, expected, elapsed, latencies, cpu: [cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]], p99LimitMs: s.plan.p99LimitMs });
}

/** A phase's figures from what it counted (also the sealed bench's, bench/sealed/fanout.ts). */
export function phaseResult(p: {
  rate: number;
  delivered: number;
  expected: number;
  /** seconds from the first send to the last delivery (or the grace's end) */
  elapsed: number;
  latencies: number[];
  /** server CPU seconds used: user, system */
  cpu: [number, number];
  p99LimitMs: number;
}): PhaseResult {
  const lat = p.latencies.sort((a, b) => a - b);
  const [user, sys] = p.cpu;
  const p99ms = percentile(lat, 0.99);
  return {
    targetRate: Math.round(p.rate),
    delivered: p.delivered,
    expected: p.expected,
    deliveriesPerSecond: p.delivered / p.elapsed,
    p50ms: percentile(lat, 0.5),
    p99ms,
    cpuUsPerDelivery: ((user + sys) * 1e6) / Math.max(1, p.delivered),
    sysUsPerDelivery: (sys * 1e6) / Math.max(1, p.delivered),
    ok: p.delivered === p.expected && p99ms < p.p99LimitMs,
  };
}

/**
 * BENCH_THREAD_CPU: each thread's share of a phase's CPU per delivery (user/system), busiest
 * first, threads that used nothing left out. The main thread is the event loop; with SQLite the
 * busiest other thread is its worker (storage/sqlite-worker.ts), with fsync in its system time.
 */
function printThreads(pid: number, before: ReturnType<typeof threadCpuTimes>, after: ReturnType<typeof threadCpuTimes>, delivered: number): void {
  const per = (seconds: number): string => ((seconds * 1e6) / Math.max(1, delivered)).toFixed(2);
  const used = [...after].map(([tid, [name, u, sys]]) => {
    const [, u0, s0] = before.get(tid) ?? [name, 0, 0];
    return { label: tid === pid ? `main ${tid}` : `${name} ${tid}`, user: u - u0, sys: sys - s0 };
  });
  const lines = used
    .filter((t) => t.user + t.sys > 0)
    .sort((x, y) => y.user + y.sys - (x.user + x.sys))
    .map((t) => `  ${t.label}: ${per(t.user)} user + ${per(t.sys)} sys us/delivery`);
  process.stdout.write(`threads (${delivered} deliveries):\n${lines.join('\n')}\n`);
}

async function connectAll(target: Target, port: number, plan: RelayPlan, onUpdate: Deliveries['onUpdate']): Promise<Client[]> {
  const clients: Client[] = [];
  const pairs: Array<[number, number]> = [];
  for (let r = 0; r < plan.rooms; r++) for (let i = 0; i < plan.clients; i++) pairs.push([r, i]);
  // In batches: a thousand handshakes at once would time out on a loaded machine.
  for (let b = 0; b < pairs.length; b += 50) {
    clients.push(...(await Promise.all(pairs.slice(b, b + 50).map(([r, i]) => connect(target, port, r, i, onUpdate)))));
  }
  return clients;
}

export async function runTarget(target: Target, plan: RelayPlan): Promise<ServerRound> {
  const port = await freePort();
  const proc = target.start(port);
  try {
    await waitReady(port, proc);
    const deliveries = new Deliveries();
    const clients = await connectAll(target, port, plan, deliveries.onUpdate);
    const docs = clients.map((c) => {
      const doc = new Y.Doc();
      doc.clientID = clientIdOf(c);
      return doc;
    });
    const s: Session = { target, pid: proc.pid as number, clients, docs, deliveries, plan };
    await phase(s, plan.fixedRate, plan.warmupSeconds);
    const fixed = await phase(s, plan.fixedRate, plan.seconds);
    const high = plan.highRate > 0 ? await phase(s, plan.highRate, plan.seconds) : undefined;
    // The search starts two steps below the highest fixed rate, whether or not its phase passed.
    let saturation = 0;
    let failedAt: PhaseResult | undefined;
    for (let step = 1, rate = Math.max(plan.fixedRate, plan.highRate) / plan.stepFactor ** 2; !failedAt && step <= plan.maxSteps; step++, rate *= plan.stepFactor) {
      // A failed step runs once more before the search stops: on a shared machine one stall
      // of another process can push a single phase's p99 over the limit.
      let r = await phase(s, rate, plan.stepSeconds);
      if (!r.ok) r = await phase(s, rate, plan.stepSeconds);
      if (r.ok) saturation = r.deliveriesPerSecond;
      else failedAt = r;
    }
    for (const c of clients) c.ws.terminate();
    return { server: target.name, fixed, ...(high ? { high } : {}), saturation, ...(failedAt ? { failedAt } : {}) };
  } finally {
    // SIGTERM first: ours commits and exits, which also writes a --cpu-prof profile (BENCH_NODE_FLAGS).
    const exited = proc.exitCode === null ? once(proc, 'exit').catch(() => undefined) : Promise.resolve();
    proc.kill('SIGTERM');
    const killer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  }
}
