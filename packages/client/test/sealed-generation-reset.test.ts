/**
 * Sealed room generations when no delete happened (docs/PROTOCOL-sealed.md, "Generation"): the
 * server lost the room (restarted with STORAGE=memory; its SQLite file restored from a copy taken
 * before the room existed). A device that knows the old generation is not told 4410: it takes the
 * room from 0 in the new generation and uploads its copy again, so a new device finds it. And a
 * cursor stored without a generation (by a client before generations) is read from 0 once: after a
 * delete and a rewrite the device still gets every entry of the new room.
 * In-process server (test/helpers/server.ts) and SealedTransport, as the hostile-server test does.
 */
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import * as Y from 'yjs';
import { startServer, TEST_SECRET, type TestServer } from '../../../test/helpers/server.js';
import { SQLITE_FILE_NAME } from '../../../apps/server/src/relay/persistence/sqlite.js';
import type { SealedProgress } from '../src/sealed/progress.js';
import { sealedDevices, type SealedDevice as Device } from './helpers/sealed-device.js';
import { until } from './helpers/until.js';

const KEY = new Uint8Array(32).fill(5);
const ADMIN_TOKEN = 'admin-token-for-the-tests-0123456789';
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const device = sealedDevices(KEY, cleanup);

const text = (d: Device, name = 't'): string => d.doc.getText(name).toString();
const lastGeneration = (d: Device): number => d.progress.at(-1)?.generation ?? 0;

/** `a` wrote `content` and knows the generation; `restart` takes the server away and back without a delete. */
async function lostRoom(room: string, content: string, start: () => Promise<TestServer>, restart: (s: TestServer) => Promise<TestServer>): Promise<void> {
  let server = await start();
  cleanup.push(() => server.close());
  const a = device(server, room);
  await until(async () => a.t.synced, 'a caught up');
  a.doc.getText('t').insert(0, content);
  await until(async () => a.t.pending === 0 && lastGeneration(a) > 0, 'a acked, generation stored');
  const old = lastGeneration(a);
  server = await restart(server);
  await until(async () => a.t.synced || a.refused.includes(4410), 'a back, or refused 4410', 20_000);
  expect(a.refused).not.toContain(4410);
  expect(a.t.deleted).toBe(false);
  // a uploads its copy again into the new generation, which it stores
  await until(async () => a.t.synced && a.t.pending === 0 && lastGeneration(a) !== old, 'a acked in the new generation', 20_000);
  const b = device(server, room);
  await until(async () => b.t.synced && text(b) === content, `a fresh device sees ${content}`);
  expect(a.refused).toEqual([]);
}

it('server restarted with STORAGE=memory (the room lost, never deleted): a device knowing the old generation is not told 4410, and its copy is on the server again', async () => {
  await lostRoom(
    'test-conversation-gen-memory-restart',
    'hello',
    () => startServer({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' }),
    async (s) => {
      await s.close();
      return startServer({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn', PORT: String(s.port) });
    },
  );
}, 60_000);

it('SQLite file restored from a copy taken before the room existed: no 4410, the copy is on the server again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'client-gen-sqlite-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const env = { AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn', STORAGE: 'sqlite', DATA_DIR: dir };
  const file = join(dir, SQLITE_FILE_NAME);
  await lostRoom(
    'test-conversation-gen-sqlite-restore',
    'precious',
    async () => {
      const first = await startServer(env);
      await first.close();
      expect(existsSync(file)).toBe(true);
      copyFileSync(file, join(dir, 'backup.sqlite'));
      return startServer({ ...env, PORT: String(first.port) });
    },
    async (s) => {
      await s.close();
      for (const f of ['-wal', '-shm']) rmSync(file + f, { force: true });
      copyFileSync(join(dir, 'backup.sqlite'), file);
      return startServer({ ...env, PORT: String(s.port) });
    },
  );
}, 60_000);

it('a cursor stored without a generation (a client before generations), room deleted and rewritten meanwhile: the device reads from 0 and gets every new entry', async () => {
  const server = await startServer({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn', ADMIN_TOKEN });
  cleanup.push(() => server.close());
  const room = 'test-conversation-gen-upgrade';
  // old room: 3 entries, device d reads them (cursor 3)
  const w = device(server, room);
  await until(async () => w.t.synced, 'w caught up');
  for (const s of ['a', 'b', 'c']) {
    w.doc.getText('t').insert(text(w).length, s);
    await until(async () => w.t.pending === 0, `${s} acked`);
  }
  const d = device(server, room);
  await until(async () => d.t.synced && text(d) === 'abc' && d.progress.some((p) => p.cursor === 3), 'd read abc, cursor 3');
  const last = d.progress.at(-1) as SealedProgress;
  const legacy: SealedProgress = { cursor: 3, held: last.held }; // as the client before generations stored it
  d.t.destroy();
  w.t.destroy();
  const res = await fetch(`${server.url}/admin/rooms/${room}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  expect(res.status).toBe(200);
  // new room: 5 entries by another device
  const n = device(server, room);
  await until(async () => n.t.synced, 'n caught up');
  for (const s of ['1', '2', '3', '4', '5']) {
    n.doc.getText('n').insert(text(n, 'n').length, s);
    await until(async () => n.t.pending === 0, `${s} acked`);
  }
  // d, upgraded, comes back with its stored (legacy) cursor and its document
  const dDoc = new Y.Doc();
  Y.applyUpdate(dDoc, Y.encodeStateAsUpdate(d.doc));
  const d2 = device(server, room, legacy, dDoc);
  await until(async () => d2.t.synced || d2.refused.length > 0, 'd2 back');
  expect(d2.refused).toEqual([]);
  expect(text(d2, 'n')).toBe('12345');
  // the generation welcome named is stored with the cursor it counts in (past 5: d2's start-up
  // update, the difference of its document from what it stored as held, may be entry 6)
  await until(async () => (d2.progress.at(-1)?.cursor ?? 0) >= 5 && lastGeneration(d2) > 0, 'd2 progress stored with the generation');
  expect(lastGeneration(d2)).toBe(lastGeneration(n));
}, 60_000);
