/**
 * Durability with real processes: SIGTERM commits everything; kill -9 during a write storm loses
 * nothing once the stock clients have reconnected. Every write is counted in every client and in
 * the stored state.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../apps/server/src/relay/persistence/sqlite.js';
import { docUntil, logClient, startWriteStorm, synced, type LogClient } from './fixtures/relay-clients.js';
import { freePort } from './helpers/process.js';
import { killIfRunning, startServerProcess, stopProcess, storedLog, type ServerProcess } from './fixtures/relay-process.js';

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
  cleanup.push(() => killIfRunning(p));
  return p;
}

function client(version: 2 | 3, wsUrl: string): LogClient {
  const c = logClient(version, wsUrl, ROOM);
  cleanup.push(() => c.destroy());
  return c;
}

const storedEntries = (dataDir: string): Promise<string[]> => storedLog(new SqliteStore(dataDir), ROOM);

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
    // The reader writes nothing: every entry it holds came through the server.
    const reader = client(3, server.wsUrl);
    await Promise.all([...clients, reader].map((c) => synced(c.p)));

    // Each client writes an entry every 3 ms, whether or not the server is up.
    const storm = startWriteStorm(clients, 3);
    cleanup.push(() => storm.stop());

    for (let kill = 0; kill < 3; kill++) {
      // Let each server carry 300 more writes to the reader, then crash it mid-storm.
      const seen = reader.list.length;
      await docUntil(reader.doc, () => reader.list.length >= seen + 300, 20_000, 'writes through the relay');
      expect(await stopProcess(server, 'SIGKILL')).toBe('SIGKILL');
      server = await serverProcess(port, dataDir, env);
      await Promise.all([...clients, reader].map((c) => synced(c.p, 20_000)));
    }
    storm.stop();
    const total = storm.total();
    const expected = storm.expected();

    for (const c of [...clients, reader]) await docUntil(c.doc, () => c.list.length === total, 20_000, `client to hold all ${total} writes`);
    expect(new Set(reader.list.toArray())).toEqual(expected);
    for (const c of clients) expect(new Set(c.list.toArray())).toEqual(expected);

    expect(await stopProcess(server, 'SIGTERM')).toBe(0);
    const stored = await storedEntries(dataDir);
    expect(stored.length).toBe(total);
    expect(new Set(stored)).toEqual(expected);
  });
});
