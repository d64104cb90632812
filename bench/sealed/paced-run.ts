/**
 * The sealed bench's paced run (a fixed pace per client, one round), kept beside the relay
 * bench's rate-and-saturation harness (bench/relay/measure.ts) until the sealed scenario moves to it.
 * One measured run of the relay bench against one target: start it, connect ROOMS x CLIENTS
 * clients, send every client's updates at a steady pace (warm-up first, unmeasured), count each
 * delivery to each other client of its room, and charge the server process its CPU.
 */
import { once } from 'node:events';
import * as encoding from 'lib0/encoding';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { freePort } from '../../test/helpers/process.js';
import { cpuTimes } from '../lib/cpu-times.js';
import { percentile } from '../lib/percentile.js';
import { connect, frame, roomName, type Client } from '../relay/client.js';
import type { Target } from '../relay/targets.js';

export interface BenchOptions {
  rooms: number;
  clients: number;
  updates: number;
  intervalMs: number;
  /** updates per client sent first and not measured (JIT warm-up): steady state is what a server lives in */
  warmup: number;
}

export interface BenchResult {
  server: string;
  delivered: number;
  expected: number;
  seconds: number;
  updatesPerSecond: number;
  p50ms: number;
  p99ms: number;
  cpuUsPerDelivery: number;
  /** the kernel's share (stime) of cpuUsPerDelivery: loopback TCP is processed in the sender */
  sysUsPerDelivery: number;
}

/** Waits until the server accepts TCP connections (its log format varies by server). */
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
    await new Promise((r) => setTimeout(r, 100)); // startup has no event we can subscribe to across three servers
  }
}

const clientIdOf = (c: Client): number => 1_000_000 + c.room * 1000 + c.idx;

/** Counts each measured update's first arrival at each other client, with its latency. */
function deliveryCounter(expected: number) {
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  const seen = new Set<string>();
  let delivered = 0;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((r) => (resolveDone = r));
  const onUpdate = (c: Client, u: Uint8Array): void => {
    const now = performance.now();
    // Every struct counts (one per sent update): servers that merge updates deliver several at once.
    for (const struct of Y.decodeUpdate(u).structs) {
      if (struct.id.client === clientIdOf(c)) continue; // own echo
      for (let clock = struct.id.clock; clock < struct.id.clock + struct.length; clock++) {
        const key = `${struct.id.client}:${clock}`;
        const t = sentAt.get(key);
        if (t === undefined || seen.has(`${c.room}.${c.idx}>${key}`)) continue; // initial sync content, or a repeat
        seen.add(`${c.room}.${c.idx}>${key}`);
        latencies.push(now - t);
        if (++delivered === expected) resolveDone();
      }
    }
  };
  return { sentAt, latencies, done, onUpdate, delivered: () => delivered };
}

/** Pre-encode every update of every client, so the clients spend their time sending, not encoding. */
function encodePlans(target: Target, clients: Client[], perClient: number): Array<Array<{ key: string; bytes: Uint8Array }>> {
  return clients.map((c) => {
    const doc = new Y.Doc();
    doc.clientID = clientIdOf(c);
    const out: Array<{ key: string; bytes: Uint8Array }> = [];
    doc.on('update', (u: Uint8Array) => out.push({ key: `${doc.clientID}:${out.length}`, bytes: frame(target, roomName(c.room), (e) => (encoding.writeVarUint(e, 0), encoding.writeVarUint(e, 2), encoding.writeVarUint8Array(e, u))) }));
    for (let n = 0; n < perClient; n++) doc.getMap('m').set(`k${n}`, n);
    return out;
  });
}

export async function runTarget(target: Target, opts: BenchOptions): Promise<BenchResult> {
  const port = await freePort();
  const proc = target.start(port);
  try {
    await waitReady(port, proc);
    const expected = opts.rooms * opts.clients * opts.updates * (opts.clients - 1);
    const counter = deliveryCounter(expected);
    const clients: Client[] = [];
    for (let r = 0; r < opts.rooms; r++) for (let i = 0; i < opts.clients; i++) clients.push(await connect(target, port, r, i, counter.onUpdate));
    const plans = encodePlans(target, clients, opts.warmup + opts.updates);

    // Warm-up updates are not in sentAt, so their deliveries are not counted; measuring starts after them.
    let cpu0 = cpuTimes(proc.pid as number);
    let t0 = performance.now();
    let tick = 0;
    const timer = setInterval(() => {
      if (tick >= opts.warmup + opts.updates) return clearInterval(timer);
      if (tick === opts.warmup) {
        cpu0 = cpuTimes(proc.pid as number);
        t0 = performance.now();
      }
      clients.forEach((c, i) => {
        const u = plans[i]?.[tick];
        if (!u) return;
        if (tick >= opts.warmup) counter.sentAt.set(u.key, performance.now());
        c.ws.send(u.bytes);
      });
      tick++;
    }, opts.intervalMs);
    const timeout = new Promise<void>((r) => setTimeout(r, 120_000).unref());
    await Promise.race([counter.done, timeout]);
    clearInterval(timer);
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = cpuTimes(proc.pid as number);
    for (const c of clients) c.ws.terminate();
    return result(target, counter.delivered(), expected, seconds, counter.latencies, [cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]]);
  } finally {
    proc.kill('SIGKILL');
    await once(proc, 'exit').catch(() => undefined);
  }
}

function result(target: Target, delivered: number, expected: number, seconds: number, latencies: number[], [user, sys]: [number, number]): BenchResult {
  const cpu = user + sys;
  latencies.sort((a, b) => a - b);
  return {
    server: target.name,
    delivered,
    expected,
    seconds,
    updatesPerSecond: delivered / seconds,
    p50ms: percentile(latencies, 0.5),
    p99ms: percentile(latencies, 0.99),
    cpuUsPerDelivery: (cpu * 1e6) / Math.max(1, delivered),
    sysUsPerDelivery: (sys * 1e6) / Math.max(1, delivered),
  };
}
