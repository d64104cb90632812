/**
 * The servers the relay bench compares, each started as a child process on loopback: ours (the
 * production bundle, and a baseline checkout for before/after), the stock @y/websocket-server, a bare `ws`
 * forwarder (the floor: every frame to the other sockets of its path, no Yjs, no storage) and
 * Hocuspocus.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRoomToken } from '@sync-suite/shared';
import { BENCH_AUTH_SECRET, BENCH_ONE_SUB_ENV, productionBundle, serverEnv, serverNodeFlags } from '../lib/bundle.js';
import { SERVER_NODE_FLAGS } from '../../deploy/launch.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Target {
  name: string;
  start(port: number): ChildProcess;
  ready: RegExp;
  url(port: number, room: string): string;
  /** hocuspocus prefixes every message with the document name and needs an auth message first */
  hocuspocus: boolean;
}

let dirs: string[] = [];
function benchDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'bench-relay-'));
  dirs.push(d);
  return d;
}

/** Delete the data directories the runs of our server used. */
export function removeBenchDirs(): void {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
}

/**
 * Our server: the production bundle (bench/lib/bundle.ts) with auth on and the default limits,
 * or a baseline for before/after (BENCH_BASELINE_DIR): a checkout run from source, or a directory
 * holding a built bundle (server.mjs: `node --import tsx deploy/bundle.ts DIR` at the older
 * commit), run as ours is, so that both sides of an A/B are production bundles.
 */
function ours(name: string, app: { bundleDir: string } | { checkout: string }, token: string, flags: string[] = serverNodeFlags()): Target {
  const storage = process.env['BENCH_RELAY_STORAGE'] ?? 'sqlite';
  const args = 'bundleDir' in app ? [...flags, join(app.bundleDir, 'server.mjs')] : ['--import', 'tsx', join(app.checkout, 'apps/server/src/main.ts')];
  return {
    name: `${name} (${storage})`,
    start: (port) =>
      spawn(process.execPath, args, {
        cwd: 'bundleDir' in app ? app.bundleDir : ROOT,
        env: { ...('bundleDir' in app ? serverEnv() : {}), PATH: process.env['PATH'] ?? '', HOST: '127.0.0.1', PORT: String(port), STORAGE: storage, DATA_DIR: benchDir(), LOG_LEVEL: 'warn', ROOM_TYPES: 'conversation', AUTH_SECRET: BENCH_AUTH_SECRET, ...BENCH_ONE_SUB_ENV },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    ready: /listening/,
    url: (port, room) => `ws://127.0.0.1:${port}/relay/${room}?token=${token}`,
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

/**
 * Every server of the run, ours first: ours, its baseline if any, stock, the floor, Hocuspocus.
 * BENCH_RELAY_TARGETS (comma-separated keys: ours, baseline, stock, bare, hocuspocus) keeps only
 * those, for quick A/B runs; unset: all of them.
 */
export async function relayTargets(): Promise<Target[]> {
  const keep = targetFilter(process.env['BENCH_RELAY_TARGETS']);
  const bundleDir = await productionBundle();
  const token = await createRoomToken(BENCH_AUTH_SECRET, { sub: 'bench', rooms: ['bench-conversation-*'], ttlSeconds: 3600 });
  const baseline = process.env['BENCH_BASELINE_DIR'];
  const all: Array<[string, Target]> = [
    ['ours', ours('sync-suite /relay', { bundleDir }, token)],
    ...(baseline ? [['baseline', ours('sync-suite /relay baseline', existsSync(join(baseline, 'server.mjs')) ? { bundleDir: baseline } : { checkout: baseline }, token, baselineNodeFlags())] as [string, Target]] : []),
    ...references,
  ];
  return all.filter(([key]) => keep(key)).map(([, t]) => t);
}

/** A bundle baseline's node flags: the shipped ones and BENCH_BASELINE_NODE_FLAGS when set (to A/B a flag), else BENCH_NODE_FLAGS as ours. */
function baselineNodeFlags(): string[] {
  const own = process.env['BENCH_BASELINE_NODE_FLAGS'];
  return own === undefined ? serverNodeFlags() : [...SERVER_NODE_FLAGS, ...own.split(' ').filter(Boolean)];
}

const TARGET_KEYS = ['ours', 'baseline', 'stock', 'bare', 'hocuspocus'];

/** Which target keys BENCH_RELAY_TARGETS keeps; an unknown key is an error (a typo would silently drop a target). */
export function targetFilter(value: string | undefined): (key: string) => boolean {
  if (value === undefined || value.trim() === '') return () => true;
  const keys = value.split(',').map((k) => k.trim()).filter(Boolean);
  const unknown = keys.filter((k) => !TARGET_KEYS.includes(k));
  if (unknown.length > 0) throw new Error(`BENCH_RELAY_TARGETS: unknown ${unknown.join(', ')} (known: ${TARGET_KEYS.join(', ')})`);
  return (key) => keys.includes(key);
}

const references: Array<[string, Target]> = [
  ['stock', {
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
  }],
  ['bare', {
    name: 'bare ws forwarder (floor)',
    start: (port) => spawn(process.execPath, ['--input-type=module', '-e', FORWARDER, String(port)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }),
    ready: /forwarder ready/,
    url: (port, room) => `ws://127.0.0.1:${port}/${room}`,
    hocuspocus: false,
  }],
  ['hocuspocus', {
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
  }],
];
