/**
 * Signaling fan-out benchmark: N rooms x M peers, every peer publishing with a small window
 * of messages in flight, against our WS /signal and against the stock y-webrtc server
 * (node_modules/y-webrtc/bin/server.js), both as child processes on loopback, in one run.
 * Prints deliveries per second, delivery latency p50/p99 and server CPU per delivered
 * message, and the ratio. Bounded: stops by itself well within 60 s.
 *
 *   node --import tsx bench/signaling.ts        (or import { run } and call it)
 *   env: BENCH_ROOMS (20), BENCH_PEERS (5), BENCH_SECONDS (5), BENCH_WINDOW (4)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freePort } from '../test/helpers/process.js';
import { cpuSeconds } from './lib/cpu-times.js';
import { percentile } from './lib/percentile.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
// y-webrtc's ws (8.x); the root `ws` is an older copy pulled in by another package.
const { WebSocket } = createRequire(resolve(ROOT, 'node_modules/y-webrtc/package.json'))('ws') as typeof import('ws');
type WS = InstanceType<typeof WebSocket>;

const num = (name: string, dflt: number) => Number(process.env[name] ?? dflt);
const ROOMS = num('BENCH_ROOMS', 20);
const PEERS = num('BENCH_PEERS', 5);
const SECONDS = num('BENCH_SECONDS', 5);
const WINDOW = num('BENCH_WINDOW', 4);
const HARD_STOP_MS = 55_000;
/** A typical y-webrtc signal (an ICE candidate) is about this large. */
const PAYLOAD = 'x'.repeat(300);

export interface BenchResult {
  server: string;
  published: number;
  delivered: number;
  deliveriesPerSecond: number;
  p50ms: number;
  p99ms: number;
  cpuMicrosPerDelivery: number;
}

function startChild(args: string[], env: Record<string, string>, readyLine: RegExp): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((done, fail) => {
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (readyLine.test(out)) done(child);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => fail(new Error(`server exited (${code}) before it was ready:\n${out.slice(-2000)}`)));
  });
}

function open(url: string): Promise<WS> {
  return new Promise((done, fail) => {
    const ws = new WebSocket(url);
    ws.once('open', () => done(ws));
    ws.once('error', fail);
  });
}

interface Peer {
  ws: WS;
  room: string;
  inFlight: number;
}

/** Connect every peer, subscribe, and make sure each subscription is in place (ping/pong). */
async function connectPeers(url: string): Promise<Peer[]> {
  const peers: Peer[] = [];
  for (let r = 0; r < ROOMS; r++) {
    for (let p = 0; p < PEERS; p++) {
      const ws = await open(url);
      const room = `bench-conversation-${r}`;
      ws.send(JSON.stringify({ type: 'subscribe', topics: [room] }));
      const pong = new Promise<void>((done) => ws.once('message', () => done()));
      ws.send('{"type":"ping"}');
      await pong;
      peers.push({ ws, room, inFlight: 0 });
    }
  }
  return peers;
}

async function measure(name: string, url: string, pid: number): Promise<BenchResult> {
  const peers = await connectPeers(url);
  const latencies: number[] = [];
  let published = 0;
  let delivered = 0;
  let running = true;
  const publish = (peer: Peer) => {
    peer.inFlight++;
    published++;
    peer.ws.send(JSON.stringify({ type: 'publish', topic: peer.room, data: { from: peers.indexOf(peer), t: performance.now(), payload: PAYLOAD } }));
  };
  peers.forEach((peer, index) => {
    peer.ws.on('message', (raw) => {
      const msg = JSON.parse(raw.toString()) as { type: string; data?: { from: number; t: number } };
      if (msg.type !== 'publish' || !msg.data) return;
      delivered++;
      latencies.push(performance.now() - msg.data.t);
      // The sender hears its own publish: that frees a slot in its window.
      if (msg.data.from === index) {
        peer.inFlight--;
        if (running) publish(peer);
      }
    });
  });
  const cpuBefore = cpuSeconds(pid);
  const start = performance.now();
  for (const peer of peers) for (let i = 0; i < WINDOW; i++) publish(peer);
  await new Promise((done) => setTimeout(done, SECONDS * 1000));
  running = false;
  const elapsed = (performance.now() - start) / 1000;
  const cpu = cpuSeconds(pid) - cpuBefore;
  const counted = delivered;
  await Promise.all(peers.map((p) => new Promise<void>((done) => (p.ws.once('close', () => done()), p.ws.close()))));
  latencies.sort((a, b) => a - b);
  return {
    server: name,
    published,
    delivered: counted,
    deliveriesPerSecond: Math.round(counted / elapsed),
    p50ms: Number(percentile(latencies, 0.5).toFixed(2)),
    p99ms: Number(percentile(latencies, 0.99).toFixed(2)),
    cpuMicrosPerDelivery: Number(((cpu * 1e6) / Math.max(1, counted)).toFixed(2)),
  };
}

async function benchServer(name: string, args: string[], env: Record<string, string>, ready: RegExp, path: string): Promise<BenchResult> {
  const port = await freePort();
  const child = await startChild(args, { ...env, PORT: String(port) }, ready);
  try {
    if (child.pid === undefined) throw new Error('no pid');
    return await measure(name, `ws://127.0.0.1:${port}${path}`, child.pid);
  } finally {
    child.kill('SIGKILL');
  }
}

function printTable(results: BenchResult[]): void {
  const head = ['server', 'deliveries/s', 'p50 ms', 'p99 ms', 'CPU us/delivery'];
  const rows = results.map((r) => [r.server, String(r.deliveriesPerSecond), String(r.p50ms), String(r.p99ms), String(r.cpuMicrosPerDelivery)]);
  const [ours, stock] = results;
  if (ours && stock) {
    rows.push([
      'ratio ours/stock',
      (ours.deliveriesPerSecond / stock.deliveriesPerSecond).toFixed(2),
      (ours.p50ms / stock.p50ms).toFixed(2),
      (ours.p99ms / stock.p99ms).toFixed(2),
      (ours.cpuMicrosPerDelivery / stock.cpuMicrosPerDelivery).toFixed(2),
    ]);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  process.stdout.write(
    `signaling fan-out: ${ROOMS} rooms x ${PEERS} peers, window ${WINDOW}, ${SECONDS} s per server, 300-byte payloads\n` +
      [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') +
      '\n',
  );
}

export async function run(): Promise<BenchResult[]> {
  const hardStop = setTimeout(() => {
    process.stderr.write('signaling bench: hard stop after 55 s\n');
    process.exit(2);
  }, HARD_STOP_MS);
  hardStop.unref();
  const ours = await benchServer(
    'sync-suite /signal',
    ['--import', 'tsx', 'apps/server/src/main.ts'],
    // Auth off, like the stock server; the per-connection rate limit would throttle a closed-loop bench.
    { HOST: '127.0.0.1', STORAGE: 'memory', LOG_LEVEL: 'info', MAX_MESSAGES_PER_SECOND: '1000000' },
    /Server listening/,
    '/signal',
  );
  const stock = await benchServer('stock y-webrtc', ['node_modules/y-webrtc/bin/server.js'], {}, /Signaling server running/, '');
  const results = [ours, stock];
  printTable(results);
  clearTimeout(hardStop);
  return results;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  run().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
