/**
 * Relay throughput: ROOMS rooms x CLIENTS clients, each client sending UPDATES small Yjs updates
 * at a steady pace, against our /relay, the stock @y/websocket-server and Hocuspocus, each run
 * as a child process on loopback. Reports delivered updates/s, delivery latency p50/p99 and
 * server CPU microseconds per delivered update (from /proc/<pid>/stat), with ratios to ours.
 * A delivery is one update arriving at one other client of its room.
 *
 *   node --import tsx bench/relay.ts        (env: BENCH_ROOMS, BENCH_CLIENTS, BENCH_UPDATES, BENCH_INTERVAL_MS)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
}

interface Target {
  name: string;
  start(port: number): ChildProcess;
  ready: RegExp;
  url(port: number, room: string): string;
  /** hocuspocus prefixes every message with the document name and needs an auth message first */
  hocuspocus: boolean;
}

export const targets: Target[] = [
  {
    name: `sync-suite /relay (${process.env['BENCH_RELAY_STORAGE'] ?? 'sqlite'})`,
    start: (port) =>
      spawn(process.execPath, ['--import', 'tsx', 'apps/server/src/main.ts'], {
        cwd: ROOT,
        env: { PATH: process.env['PATH'] ?? '', HOST: '127.0.0.1', PORT: String(port), STORAGE: process.env['BENCH_RELAY_STORAGE'] ?? 'sqlite', DATA_DIR: benchDir(), LOG_LEVEL: 'warn', MAX_MESSAGES_PER_SECOND: '100000', ROOM_TYPES: 'conversation' },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    ready: /listening/,
    url: (port, room) => `ws://127.0.0.1:${port}/relay/${room}`,
    hocuspocus: false,
  },
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

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime
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
    const onUpdate = (c: Client, u: Uint8Array): void => {
      const structs = Y.decodeUpdate(u).structs;
      const first = structs[0];
      if (!first || first.id.client === 1_000_000 + c.room * 1000 + c.idx) return; // own echo
      const t = sentAt.get(`${first.id.client}:${first.id.clock}`);
      if (t === undefined) return; // initial sync content
      latencies.push(performance.now() - t);
      if (++delivered === expected) resolveDone();
    };
    const clients: Client[] = [];
    for (let r = 0; r < opts.rooms; r++) for (let i = 0; i < opts.clients; i++) clients.push(await connect(target, port, r, i, onUpdate));

    // Pre-encode every update so the clients spend their time sending, not encoding.
    const plans = clients.map((c) => {
      const doc = new Y.Doc();
      doc.clientID = 1_000_000 + c.room * 1000 + c.idx;
      const out: Array<{ key: string; bytes: Uint8Array }> = [];
      doc.on('update', (u: Uint8Array) => out.push({ key: `${doc.clientID}:${out.length}`, bytes: frame(target, `bench-conversation-${c.room}`, (e) => (encoding.writeVarUint(e, 0), encoding.writeVarUint(e, 2), encoding.writeVarUint8Array(e, u))) }));
      for (let n = 0; n < opts.updates; n++) doc.getMap('m').set(`k${n}`, n);
      return out;
    });

    const cpu0 = cpuTicks(proc.pid as number);
    const t0 = performance.now();
    let tick = 0;
    const timer = setInterval(() => {
      if (tick >= opts.updates) return clearInterval(timer);
      clients.forEach((c, i) => {
        const u = plans[i]?.[tick];
        if (!u) return;
        sentAt.set(u.key, performance.now());
        c.ws.send(u.bytes);
      });
      tick++;
    }, opts.intervalMs);
    const timeout = new Promise<void>((r) => setTimeout(r, 120_000).unref());
    await Promise.race([done, timeout]);
    clearInterval(timer);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = (cpuTicks(proc.pid as number) - cpu0) / CLK_TCK;
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
  };
  const results: BenchResult[] = [];
  try {
    for (const t of targets) results.push(await runTarget(t, o));
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    dirs = [];
  }
  const ours = results[0] as BenchResult;
  const rows = results.map((r) => ({
    server: r.server,
    'delivered/expected': `${r.delivered}/${r.expected}`,
    'updates/s': Math.round(r.updatesPerSecond),
    'p50 ms': r.p50ms.toFixed(2),
    'p99 ms': r.p99ms.toFixed(2),
    'CPU us/delivery': r.cpuUsPerDelivery.toFixed(2),
    'CPU vs ours': (r.cpuUsPerDelivery / ours.cpuUsPerDelivery).toFixed(2),
  }));
  process.stdout.write(`relay: ${o.rooms} rooms x ${o.clients} clients x ${o.updates} updates, one update per client every ${o.intervalMs} ms\n`);
  console.table(rows); // eslint-disable-line no-console -- a bench prints its table
  return results;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run().catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
}
