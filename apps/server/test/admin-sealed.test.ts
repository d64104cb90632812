/**
 * The admin API on sealed rooms (SQLite, and PostgreSQL): listed with `sealed: true` and merged
 * in name order with plain rooms across pages; DELETE closes every /sealed socket with 4410,
 * empties the sealed tables (read from storage), drops an envelope accepted but not yet
 * committed, and the next device is welcomed into an empty room; with two instances (Redis,
 * PostgreSQL) one DELETE closes the devices of both.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { SEALED_ENVELOPE_MIN_BYTES } from '@sync-suite/shared';
import { SQLITE_FILE_NAME } from '../src/relay/persistence/sqlite.js';
import { sealedRegistry } from '../src/routes/sealed/index.js';
import { SEALED_ROW_OVERHEAD_BYTES } from '../src/sealed/store/types.js';
import { serverPerTest, startServers, TEST_SECRET, testToken, type TestServer } from '../../../test/helpers/server.js';
import { fakeEnvelope, RawSealed } from '../../../test/fixtures/sealed-raw.js';
import { stockClient, synced } from '../../../test/fixtures/relay-clients.js';
import { schemaForThisFile, urlWithSchema, withPg } from './postgres-helpers.js';

const scope = serverPerTest();
afterEach(() => scope.close());
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const ADMIN_TOKEN = 'admin-token-for-the-tests-0123456789';
const ROOM = 'acme-conversation-sealedadmin';
const env = (n: number): Uint8Array => fakeEnvelope([n, 0xee, n, 0xee]);
const schema = schemaForThisFile('sadmin');
const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

function sqliteEnv(): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'admin-sealed-'));
  dirs.push(dir);
  return { STORAGE: 'sqlite', DATA_DIR: dir };
}

async function admin(server: TestServer, method: string, path: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function device(server: TestServer, token: string, room = ROOM): Promise<RawSealed> {
  const c = await RawSealed.connect(server.wsUrl, `/sealed/${room}?token=${token}`);
  scope.track(c);
  c.hello(0);
  await c.next('caught-up');
  return c;
}

/** Writes `n` envelopes from `c` and waits for their acks (committed). */
async function write(c: RawSealed, first: number, n: number): Promise<void> {
  for (let i = 0; i < n; i++) c.update(first + i, env(first + i));
  await c.wait(() => c.messages.filter((m) => m.type === 'ack').length >= n, `${n} acks`);
}

async function deleteScenario(server: TestServer, stored: () => Promise<number>): Promise<void> {
  const token = await testToken('alice', ['acme-*']);
  const [a, b] = [await device(server, token), await device(server, token)];
  await write(a, 1, 3);
  await b.wait(() => b.messages.filter((m) => m.type === 'entry').length === 3, 'three entries');
  // A plain room either side of the sealed one in name order: the listing merges both kinds.
  for (const name of ['acme-conversation-plain-a', 'acme-conversation-zplain']) {
    const p = stockClient(3, server.wsUrl, name, { token });
    scope.track(p);
    await synced(p.p);
    p.doc.getText('t').insert(0, 'x');
  }
  const relay = server.app.relayRooms;
  for (let i = 0; (await admin(server, 'GET', '/admin/rooms/acme-conversation-zplain')).json['entries'] !== 1; i++) {
    if (i > 100) throw new Error('plain rooms not stored');
    await relay?.drain();
    await new Promise((r) => setTimeout(r, 50));
  }

  const page1 = await admin(server, 'GET', '/admin/rooms?prefix=acme-conversation-&limit=2');
  expect(page1.json).toMatchObject({
    rooms: [
      { room: 'acme-conversation-plain-a', sealed: false },
      { room: ROOM, sealed: true, connections: 2, entries: 3, bytes: 3 * (SEALED_ENVELOPE_MIN_BYTES + SEALED_ROW_OVERHEAD_BYTES) },
    ],
    next: ROOM,
  });
  const lastChangeAt = (page1.json['rooms'] as Array<{ lastChangeAt: number | null }>)[1]?.lastChangeAt;
  expect(lastChangeAt).toBeGreaterThan(Date.now() - 60_000);
  const page2 = await admin(server, 'GET', `/admin/rooms?prefix=acme-conversation-&limit=2&after=${ROOM}`);
  expect(page2.json).toMatchObject({ rooms: [{ room: 'acme-conversation-zplain', sealed: false }], next: null });
  expect((await admin(server, 'GET', `/admin/rooms/${ROOM}`)).json).toMatchObject({ room: ROOM, sealed: true, connections: 2, entries: 3 });
  expect(await stored()).toBeGreaterThan(0);

  // One more envelope, accepted but held by the group commit (PERSIST_FLUSH_MS is long): b seeing
  // a's presence, sent after it, shows the server has taken it.
  a.update(4, env(4));
  a.presence(env(9));
  await b.next('presence');
  const del = await admin(server, 'DELETE', `/admin/rooms/${ROOM}`);
  expect(del).toEqual({ status: 200, json: { deleted: true, closed: 2, instances: 1 } });
  expect([await a.closed(), await b.closed()]).toEqual([4410, 4410]);
  await sealedRegistry(server.app)?.queue.flush(); // a commit of what was held would land now
  expect(await stored()).toBe(0);
  expect((await admin(server, 'GET', `/admin/rooms/${ROOM}`)).status).toBe(404);

  const fresh = await RawSealed.connect(server.wsUrl, `/sealed/${ROOM}?token=${token}`);
  scope.track(fresh);
  fresh.hello(3); // its cursor from before the delete
  expect(await fresh.next('caught-up')).toMatchObject({ seq: 0 });
  expect(fresh.messages.map((m) => m.type)).toEqual(['welcome', 'caught-up']);
  fresh.update(1, env(1));
  expect(await fresh.next('ack')).toMatchObject({ id: 1, seq: 1 });
}

describe('admin API on sealed rooms', () => {
  it('SQLite: lists it sealed among plain rooms; DELETE closes 4410, empties storage, the next device starts empty', async () => {
    const extra = sqliteEnv();
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, ADMIN_TOKEN, PERSIST_FLUSH_MS: '4000', ...extra });
    const file = join(extra['DATA_DIR'] as string, SQLITE_FILE_NAME);
    await deleteScenario(server, async () => {
      const db = new Database(file, { readonly: true });
      try {
        const count = (table: string, where = '') => (db.prepare(`SELECT count(*) AS n FROM ${table} WHERE room = ?${where}`).get(ROOM) as { n: number }).n;
        // the room's row stays after a delete, emptied (head 0), to remember the generation it ended
        return count('sealed_entries') + count('sealed_snapshots') + count('sealed_rooms', ' AND (head > 0 OR entries > 0 OR snapshot_bytes IS NOT NULL)');
      } finally {
        db.close();
      }
    });
  });

  it('PostgreSQL: the same', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, ADMIN_TOKEN, PERSIST_FLUSH_MS: '4000', STORAGE: 'postgres', DATABASE_URL: urlWithSchema(schema) });
    await deleteScenario(server, () =>
      withPg(async (c) => {
        const count = async (table: string, where = '') =>
          Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".${table} WHERE room = $1${where}`, [ROOM])).rows[0]?.n);
        // the room's row stays after a delete, emptied (head 0), to remember the generation it ended
        return (await count('sealed_entries')) + (await count('sealed_rooms', ' AND (head > 0 OR entries > 0 OR snapshot IS NOT NULL)'));
      }),
    );
  });

  it('two instances: one DELETE closes the devices on both with 4410 and empties storage', async () => {
    const servers = await startServers(2, {
      AUTH_SECRET: TEST_SECRET,
      ADMIN_TOKEN,
      STORAGE: 'postgres',
      DATABASE_URL: urlWithSchema(schema),
      REDIS_URL,
      REDIS_PREFIX: `test-${randomBytes(5).toString('hex')}:`,
      PERSIST_FLUSH_MS: '20',
    });
    try {
      const [s0, s1] = servers as [TestServer, TestServer];
      const room = 'acme-conversation-sealedcluster';
      const token = await testToken('alice', ['acme-*']);
      const [a, b] = [await device(s0, token, room), await device(s1, token, room)];
      await write(a, 1, 2);
      await b.wait(() => b.messages.filter((m) => m.type === 'entry').length === 2, 'two entries on the other instance');
      expect((await admin(s1, 'GET', `/admin/rooms/${room}`)).json).toMatchObject({ sealed: true, entries: 2, connections: 2 }); // one device on each instance
      const del = await admin(s1, 'DELETE', `/admin/rooms/${room}`);
      expect(del.json).toMatchObject({ deleted: true, closed: 2, instances: 2 });
      expect([await a.closed(), await b.closed()]).toEqual([4410, 4410]);
      const rows = await withPg(async (c) => Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".sealed_entries WHERE room = $1`, [room])).rows[0]?.n));
      expect(rows).toBe(0);
      const fresh = await device(s0, token, room);
      expect(fresh.messages.map((m) => m.type)).toEqual(['welcome', 'caught-up']);
    } finally {
      await Promise.all(servers.map((s) => s.close()));
    }
  });

  it('DELETE of a room with nothing stored ends its generation: a device welcomed in it is closed 4410 at its next hello', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, ADMIN_TOKEN, ...sqliteEnv() });
    const room = 'acme-conversation-sealedempty';
    const token = await testToken('alice', ['acme-*']);
    const c = await RawSealed.connect(server.wsUrl, `/sealed/${room}?token=${token}`);
    scope.track(c);
    c.hello(0, 0);
    const welcome = await c.next('welcome');
    await c.next('caught-up');
    expect(welcome.generation).toBeGreaterThan(0);
    expect((await admin(server, 'DELETE', `/admin/rooms/${room}`)).json).toMatchObject({ deleted: true, closed: 1 });
    expect(await c.closed()).toBe(4410);
    const again = await RawSealed.connect(server.wsUrl, `/sealed/${room}?token=${token}`);
    scope.track(again);
    again.hello(0, welcome.generation);
    expect(await again.closed()).toBe(4410);
    expect(again.messages).toEqual([]);
  });

  it('every generation a DELETE ended stays deleted: a device of the emptied room deleted again, or one that missed several deletes, is closed 4410 at its hello', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, ADMIN_TOKEN, ...sqliteEnv() });
    const room = 'acme-conversation-sealedtwice';
    const token = await testToken('alice', ['acme-*']);
    const connect = async (cursor: number, generation: number): Promise<RawSealed> => {
      const c = await RawSealed.connect(server.wsUrl, `/sealed/${room}?token=${token}`);
      scope.track(c);
      c.hello(cursor, generation);
      return c;
    };
    /** a device welcomed now (its generation), writing `writes` entries, then gone */
    const generationOf = async (writes: number): Promise<number> => {
      const c = await connect(0, 0);
      const { generation } = await c.next('welcome');
      await c.next('caught-up');
      if (writes > 0) await write(c, 1, writes);
      c.close();
      await c.closed();
      return generation ?? 0;
    };
    const deleteIt = async (): Promise<void> => expect((await admin(server, 'DELETE', `/admin/rooms/${room}`)).status).toBe(200);
    const g1 = await generationOf(2);
    await deleteIt();
    // welcomed in the emptied room, nothing written, offline at the DELETE sent again
    const g2 = await generationOf(0);
    await deleteIt();
    const g3 = await generationOf(1);
    await deleteIt();
    expect(new Set([g1, g2, g3]).size).toBe(3);
    for (const [cursor, generation] of [[0, g2], [2, g1], [1, g3]] as const) {
      const c = await connect(cursor, generation);
      expect(await c.closed()).toBe(4410);
      expect(c.messages).toEqual([]);
    }
    // a new device is served the new room
    const fresh = await connect(0, 0);
    expect(await fresh.next('caught-up')).toMatchObject({ seq: 0 });
  });
});
