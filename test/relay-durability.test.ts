/**
 * Durability with real processes: SIGTERM commits everything; kill -9 during a write storm loses
 * nothing once the stock clients have reconnected. Every write is counted in every client and in
 * the stored state.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { mergeStoredRoom } from '../apps/server/src/relay/persistence/merge.js';
import { SqliteStore } from '../apps/server/src/relay/persistence/sqlite.js';
import { docUntil, stockProvider, synced, type StockProvider } from './fixtures/relay-clients.js';
import { freePort } from './helpers/process.js';
import { startServerProcess, stopProcess, type ServerProcess } from './fixtures/relay-process.js';

const ROOM = 'acme-conversation-durable';
const cleanup: Array<() => void | Promise<unknown>> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'relay-durable-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function serverProcess(port: number, dataDir: string, extra: Record<string, string> = {}): Promise<ServerProcess> {
  const p = await startServerProcess(port, { STORAGE: 'sqlite', DATA_DIR: dataDir, ...extra });
  cleanup.push(() => {
    if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGKILL');
  });
  return p;
}

function client(version: 2 | 3, wsUrl: string): { doc: Y.Doc; p: StockProvider; list: Y.Array<string> } {
  const doc = new Y.Doc();
  const p = stockProvider(version, wsUrl, ROOM, doc);
  cleanup.push(() => {
    p.destroy();
    doc.destroy();
  });
  return { doc, p, list: doc.getArray<string>('log') };
}

async function storedEntries(dataDir: string): Promise<string[]> {
  const store = new SqliteStore(dataDir);
  await store.init();
  try {
    const doc = new Y.Doc();
    Y.applyUpdate(doc, mergeStoredRoom(await store.load(ROOM)));
    return doc.getArray<string>('log').toArray();
  } finally {
    await store.close();
  }
}

describe('relay durability (real processes, SQLite)', () => {
  it('SIGTERM commits every accepted update; a new server on the same DATA_DIR serves the full state', async () => {
    const dataDir = tempDir();
    const port = await freePort();
    // A long flush window: only the shutdown can have committed these updates.
    const first = await serverProcess(port, dataDir, { PERSIST_FLUSH_MS: '60000' });
    const writers = [client(3, first.wsUrl), client(2, first.wsUrl)];
    const observer = client(3, first.wsUrl);
    await Promise.all([...writers, observer].map((c) => synced(c.p)));
    writers.forEach((w, i) => {
      for (let n = 0; n < 200; n++) w.list.push([`${i}:${n}`]);
    });
    await docUntil(observer.doc, () => observer.list.length === 400, 15_000, 'observer sees 400 writes');

    expect(await stopProcess(first, 'SIGTERM')).toBe(0);
    for (const c of [...writers, observer]) c.p.destroy(); // no client may hand the data back

    const second = await serverProcess(port, dataDir);
    const fresh = client(2, second.wsUrl);
    await synced(fresh.p);
    expect(fresh.list.length).toBe(400);
    expect(new Set(fresh.list.toArray()).size).toBe(400);
    expect(await stopProcess(second, 'SIGTERM')).toBe(0);
    expect((await storedEntries(dataDir)).length).toBe(400);
  });

  it('kill -9 three times during a write storm from four stock clients loses no write', async () => {
    const dataDir = tempDir();
    const port = await freePort();
    const env = { PERSIST_FLUSH_MS: '50', MAX_MESSAGES_PER_SECOND: '2000', ROOM_IDLE_MS: '100' };
    let server = await serverProcess(port, dataDir, env);
    const clients = [client(3, server.wsUrl), client(2, server.wsUrl), client(3, server.wsUrl), client(2, server.wsUrl)];
    await Promise.all(clients.map((c) => synced(c.p)));

    // Each client writes an entry every 3 ms, whether or not the server is up.
    const written = clients.map(() => 0);
    const storm = clients.map((c, i) =>
      setInterval(() => {
        c.list.push([`${i}:${written[i]}`]);
        written[i] = (written[i] ?? 0) + 1;
      }, 3),
    );
    cleanup.push(() => storm.forEach(clearInterval));

    const watcher = clients[0] as (typeof clients)[number];
    for (let kill = 0; kill < 3; kill++) {
      // Let the relay carry a good number of other clients' writes, then crash it mid-storm.
      const seen = watcher.list.length;
      await docUntil(watcher.doc, () => watcher.list.length >= seen + 300, 20_000, 'writes through the relay');
      expect(await stopProcess(server, 'SIGKILL')).toBe('SIGKILL');
      server = await serverProcess(port, dataDir, env);
      await Promise.all(clients.map((c) => synced(c.p, 20_000)));
    }
    storm.forEach(clearInterval);
    const total = written.reduce((a, b) => a + b, 0);
    const expected = new Set(written.flatMap((n, i) => Array.from({ length: n }, (_, k) => `${i}:${k}`)));
    expect(total).toBeGreaterThan(900);

    for (const c of clients) await docUntil(c.doc, () => c.list.length === total, 20_000, `client to hold all ${total} writes`);
    for (const c of clients) expect(new Set(c.list.toArray())).toEqual(expected);

    expect(await stopProcess(server, 'SIGTERM')).toBe(0);
    const stored = await storedEntries(dataDir);
    expect(stored.length).toBe(total);
    expect(new Set(stored)).toEqual(expected);
  });
});
