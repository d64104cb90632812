/**
 * Room generations on WS /sealed with a raw client: a device whose hello names a generation a
 * delete of the room ended is closed 4410 before `welcome` and gets no entry, whatever its cursor;
 * one naming the current generation, or none, is served from its cursor; one naming a generation
 * this storage never had (storage lost or restored from an older copy) is served from 0 with the
 * room's generation; a client before generations (hello without the field) gets the welcome it can read.
 * A welcome to a client that names one also carries RELAY_MAX_MESSAGE_BYTES. A generation over
 * 2^53 - 1 is malformed (4400) before storage is asked; one of 2^48 or more was never drawn.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { serverPerTest, type TestServer } from '../../../test/helpers/server.js';
import { fakeEnvelope, RawSealed } from '../../../test/fixtures/sealed-raw.js';
import { sealedRegistry } from '../src/routes/sealed/index.js';
import { schemaForThisFile, urlWithSchema } from './postgres-helpers.js';

const ROOM = 'acme-conversation-generation';
const ADMIN_TOKEN = 'admin-token-for-the-tests-0123456789';
const scope = serverPerTest();
afterEach(() => scope.close());

const env = (n: number): Uint8Array => fakeEnvelope([n, 0xee, n]);
const schema = schemaForThisFile('sgen');

async function client(path = `/sealed/${ROOM}`): Promise<RawSealed> {
  const c = await RawSealed.connect(scope.current.wsUrl, path);
  scope.track(c);
  return c;
}

/** A device that writes `count` entries (each acked) from a fresh start; resolves with the generation it was welcomed with. */
async function write(count: number, first: number): Promise<number> {
  const c = await client();
  c.hello(0, 0);
  const welcome = await c.next('welcome');
  await c.next('caught-up');
  for (let i = 0; i < count; i++) {
    const from = c.messages.length;
    c.update(i + 1, env(first + i));
    await c.next('ack', from);
  }
  c.close();
  return welcome.generation ?? 0;
}

async function deleteRoom(server: TestServer): Promise<void> {
  const res = await fetch(`${server.url}/admin/rooms/${ROOM}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  expect(res.status).toBe(200);
}

it('a hello naming the generation a delete ended is closed 4410 before welcome, with no entry; the current one or none is served from the cursor', async () => {
  const server = await scope.start({ ADMIN_TOKEN, PERSIST_FLUSH_MS: '5', RELAY_MAX_MESSAGE_BYTES: '65536' });
  const g1 = await write(3, 1);
  expect(g1).toBeGreaterThan(0);
  expect(g1).toBeLessThan(2 ** 48);

  // Back with the cursor and generation it had: nothing to send.
  const same = await client();
  same.hello(3, g1);
  expect((await same.next('welcome')).generation).toBe(g1);
  expect((await same.next('caught-up')).seq).toBe(3);
  expect(same.messages.filter((m) => m.type === 'entry')).toEqual([]);
  same.close();

  await deleteRoom(server);
  const g2 = await write(5, 11);
  expect(g2).not.toBe(g1);

  // The device that missed the delete: its cursor 3 counts in g1's log. Before generations it got
  // entries 4 and 5 of the new log and never 1..3.
  const stale = await client();
  stale.hello(3, g1);
  expect(await stale.closed()).toBe(4410);
  expect(stale.messages).toEqual([]);

  // The current generation: served from the cursor.
  const current = await client();
  current.hello(3, g2);
  expect((await current.next('welcome')).generation).toBe(g2);
  expect((await current.next('caught-up')).seq).toBe(5);
  expect(current.messages.filter((m) => m.type === 'entry').map((m) => (m.type === 'entry' ? m.envelope[0] : 0))).toEqual([14, 15]);
  current.close();

  // A generation this storage never had (no delete of it was seen: storage lost or restored):
  // served as a new device, from 0, whatever its cursor, and told the room's generation.
  const lost = await client();
  lost.hello(3, g1 === 123_456_789 ? 987_654_321 : 123_456_789);
  expect((await lost.next('welcome')).generation).toBe(g2);
  expect((await lost.next('caught-up')).seq).toBe(5);
  expect(lost.messages.filter((m) => m.type === 'entry').map((m) => (m.type === 'entry' ? m.envelope[0] : 0))).toEqual([11, 12, 13, 14, 15]);
  lost.close();

  // Unknown (a new device): everything, and the generation to keep.
  const fresh = await client();
  fresh.hello(0, 0);
  // with the frame limit, so the device never sends a frame the server closes 1009
  expect(await fresh.next('welcome')).toMatchObject({ generation: g2, maxMessageBytes: 65536 });
  expect((await fresh.next('caught-up')).seq).toBe(5);
  expect(fresh.messages.filter((m) => m.type === 'entry')).toHaveLength(5);
  fresh.close();

  // A client before generations: served as before, with the welcome it reads (no generation field).
  const old = await client();
  old.hello(0);
  const welcome = await old.next('welcome');
  // (flags bit 1, snapshot-bad, is read by no older client: they test bit 0 only)
  expect(welcome).toEqual({ type: 'welcome', peer: welcome.peer, writable: true, takesSnapshotBad: true });
  expect((await old.next('caught-up')).seq).toBe(5);
  old.close();
});

it('a room with nothing stored: a device naming a generation (storage lost) is served from 0 with the room\'s; one that names none gets the generation later entries count in', async () => {
  const server = await scope.start({ ADMIN_TOKEN, PERSIST_FLUSH_MS: '5' });
  const lost = await client();
  lost.hello(7, 123_456_789);
  const g0 = (await lost.next('welcome')).generation ?? 0;
  expect(g0).toBeGreaterThan(0);
  expect(g0).not.toBe(123_456_789);
  expect((await lost.next('caught-up')).seq).toBe(0);
  lost.close();

  // Welcomed before the first entry: the generation then stays the one the entries count in.
  const first = await client();
  first.hello(0, 0);
  const g = (await first.next('welcome')).generation ?? 0;
  expect(g).toBe(g0);
  await first.next('caught-up');
  const from = first.messages.length;
  first.update(1, env(1));
  expect((await first.next('ack', from)).seq).toBe(1);
  first.close();
  expect(await write(1, 2)).toBe(g);
  // Nothing but a welcome stored no entry: the admin API does not list a room that was only joined.
  const joined = await client(`/sealed/${ROOM}-joined`);
  joined.hello(0, 0);
  await joined.next('caught-up');
  joined.close();
  const store = sealedRegistry(server.app)?.store;
  expect(await store?.statRoom(`${ROOM}-joined`)).toBeNull();
  expect((await store?.listRooms(`${ROOM}-joined`, '', 10))?.map((f) => f.room)).toEqual([]);
});

for (const storage of ['postgres', 'sqlite'] as const) {
  it(`a hello naming a generation over 2^53 - 1 is closed 4400 before storage is read; 2^48 and over, never a generation, is served from 0 (${storage})`, async () => {
    const server = await scope.start({
      PERSIST_FLUSH_MS: '5',
      STORAGE: storage,
      ...(storage === 'postgres' ? { DATABASE_URL: urlWithSchema(schema) } : { DATA_DIR: mkdtempSync(join(tmpdir(), 'sgen-')) }),
    });
    const g = await write(1, 1);
    for (const huge of [2 ** 63, 2 ** 64, 2 ** 200, 2 ** 53]) {
      const c = await client();
      c.hello(1, huge);
      expect(await c.closed(), `generation ${huge}`).toBe(4400);
      expect(c.messages).toEqual([]);
    }
    for (const never of [2 ** 48, 2 ** 53 - 1]) {
      const c = await client();
      c.hello(1, never);
      expect((await c.next('welcome')).generation).toBe(g);
      expect((await c.next('caught-up')).seq).toBe(1);
      expect(c.messages.filter((m) => m.type === 'entry').length).toBe(1);
      c.close();
    }
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics.split('\n').filter((l) => l.startsWith('sync_storage_errors_total'))).toEqual([]);
    expect(server.logs.filter((l) => (l['level'] as number) >= 40).map((l) => l['msg'])).toEqual([]);
  });
}
