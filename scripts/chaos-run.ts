/**
 * Chaos for the relay's durability: the real server process (apps/server/src/main.ts) is killed
 * with SIGKILL `kills` times while `writers` stock y-websocket clients (each with its own document,
 * BroadcastChannel off) append entries to `rooms` rooms. Then the writers finish syncing and are
 * closed, the server is killed once more and restarted, and a NEW client per room loads it fresh
 * from the server: every entry each writer made must be there.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import * as Y from 'yjs';
import { freePort } from '../test/helpers/process.js';
import { killIfRunning, startServerProcess, stopProcess, type ServerProcess } from '../test/fixtures/relay-process.js';
import { stockProvider, synced, type StockProvider } from '../test/fixtures/relay-clients.js';

export interface ChaosOptions {
  storage: 'sqlite' | 'postgres';
  kills: number;
  writers: number;
  rooms: number;
  /** time the server runs between two kills (ms) */
  upMs: number;
  /** each writer appends an entry this often (ms) */
  everyMs: number;
  databaseUrl?: string;
  log?: (line: string) => void;
}

export interface ChaosResult {
  storage: string;
  kills: number;
  written: number;
  missing: number;
  /** entries found that no writer made */
  unexpected: number;
  durationMs: number;
}

interface Writer {
  doc: Y.Doc;
  provider: StockProvider;
  room: string;
  written: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const log = o.log ?? (() => undefined);
  const started = Date.now();
  const cleanup: Array<() => Promise<unknown> | unknown> = [];
  const running: { server: ServerProcess | null } = { server: null };
  try {
    const env = await storageEnv(o, cleanup);
    const port = await freePort();
    const start = async (): Promise<ServerProcess> => (running.server = await startServerProcess(port, { ...env, ROOM_IDLE_MS: '1000', PERSIST_FLUSH_MS: '50' }, 60_000));
    await start();
    const wsUrl = `ws://127.0.0.1:${port}`;
    const roomNames = Array.from({ length: o.rooms }, (_, i) => `chaos-conversation-room-${i}`);
    const writers: Writer[] = Array.from({ length: o.writers }, (_, i) => {
      const doc = new Y.Doc();
      const room = roomNames[i % o.rooms] as string;
      return { doc, provider: stockProvider(3, wsUrl, room, doc), room, written: 0 };
    });
    cleanup.push(() => writers.forEach((w) => (w.provider.destroy(), w.doc.destroy())));
    await Promise.all(writers.map((w) => synced(w.provider, 30_000)));
    const timer = setInterval(() => {
      for (const [i, w] of writers.entries()) w.doc.getArray<string>('log').push([`${i}:${w.written++}`]);
    }, o.everyMs);
    cleanup.push(() => clearInterval(timer));

    for (let k = 1; k <= o.kills; k++) {
      await sleep(o.upMs);
      await stopProcess(running.server as ServerProcess, 'SIGKILL');
      log(`kill ${k}/${o.kills} (SIGKILL), ${writers.reduce((n, w) => n + w.written, 0)} entries written so far`);
      await start();
    }
    clearInterval(timer);

    // The writers resync what the server missed (stock clients send their state on reconnect).
    await Promise.all(writers.map((w) => synced(w.provider, 60_000)));
    await waitUntilServed(wsUrl, roomNames, writers, 60_000);
    for (const w of writers) (w.provider.destroy(), w.doc.destroy());
    await sleep(500); // past PERSIST_FLUSH_MS: then kill without a graceful shutdown
    await stopProcess(running.server as ServerProcess, 'SIGKILL');
    await start();

    const found = await loadFresh(wsUrl, roomNames);
    const expected = new Set(writers.flatMap((w, i) => Array.from({ length: w.written }, (_, n) => `${i}:${n}`)));
    let missing = 0;
    for (const entry of expected) if (!found.has(entry)) missing++;
    let unexpected = 0;
    for (const entry of found) if (!expected.has(entry)) unexpected++;
    return { storage: o.storage, kills: o.kills, written: expected.size, missing, unexpected, durationMs: Date.now() - started };
  } finally {
    if (running.server) killIfRunning(running.server);
    for (const step of cleanup.reverse()) await step();
  }
}

async function storageEnv(o: ChaosOptions, cleanup: Array<() => unknown>): Promise<Record<string, string>> {
  if (o.storage === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'chaos-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    return { STORAGE: 'sqlite', DATA_DIR: dir };
  }
  const url = o.databaseUrl ?? 'postgres://postgres@127.0.0.1:5432/test';
  const schema = `t_chaos_${randomBytes(5).toString('hex')}`;
  const query = async (sql: string) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await query(`CREATE SCHEMA "${schema}"`);
  cleanup.push(() => query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
  return { STORAGE: 'postgres', DATABASE_URL: `${url}?options=${encodeURIComponent(`-c search_path=${schema}`)}` };
}

/** Every entry of every room's 'log', as a new client loads it from the server. */
async function loadFresh(wsUrl: string, rooms: string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (const room of rooms) {
    const doc = new Y.Doc();
    const p = stockProvider(2, wsUrl, room, doc);
    try {
      await synced(p, 30_000);
      for (const entry of doc.getArray<string>('log').toArray()) found.add(entry);
    } finally {
      p.destroy();
      doc.destroy();
    }
  }
  return found;
}

/** Waits until a fresh load of each room holds everything its writers wrote. */
async function waitUntilServed(wsUrl: string, rooms: string[], writers: Writer[], ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const found = await loadFresh(wsUrl, rooms);
    const all = writers.every((w, i) => Array.from({ length: w.written }, (_, n) => `${i}:${n}`).every((e) => found.has(e)));
    if (all || Date.now() > deadline) return;
    await sleep(250);
  }
}
