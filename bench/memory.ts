/**
 * Memory: the resident set of each server at start (after it has been idle long enough for
 * V8's memory reducer to run), and per idle connection: 5,000 relay connections over 500 rooms
 * (each through the sync handshake, then silent) and 5,000 signaling connections (each
 * subscribed to one of 500 topics, then silent). Per-connection bytes = (RSS after - RSS
 * before) / N, measured on our server (the production bundle, auth on) and the stock servers
 * in the same run; medians of BENCH_ROUNDS rounds. The marginal figure comes from the same run:
 * the connections open in two halves, and RSS is read BENCH_SETTLE_SECONDS after each half
 * (the first figure's read, 3 s after the last connection, comes before the second of these):
 * (RSS at N - RSS at N/2) / (N/2), so what the process grows once during a burst (V8's young
 * generation, malloc arenas, code) and set-up garbage not yet collected weigh less. For our
 * server the JS heap in use (heapUsed from /metrics, no GC forced) is read at the same points. Our server also runs with STORAGE=memory
 * to show what the SQLite storage thread costs. The floor is a bare `ws` server holding the
 * same idle connections: what ws + net.Socket cost per connection on this machine. A second
 * floor, 'bare net (floor without ws)', is a node:net server doing the WebSocket handshake and
 * the one reply by hand: what Node alone (net.Socket, its TCP handle, the kernel socket) costs,
 * so that the difference between the two floors is ws's own per-connection objects.
 *
 *   node --import tsx bench/memory.ts
 *   env: BENCH_MEMORY_CONNECTIONS (5000), BENCH_MEMORY_ROOMS (500), BENCH_SETTLE_SECONDS (20), BENCH_ROUNDS (3),
 *   BENCH_MEMORY_TARGETS (all; comma-separated words, a server runs if its name contains one, e.g. `sync-suite,floor`)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { createRoomToken } from '@sync-suite/shared';
import { freePort } from '../test/helpers/process.js';
import { withTimeout } from '../test/helpers/timeout.js';
import { BENCH_AUTH_SECRET, BENCH_ONE_SUB_ENV, productionBundle, serverEnv, serverNodeFlags } from './lib/bundle.js';
import { listening } from './lib/listening.js';
import { runIfMain } from './lib/main.js';
import { median, rounds, spread } from './lib/stats.js';
import { syncFrame } from './lib/sync-frame.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const N = Number(process.env['BENCH_MEMORY_CONNECTIONS'] ?? 5000);
const ROOMS = Number(process.env['BENCH_MEMORY_ROOMS'] ?? 500);
const SETTLE_MS = 1000 * Number(process.env['BENCH_SETTLE_SECONDS'] ?? 20);

type Kind = 'relay' | 'signal' | 'start';
interface Server {
  name: string;
  kinds: Kind[];
  start(port: number, dataDir: string): ChildProcess;
  url(port: number, room: string): string;
  /** where to read the server's JS heap in use (Prometheus text), if it has such an endpoint */
  metrics?(port: number): string;
}

/** One connection case's figures, bytes per connection. */
interface Sample {
  /** (RSS at N - RSS before) / N */
  total: number;
  /** (RSS at N - RSS at N/2) / (N/2), each read after the settle wait */
  marginal: number;
  /** (heapUsed at N - heapUsed at N/2) / (N/2); NaN without a metrics endpoint */
  heapMarginal: number;
}

// The floor: what ws + net.Socket cost per idle connection on this machine, with the same ws
// version as our server and the same client; it holds each socket (ws's client tracking) and
// nothing else, and answers the client's first message (sent on open, a reply sent sooner
// could come before the client listens for it).
const serverWs = pathToFileURL(createRequire(join(ROOT, 'apps/server/package.json')).resolve('ws')).href;
const BARE_WS = `import WS from ${JSON.stringify(serverWs)};
const wss = new WS.WebSocketServer({ host: '127.0.0.1', port: Number(process.argv[1]), perMessageDeflate: false });
wss.on('connection', (ws) => ws.once('message', () => ws.send(new Uint8Array([0, 0, 1, 0]))));`;

// The floor without ws: node:net only. It reads the upgrade request, answers 101 with the
// Sec-WebSocket-Accept the client checks (RFC 6455: base64 of SHA-1 of the key and the GUID),
// answers the client's first frame with the same 4-byte binary message as the ws floor (one
// unmasked frame built by hand), then holds the socket with shared no-op 'data' and 'error'
// listeners (no per-socket closure left once the handshake is done) and never parses input.
const BARE_NET = `import { createServer } from 'node:net';
import { createHash } from 'node:crypto';
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const REPLY = Buffer.from([0x82, 4, 0, 0, 1, 0]);
const ignore = () => undefined;
function firstFrame() { this.write(REPLY); this.on('data', ignore); }
createServer((socket) => {
  socket.on('error', ignore);
  let head = '';
  const handshake = (chunk) => {
    head += chunk.toString('latin1');
    const end = head.indexOf('\\r\\n\\r\\n');
    if (end < 0) { if (head.length > 16384) socket.destroy(); return; }
    socket.removeListener('data', handshake);
    const key = /^sec-websocket-key:[ \\t]*(\\S+)/im.exec(head.slice(0, end))?.[1];
    if (!key) return void socket.destroy();
    const accept = createHash('sha1').update(key + GUID).digest('base64');
    socket.write('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: ' + accept + '\\r\\n\\r\\n');
    socket.once('data', firstFrame);
  };
  socket.on('data', handshake);
}).listen(Number(process.argv[1]), '127.0.0.1');`;

// Every bench client uses one token (one sub) and opens ROOMS new rooms: the per-sub quota
// (default 200 an hour) would refuse the rest.
const NEW_ROOMS = String(Math.max(ROOMS, 200));

const rssBytes = (pid: number): number => 1024 * Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms)); // letting memory settle has no event to wait on

/** nodejs_heap_size_used_bytes from a Prometheus text endpoint (prom-client's default metrics). */
async function heapUsed(url: string | undefined): Promise<number> {
  if (!url) return NaN;
  const text = await (await fetch(url)).text();
  return Number(/^nodejs_heap_size_used_bytes (\S+)$/m.exec(text)?.[1] ?? NaN);
}

async function servers(): Promise<Server[]> {
  const dir = await productionBundle();
  const token = await createRoomToken(BENCH_AUTH_SECRET, { sub: 'bench', rooms: ['bench-conversation-*'], ttlSeconds: 3600 });
  const PATH = process.env['PATH'] ?? '';
  const ours = (storage: string, kinds: Kind[]): Server => ({
    name: `sync-suite (bundle, ${storage})`,
    kinds,
    start: (port, dataDir) =>
      spawn(process.execPath, [...serverNodeFlags(), join(dir, 'server.mjs')], { cwd: dir, env: { ...serverEnv(), PATH, HOST: '127.0.0.1', PORT: String(port), STORAGE: storage, DATA_DIR: dataDir, LOG_LEVEL: 'warn', AUTH_SECRET: BENCH_AUTH_SECRET, ...BENCH_ONE_SUB_ENV, MAX_NEW_ROOMS_PER_SUB_PER_HOUR: NEW_ROOMS }, stdio: 'ignore' }),
    url: (port, room) => (kinds.includes('relay') ? `ws://127.0.0.1:${port}/relay/${room}?token=${token}` : `ws://127.0.0.1:${port}/signal?token=${token}`),
    metrics: (port) => `http://127.0.0.1:${port}/metrics`,
  });
  const targets = (process.env['BENCH_MEMORY_TARGETS'] ?? '').split(',').map((t) => t.trim()).filter(Boolean);
  const all: Server[] = [
    ours('sqlite', ['start', 'relay']),
    ours('memory', ['start']),
    { ...ours('sqlite', ['signal']), name: 'sync-suite (bundle) /signal' },
    {
      name: '@y/websocket-server (stock)',
      kinds: ['start', 'relay'],
      start: (port) => spawn(process.execPath, ['node_modules/@y/websocket-server/src/server.js'], { cwd: ROOT, env: { PATH, HOST: '127.0.0.1', PORT: String(port) }, stdio: 'ignore' }),
      url: (port, room) => `ws://127.0.0.1:${port}/${room}`,
    },
    {
      name: 'stock y-webrtc',
      kinds: ['start', 'signal'],
      start: (port) => spawn(process.execPath, ['node_modules/y-webrtc/bin/server.js'], { cwd: ROOT, env: { PATH, PORT: String(port) }, stdio: 'ignore' }),
      url: (port) => `ws://127.0.0.1:${port}`,
    },
    {
      name: 'bare ws (floor)',
      kinds: ['start', 'relay'],
      start: (port) => spawn(process.execPath, ['--input-type=module', '-e', BARE_WS, String(port)], { cwd: ROOT, env: { PATH }, stdio: 'ignore' }),
      url: (port, room) => `ws://127.0.0.1:${port}/${room}`,
    },
    {
      name: 'bare net (floor without ws)',
      kinds: ['start', 'relay'],
      start: (port) => spawn(process.execPath, ['--input-type=module', '-e', BARE_NET, String(port)], { cwd: ROOT, env: { PATH }, stdio: 'ignore' }),
      url: (port, room) => `ws://127.0.0.1:${port}/${room}`,
    },
  ];
  return targets.length === 0 ? all : all.filter((s) => targets.some((t) => s.name.includes(t)));
}

/** Sync step 1 with an empty state vector. */
const STEP1 = syncFrame(0, new Uint8Array([0]));

/** One idle connection: relay after its sync handshake, signaling after a subscribe that took. */
async function open(kind: Kind, url: string, room: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  ws.on('error', () => undefined);
  await once(ws, 'open');
  const first = once(ws, 'message');
  // A connection the server closes (a limit) never gets its first message: fail instead of waiting.
  const closed = once(ws, 'close').then(([code, reason]) => {
    throw new Error(`${kind} connection closed ${String(code)} ${String(reason)} before its first message`);
  });
  if (kind === 'relay') ws.send(STEP1);
  else {
    ws.send(JSON.stringify({ type: 'subscribe', topics: [room] }));
    ws.send('{"type":"ping"}');
  }
  await withTimeout(Promise.race([first, closed]), 30_000, `${kind} connection's first message`);
  closed.catch(() => undefined); // a later close is the run's end (terminate)
  return ws;
}

/** Opens connections `from` to `to` - 1, 100 at a time. */
async function openRange(s: Server, kind: Kind, port: number, from: number, to: number, sockets: WebSocket[]): Promise<void> {
  for (let b = from; b < to; b += 100) {
    const batch = Array.from({ length: Math.min(100, to - b) }, (_, i) => `bench-conversation-${(b + i) % ROOMS}`);
    sockets.push(...(await Promise.all(batch.map((room) => open(kind, s.url(port, room), room)))));
  }
}

/** RSS at start (bytes) for 'start', else the per-connection figures. */
async function measure(s: Server, kind: Kind): Promise<number | Sample> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-memory-'));
  const child = s.start(port, dataDir);
  const sockets: WebSocket[] = [];
  const rss = (): number => rssBytes(child.pid as number);
  const metrics = s.metrics?.(port);
  try {
    await listening(child, port);
    await sleep(SETTLE_MS);
    const before = rss();
    if (kind === 'start') return before;
    const half = Math.floor(N / 2);
    await openRange(s, kind, port, 0, half, sockets);
    await sleep(SETTLE_MS);
    const midRss = rss();
    const midHeap = await heapUsed(metrics);
    await openRange(s, kind, port, half, N, sockets);
    await sleep(3000);
    const total = (rss() - before) / N;
    await sleep(Math.max(0, SETTLE_MS - 3000));
    const endRss = rss();
    const endHeap = await heapUsed(metrics);
    return { total, marginal: (endRss - midRss) / (N - half), heapMarginal: (endHeap - midHeap) / (N - half) };
  } finally {
    for (const ws of sockets) ws.terminate();
    child.kill('SIGKILL');
    await once(child, 'exit').catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const MARGINAL = 'marginal KB each (N/2 to N)';
const HEAP = 'JS heap marginal KB each';

export async function run(): Promise<Array<Record<string, string | number>>> {
  const list = await servers();
  const cases = list.flatMap((s) => s.kinds.map((kind) => ({ s, kind })));
  const n = rounds();
  const all: Array<Array<number | Sample>> = cases.map(() => []);
  const kb = (v: number): string => (v / 1024).toFixed(2);
  // Connection runs first within each server: the settle wait is the same either way.
  for (let r = 0; r < n; r++) {
    for (const [i, c] of cases.entries()) {
      const v = await measure(c.s, c.kind);
      all[i]?.push(v);
      const text =
        typeof v === 'number'
          ? `${(v / 1048576).toFixed(1)} MB RSS`
          : `${kb(v.total)} KB per connection, marginal ${kb(v.marginal)} KB${Number.isNaN(v.heapMarginal) ? '' : ` (JS heap ${kb(v.heapMarginal)} KB)`}`;
      process.stdout.write(`round ${r + 1}/${n} ${c.s.name} ${c.kind}: ${text}\n`);
    }
  }
  process.stdout.write(
    `memory: RSS after ${SETTLE_MS / 1000} s idle; ${N} idle connections over ${ROOMS} rooms/topics: (RSS at N - before) / N read 3 s after the last connection, and marginal (RSS at N - RSS at N/2) / (N/2), each read ${SETTLE_MS / 1000} s after its half; median of ${n} round(s); ours runs the production bundle\n`,
  );
  return cases.map((c, i) => {
    const values = all[i] as Array<number | Sample>;
    if (c.kind === 'start') {
      const mb = (values as number[]).map((v) => v / 1048576);
      return { server: c.s.name, measure: 'RSS at start (MB)', value: Number(median(mb).toFixed(2)), rounds: spread(mb, 2), [MARGINAL]: '', 'marginal rounds': '', [HEAP]: '' };
    }
    const pick = (f: (x: Sample) => number): number[] => (values as Sample[]).map((x) => f(x) / 1024);
    const heap = median(pick((x) => x.heapMarginal));
    return {
      server: c.s.name,
      measure: `${c.kind} idle connection (KB each)`,
      value: Number(median(pick((x) => x.total)).toFixed(2)),
      rounds: spread(pick((x) => x.total), 2),
      [MARGINAL]: Number(median(pick((x) => x.marginal)).toFixed(2)),
      'marginal rounds': spread(pick((x) => x.marginal), 2),
      [HEAP]: Number.isNaN(heap) ? '' : Number(heap.toFixed(2)),
    };
  });
}

runIfMain(import.meta.url, run);
