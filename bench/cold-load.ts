/**
 * Cold load: a conversation of 10,000 messages written as 100,000 edits (each message typed
 * in 10 inserts, by 10 writers at once, every edit its own update), then the server is
 * restarted and a fresh device (empty state) connects: the time from opening the connection
 * to the last byte of the content (the client's Y.Doc holds every message, in full), plus
 * what storage holds on disk. Ours (the production bundle, SQLite, auth on) against
 * @y/websocket-server with its LevelDB persistence (YPERSISTENCE, y-leveldb) in one run.
 * The push's latency is not measured, its cost is: the server's CPU from the push's start until
 * its storage settled (one push per server and run). Ours runs it with MAX_MESSAGES_PER_SECOND
 * raised to 1000 so ten writers can push 5,000 edits/s without the per-connection limit closing them. Each round is
 * one restart and one fresh device; medians of BENCH_ROUNDS rounds.
 *
 *   node --import tsx bench/cold-load.ts
 *   env: BENCH_NODE_FLAGS (e.g. --cpu-prof), BENCH_COLD_MESSAGES (10000), BENCH_COLD_EDITS (10 per message), BENCH_COLD_RATE (5000 edits/s), BENCH_ROUNDS (3)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as decoding from 'lib0/decoding';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { createRoomToken } from '@sync-suite/shared';
import { freePort } from '../test/helpers/process.js';
import { BENCH_AUTH_SECRET, productionBundle, serverEnv, serverNodeFlags } from './lib/bundle.js';
import { cpuSeconds } from './lib/cpu-times.js';
import { listening } from './lib/listening.js';
import { runIfMain } from './lib/main.js';
import { pace } from './lib/pace.js';
import { median, rounds, spread } from './lib/stats.js';
import { syncFrame } from './lib/sync-frame.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MESSAGES = Number(process.env['BENCH_COLD_MESSAGES'] ?? 10_000);
const EDITS = Number(process.env['BENCH_COLD_EDITS'] ?? 10);
const RATE = Number(process.env['BENCH_COLD_RATE'] ?? 5000);
const WRITERS = 10;
const LOAD_TIMEOUT_MS = 120_000;
const ROOM = 'bench-conversation-cold';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms)); // waits for storage to settle: no event to observe across servers

interface Server {
  name: string;
  start(port: number, dataDir: string): ChildProcess;
  url(port: number): string;
}

async function servers(): Promise<Server[]> {
  const dir = await productionBundle();
  const token = await createRoomToken(BENCH_AUTH_SECRET, { sub: 'bench', rooms: ['bench-conversation-*'], ttlSeconds: 3600 });
  const PATH = process.env['PATH'] ?? '';
  return [
    {
      name: 'sync-suite /relay (bundle, sqlite)',
      start: (port, dataDir) =>
        spawn(process.execPath, [...serverNodeFlags(), join(dir, 'server.mjs')], {
          cwd: dir,
          env: { ...serverEnv(), PATH, HOST: '127.0.0.1', PORT: String(port), STORAGE: 'sqlite', DATA_DIR: dataDir, LOG_LEVEL: 'warn', AUTH_SECRET: BENCH_AUTH_SECRET, MAX_MESSAGES_PER_SECOND: '1000' },
          stdio: 'ignore',
        }),
      url: (port) => `ws://127.0.0.1:${port}/relay/${ROOM}?token=${token}`,
    },
    {
      name: '@y/websocket-server + LevelDB',
      start: (port, dataDir) =>
        spawn(process.execPath, ['node_modules/@y/websocket-server/src/server.js'], { cwd: ROOT, env: { PATH, HOST: '127.0.0.1', PORT: String(port), YPERSISTENCE: dataDir }, stdio: 'ignore' }),
      url: (port) => `ws://127.0.0.1:${port}/${ROOM}`,
    },
  ];
}

/** Every writer's edits, encoded up front: writer w types messages w, w+10, ... each in EDITS inserts. */
function writerEdits(): { edits: Uint8Array[][]; textLength: number } {
  let textLength = 0;
  const edits = Array.from({ length: WRITERS }, (_, w) => {
    const doc = new Y.Doc();
    const out: Uint8Array[] = [];
    doc.on('update', (u: Uint8Array) => out.push(syncFrame(2, u)));
    const list = doc.getArray<Y.Text>('messages');
    for (let m = w; m < MESSAGES; m += WRITERS) {
      const text = new Y.Text();
      list.push([text]);
      for (let e = 0; e < EDITS; e++) {
        const chunk = `message ${m} part ${e}; `;
        text.insert(text.length, chunk);
        textLength += chunk.length;
      }
    }
    return out;
  });
  return { edits, textLength };
}

async function open(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  ws.on('error', () => undefined);
  await once(ws, 'open');
  return ws;
}

/** Push every edit through WRITERS connections at RATE edits/s (unmeasured). */
async function push(url: string, edits: Uint8Array[][]): Promise<void> {
  const writers = await Promise.all(edits.map(() => open(url)));
  const total = edits.reduce((n, l) => n + l.length, 0);
  await pace(RATE, total / RATE, (n) => {
    const w = n % WRITERS;
    const frame = edits[w]?.[Math.floor(n / WRITERS)];
    if (frame) writers[w]?.send(frame);
  });
  // Each writer's last frame is on the wire once its buffer is empty.
  while (writers.some((ws) => ws.bufferedAmount > 0)) await sleep(50);
  for (const ws of writers) ws.close();
}

/** A fresh device: ms from opening the connection until its doc holds every message in full. */
async function freshDevice(url: string, textLength: number): Promise<number> {
  const doc = new Y.Doc();
  const list = doc.getArray<Y.Text>('messages');
  const t0 = performance.now();
  const ws = new WebSocket(url);
  ws.binaryType = 'nodebuffer';
  try {
    return await new Promise<number>((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`content did not arrive within ${LOAD_TIMEOUT_MS / 1000} s`)), LOAD_TIMEOUT_MS);
      ws.on('error', fail);
      ws.on('open', () => ws.send(syncFrame(0, Y.encodeStateVector(doc))));
      ws.on('message', (data: Buffer) => {
        // The message's arrival is what counts (the server's side), not the client's decoding after it.
        const arrived = performance.now();
        const d = decoding.createDecoder(new Uint8Array(data));
        if (decoding.readVarUint(d) !== 0) return;
        const type = decoding.readVarUint(d);
        if (type !== 1 && type !== 2) return;
        Y.applyUpdate(doc, decoding.readVarUint8Array(d));
        if (list.length < MESSAGES) return;
        let length = 0;
        for (const t of list) length += t.length;
        if (length < textLength) return;
        clearTimeout(timer);
        done(arrived - t0);
      });
    });
  } finally {
    ws.terminate();
  }
}

function diskBytes(dir: string): number {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) total += e.isDirectory() ? diskBytes(join(dir, e.name)) : statSync(join(dir, e.name)).size;
  return total;
}

/** ms until the directory's size has not changed for 3 s (bounded: 180 s). */
async function settle(dir: string): Promise<number> {
  const t0 = performance.now();
  let last = -1;
  let stableSince = performance.now();
  while (performance.now() - t0 < 180_000) {
    const size = diskBytes(dir);
    if (size !== last) {
      last = size;
      stableSince = performance.now();
    } else if (performance.now() - stableSince >= 3000) break;
    await sleep(500);
  }
  return stableSince - t0;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM'); // ours commits and closes storage on SIGTERM; the stock server just exits
  const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await once(child, 'exit');
  clearTimeout(killer);
}

interface Outcome {
  server: string;
  loads: number[];
  storedBytes: number;
  /** server CPU seconds from the push's start until storage settled */
  pushCpu: number;
}

async function runServer(s: Server, edits: Uint8Array[][], textLength: number, n: number): Promise<Outcome> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-cold-'));
  let child: ChildProcess | undefined;
  try {
    let port = await freePort();
    child = s.start(port, dataDir);
    await listening(child, port);
    const pid = child.pid as number;
    const cpuBefore = cpuSeconds(pid);
    await push(s.url(port), edits);
    // The pushing device checks that everything arrived before the restart: a fresh device must get it all.
    await freshDevice(s.url(port), textLength);
    // The stock server persists each update asynchronously and loses what is not written by the
    // restart: wait until storage stops growing (3 s unchanged, at most 180 s) for both servers.
    const settledIn = await settle(dataDir);
    // What the push cost the server, up to its storage settled (the stock server writes after it answers).
    const pushCpu = cpuSeconds(pid) - cpuBefore;
    process.stdout.write(`${s.name}: storage settled ${(settledIn / 1000).toFixed(1)} s after the push; server CPU for the push ${pushCpu.toFixed(2)} s\n`);
    await stop(child);
    const loads: number[] = [];
    for (let r = 0; r < n; r++) {
      port = await freePort();
      child = s.start(port, dataDir);
      await listening(child, port);
      const ms = await freshDevice(s.url(port), textLength);
      loads.push(ms);
      process.stdout.write(`round ${r + 1}/${n} ${s.name}: content complete ${ms.toFixed(0)} ms after connect\n`);
      await stop(child);
    }
    return { server: s.name, loads, storedBytes: diskBytes(dataDir), pushCpu };
  } finally {
    if (child && child.exitCode === null) child.kill('SIGKILL'); // a failed round leaves no server behind
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function run(): Promise<Array<Record<string, string | number>>> {
  const { edits, textLength } = writerEdits();
  const docBytes = (() => {
    const doc = new Y.Doc();
    for (const list of edits) for (const frame of list) Y.applyUpdate(doc, decoding.readVarUint8Array(((d) => (decoding.readVarUint(d), decoding.readVarUint(d), d))(decoding.createDecoder(frame))));
    return Y.encodeStateAsUpdate(doc).byteLength;
  })();
  const n = rounds();
  const outcomes: Outcome[] = [];
  for (const s of await servers()) {
    try {
      outcomes.push(await runServer(s, edits, textLength, n));
    } catch (err) {
      // A server that cannot serve the conversation is a result, not a reason to lose the others'.
      process.stdout.write(`${s.name}: ${err instanceof Error ? err.message : String(err)}\n`);
      outcomes.push({ server: `${s.name} (failed: ${err instanceof Error ? err.message : String(err)})`, loads: [], storedBytes: NaN, pushCpu: NaN });
    }
  }
  const stock = median(outcomes[1]?.loads ?? []);
  process.stdout.write(`cold load: ${MESSAGES} messages from ${MESSAGES * EDITS} edits (${WRITERS} writers, ${RATE} edits/s), document ${(docBytes / 1e6).toFixed(2)} MB encoded; one restart and one fresh device per round; median of ${n}; ours runs the production bundle\n`);
  return outcomes.map((o) => ({
    server: o.server,
    'content complete after connect (ms)': Math.round(median(o.loads)),
    rounds: spread(o.loads, 0),
    'vs stock + LevelDB': Number((median(o.loads) / stock).toFixed(2)),
    'stored MB': Number((o.storedBytes / 1e6).toFixed(2)),
    'document MB (encoded)': Number((docBytes / 1e6).toFixed(2)),
    'stored / document': Number((o.storedBytes / docBytes).toFixed(2)),
    'push: server CPU s (one push)': Number(o.pushCpu.toFixed(2)),
    'push CPU vs stock': Number((o.pushCpu / (outcomes[1]?.pushCpu ?? NaN)).toFixed(2)),
  }));
}

runIfMain(import.meta.url, run);
