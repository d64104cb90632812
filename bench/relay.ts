/**
 * Relay throughput: ROOMS rooms x CLIENTS clients, each client sending UPDATES small Yjs updates
 * at a steady pace, against our /relay, the stock @y/websocket-server, a bare `ws` forwarder (the
 * floor: every frame to the other sockets of its path, no Yjs, no storage) and Hocuspocus, each
 * run as a child process on loopback. Reports delivered updates/s, delivery latency p50/p99 and
 * server CPU microseconds per delivered update (from /proc/<pid>/stat), with ratios to ours and
 * to the bare forwarder. A delivery is one update arriving at one other client of its room
 * (servers that merge updates, like Hocuspocus, deliver several in one message: each counts).
 *
 *   node --import tsx bench/relay.ts
 *   env: BENCH_ROOMS, BENCH_CLIENTS, BENCH_UPDATES, BENCH_INTERVAL_MS, BENCH_WARMUP, BENCH_ROUNDS, BENCH_RELAY_STORAGE,
 *        BENCH_BASELINE_DIR (a checkout of an older sync-suite, run as an extra target: before/after)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import WebSocket from 'ws';
import * as Y from 'yjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLK_TCK = 100; // Linux USER_HZ

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

interface Target {
  name: string;
  start(port: number): ChildProcess;
  ready: RegExp;
  url(port: number, room: string): string;
  /** hocuspocus prefixes every message with the document name and needs an auth message first */
  hocuspocus: boolean;
}

/** Our server from a checkout (this one, or BENCH_BASELINE_DIR for before/after). */
function ours(name: string, dir: string): Target {
  const storage = process.env['BENCH_RELAY_STORAGE'] ?? 'sqlite';
  return {
    name: `${name} (${storage})`,
    start: (port) =>
      spawn(process.execPath, ['--import', 'tsx', join(dir, 'apps/server/src/main.ts')], {
        cwd: ROOT,
        env: { PATH: process.env['PATH'] ?? '', HOST: '127.0.0.1', PORT: String(port), STORAGE: storage, DATA_DIR: benchDir(), LOG_LEVEL: 'warn', MAX_MESSAGES_PER_SECOND: '100000', ROOM_TYPES: 'conversation' },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    ready: /listening/,
    url: (port, room) => `ws://127.0.0.1:${port}/relay/${room}`,
    hocuspocus: false,
  };
}

// The forwarder uses the same ws version as our server, so the floor is comparable.
const serverWs = pathToFileURL(createRequire(join(ROOT, 'apps/server/package.json')).resolve('ws')).href;
const FORWARDER = `import WS from ${JSON.stringify(serverWs)};
const paths = new Map();
const wss = new WS.WebSocketServer({ host: '127.0.0.1', port: Number(process.argv[1]), perMessageDeflate: false });
wss.on('connection', (ws, req) => {
  const peers = paths.get(req.url) ?? new Set();
  paths.set(req.url, peers.add(ws));
  ws.on('message', (data) => { for (const p of peers) if (p !== ws) p.send(data); });
  ws.on('close', () => peers.delete(ws));
  ws.send(new Uint8Array([0, 0, 1, 0])); // an empty sync step 1: the bench client waits for a first message
});
wss.on('listening', () => console.log('forwarder ready'));`;

const baseline = process.env['BENCH_BASELINE_DIR'];

export const targets: Target[] = [
  ours('sync-suite /relay', ROOT),
  ...(baseline ? [ours('sync-suite /relay baseline', baseline)] : []),
  {
    name: '@y/websocket-server (stock)',
    start: (port) =>
      spawn(process.execPath, ['node_modules/@y/websocket-server/src/server.js'], {
        cwd: ROOT,
        env: { PATH: process.env['PATH'] ?? '', HOST: '127.0.0.1', PORT: String(port) },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    ready: /running at/,
    url: (port, room) => `ws://127.0.0.1:${port}/${room}`,
    hocuspocus: false,
  },
  {
    name: 'bare ws forwarder (floor)',
    start: (port) => spawn(process.execPath, ['--input-type=module', '-e', FORWARDER, String(port)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }),
    ready: /forwarder ready/,
    url: (port, room) => `ws://127.0.0.1:${port}/${room}`,
    hocuspocus: false,
  },
  {
    name: 'Hocuspocus',
    start: (port) =>
      spawn(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import { Server } from ${JSON.stringify(pathToFileURL(join(ROOT, 'node_modules/@hocuspocus/server/dist/hocuspocus-server.esm.js')).href)};
           const s = new Server({ port: ${port}, address: '127.0.0.1', quiet: true });
           await s.listen(); console.log('hocuspocus ready');`,
        ],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    ready: /hocuspocus ready/,
    url: (port) => `ws://127.0.0.1:${port}/`,
    hocuspocus: true,
  },
];

let dirs: string[] = [];
function benchDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'bench-relay-'));
  dirs.push(d);
  return d;
}

async function freePort(): Promise<number> {
  const srv = createServer().listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const a = srv.address();
  srv.close();
  return typeof a === 'object' && a ? a.port : 0;
}

/** Waits until the server accepts TCP connections (its log format varies by server). */
async function waitReady(port: number, proc: ChildProcess): Promise<void> {
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

/** [utime, stime] in seconds */
function cpuTimes(pid: number): [number, number] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [Number(fields[11]) / CLK_TCK, Number(fields[12]) / CLK_TCK];
}

function frame(target: Target, room: string, body: (e: encoding.Encoder) => void): Uint8Array {
  const e = encoding.createEncoder();
  if (target.hocuspocus) encoding.writeVarString(e, room);
  body(e);
  return encoding.toUint8Array(e);
}

/** The update in a sync message (step 2 or update), or null. */
function updateIn(target: Target, data: Uint8Array): Uint8Array | null {
  const d = decoding.createDecoder(data);
  if (target.hocuspocus) decoding.readVarString(d);
  const type = decoding.readVarUint(d);
  if (type !== 0) return null;
  const syncType = decoding.readVarUint(d);
  if (syncType !== 2 && syncType !== 1) return null;
  return decoding.readVarUint8Array(d);
}

interface Client {
  ws: WebSocket;
  room: number;
  idx: number;
}

async function connect(target: Target, port: number, roomIdx: number, idx: number, onUpdate: (c: Client, u: Uint8Array) => void): Promise<Client> {
  const room = `bench-conversation-${roomIdx}`;
  const ws = new WebSocket(target.url(port, room));
  ws.binaryType = 'nodebuffer';
  const client: Client = { ws, room: roomIdx, idx };
  const firstMessage = once(ws, 'message');
  ws.on('message', (data: Buffer) => {
    const u = updateIn(target, new Uint8Array(data));
    if (u) onUpdate(client, u);
  });
  await once(ws, 'open');
  if (target.hocuspocus) {
    ws.send(frame(target, room, (e) => (encoding.writeVarUint(e, 2), encoding.writeVarUint(e, 0), encoding.writeVarString(e, 'bench'))));
  }
  // Every server opens with sync step 1 (hocuspocus: after auth); then the client is in the room.
  ws.send(frame(target, room, (e) => (encoding.writeVarUint(e, 0), encoding.writeVarUint(e, 0), encoding.writeVarUint8Array(e, Y.encodeStateVector(new Y.Doc())))));
  await firstMessage;
  return client;
}

export async function runTarget(target: Target, opts: BenchOptions): Promise<BenchResult> {
  const port = await freePort();
  const proc = target.start(port);
  try {
    await waitReady(port, proc);
    const sentAt = new Map<string, number>();
    const latencies: number[] = [];
    const expected = opts.rooms * opts.clients * opts.updates * (opts.clients - 1);
    let delivered = 0;
    let resolveDone: () => void = () => undefined;
    const done = new Promise<void>((r) => (resolveDone = r));
    const seen = new Set<string>();
    const onUpdate = (c: Client, u: Uint8Array): void => {
      const now = performance.now();
      // Every struct counts (one per sent update): servers that merge updates deliver several at once.
      for (const struct of Y.decodeUpdate(u).structs) {
        if (struct.id.client === 1_000_000 + c.room * 1000 + c.idx) continue; // own echo
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
    const clients: Client[] = [];
    for (let r = 0; r < opts.rooms; r++) for (let i = 0; i < opts.clients; i++) clients.push(await connect(target, port, r, i, onUpdate));

    // Pre-encode every update so the clients spend their time sending, not encoding.
    const plans = clients.map((c) => {
      const doc = new Y.Doc();
      doc.clientID = 1_000_000 + c.room * 1000 + c.idx;
      const out: Array<{ key: string; bytes: Uint8Array }> = [];
      doc.on('update', (u: Uint8Array) => out.push({ key: `${doc.clientID}:${out.length}`, bytes: frame(target, `bench-conversation-${c.room}`, (e) => (encoding.writeVarUint(e, 0), encoding.writeVarUint(e, 2), encoding.writeVarUint8Array(e, u))) }));
      for (let n = 0; n < opts.warmup + opts.updates; n++) doc.getMap('m').set(`k${n}`, n);
      return out;
    });

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
        if (tick >= opts.warmup) sentAt.set(u.key, performance.now());
        c.ws.send(u.bytes);
      });
      tick++;
    }, opts.intervalMs);
    const timeout = new Promise<void>((r) => setTimeout(r, 120_000).unref());
    await Promise.race([done, timeout]);
    clearInterval(timer);
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = cpuTimes(proc.pid as number);
    const sys = cpu1[1] - cpu0[1];
    const cpu = cpu1[0] - cpu0[0] + sys;
    for (const c of clients) c.ws.terminate();
    latencies.sort((a, b) => a - b);
    const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
    return {
      server: target.name,
      delivered,
      expected,
      seconds,
      updatesPerSecond: delivered / seconds,
      p50ms: pct(0.5),
      p99ms: pct(0.99),
      cpuUsPerDelivery: (cpu * 1e6) / Math.max(1, delivered),
      sysUsPerDelivery: (sys * 1e6) / Math.max(1, delivered),
    };
  } finally {
    proc.kill('SIGKILL');
    await once(proc, 'exit').catch(() => undefined);
  }
}

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
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    dirs = [];
  }
  const results = all.map(median);
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
  return results;
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
