/**
 * The admin API across two instances (Redis fan-out, PostgreSQL storage): a revoke made on one
 * instance closes the sub's sockets on both, is refused on both afterwards and after a restart;
 * a room delete closes its sockets on both with 4410, leaves nothing in PostgreSQL, and the next
 * client starts from an empty document.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startServers, TEST_SECRET, testToken, type TestServer } from '../../../test/helpers/server.js';
import { RawClient as RelayClient, docUntil, firstCloseCode, stockClient, synced, textOf, type StockClient } from '../../../test/fixtures/relay-clients.js';
import { RawClient as SignalClient } from './signaling-client.js';
import { urlWithSchema, schemaForThisFile, withPg } from './postgres-helpers.js';

const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const ADMIN_TOKEN = 'admin-token-for-the-cluster-tests-01';
const schema = schemaForThisFile('admin');
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function cluster(n: number, prefix: string): Promise<TestServer[]> {
  const servers = await startServers(n, {
    AUTH_SECRET: TEST_SECRET,
    ADMIN_TOKEN,
    STORAGE: 'postgres',
    DATABASE_URL: urlWithSchema(schema),
    REDIS_URL,
    REDIS_PREFIX: prefix,
    PERSIST_FLUSH_MS: '20',
    ROOM_IDLE_MS: '60000',
  });
  cleanup.push(() => Promise.all(servers.map((s) => s.close())));
  return servers;
}

async function admin(server: TestServer, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

async function relay(server: TestServer, room: string, token: string): Promise<RelayClient> {
  const c = await RelayClient.connect(`${server.wsUrl}/relay/${room}?token=${token}`);
  cleanup.push(() => c.close());
  await c.next((m) => m.type === 'sync-step1' || m.type === 'auth', 5000, 'sync step 1');
  return c;
}

async function signal(server: TestServer, token: string): Promise<SignalClient> {
  const c = await SignalClient.open(`${server.wsUrl}/signal?token=${token}`);
  cleanup.push(() => c.close());
  return c;
}

function client(server: TestServer, room: string, token: string): StockClient {
  const c = stockClient(3, server.wsUrl, room, { token });
  cleanup.push(() => c.destroy());
  return c;
}

describe('admin API on two instances (Redis + PostgreSQL)', () => {
  it('revoke closes the sub\'s sockets on both instances, refuses it on both and after a restart, leaves others', async () => {
    const prefix = `test-${randomBytes(5).toString('hex')}:`;
    const [s0, s1] = (await cluster(2, prefix)) as [TestServer, TestServer];
    const room = 'acme-conversation-revoke';
    const [alice, bob] = [await testToken('alice', ['acme-*']), await testToken('bob', ['acme-*'])];
    const a0 = await relay(s0, room, alice);
    const a1 = await relay(s1, room, alice);
    const as1 = await signal(s1, alice);
    const b1 = await relay(s1, room, bob);
    const bs0 = await signal(s0, bob);

    const res = await admin(s0, 'POST', '/admin/revoke', { sub: 'alice' });
    expect(res).toMatchObject({ revoked: { sub: 'alice' }, closed: 3, instances: 2 });
    expect(await a0.closed()).toBe(4401);
    expect(await a1.closed()).toBe(4401);
    expect((await as1.closedWithin()).code).toBe(4401);
    expect(b1.closeCode).toBeNull();
    await bs0.roundTrip();

    const refused = await RelayClient.connect(`${s1.wsUrl}/relay/${room}?token=${alice}`);
    cleanup.push(() => refused.close());
    expect(await refused.closed()).toBe(4401);

    await Promise.all([s0.close(), s1.close()]);
    const [r0] = (await cluster(1, prefix)) as [TestServer];
    const afterRestart = await SignalClient.open(`${r0.wsUrl}/signal?token=${alice}`);
    expect(await afterRestart.closedWithin()).toEqual({ code: 4401, reason: 'token revoked' });
    await (await signal(r0, bob)).roundTrip();
  });

  it('delete closes the room\'s sockets on both instances with 4410, empties PostgreSQL, and the next client starts empty', async () => {
    const prefix = `test-${randomBytes(5).toString('hex')}:`;
    const [s0, s1] = (await cluster(2, prefix)) as [TestServer, TestServer];
    const room = 'acme-conversation-delete';
    const token = await testToken('carol', ['acme-*']); // alice is revoked in this schema by the test above
    const a = client(s0, room, token);
    const b = client(s1, room, token);
    await Promise.all([synced(a.p), synced(b.p)]);
    a.doc.getText('text').insert(0, 'to be deleted');
    await docUntil(b.doc, () => textOf(b.doc) === 'to be deleted');
    const rows = (table: string) =>
      withPg(async (c) => Number((await c.query(`SELECT count(*) AS n FROM "${schema}".${table} WHERE room = $1`, [room])).rows[0].n));
    const stored = async () => [await rows('relay_updates'), await rows('relay_snapshots'), await rows('relay_rooms')];
    await s0.app.relayRooms.drain(); // committed
    expect((await stored())[0]).toBeGreaterThan(0);
    expect((await admin(s1, 'GET', `/admin/rooms/${room}`))).toMatchObject({ room, entries: 1, connections: 2 });

    const closes = Promise.all([a, b].map((c) => firstCloseCode(c)));
    expect(await admin(s1, 'DELETE', `/admin/rooms/${room}`)).toEqual({ deleted: true, closed: 2, instances: 2 });
    expect(await closes).toEqual([4410, 4410]);
    // relay_rooms keeps the room's row, in its next generation (relay/persistence/postgres.ts purgeRoom)
    expect(await stored()).toEqual([0, 0, 1]);
    const generation = await withPg(async (c) => (await c.query(`SELECT generation, appended FROM "${schema}".relay_rooms WHERE room = $1`, [room])).rows[0]);
    expect(generation).toEqual({ generation: '1', appended: '0' });

    const fresh = client(s0, room, token);
    await synced(fresh.p);
    expect(textOf(fresh.doc)).toBe('');
  });
});

describe('admin room figures on two instances', () => {
  it('connections are summed over the instances, in the list and for one room, stored or not', async () => {
    const prefix = `test-${randomBytes(5).toString('hex')}:`;
    const [s0, s1] = (await cluster(2, prefix)) as [TestServer, TestServer];
    const token = await testToken('dave', ['acme-*']);
    const room = 'acme-conversation-figures';
    const a = client(s0, room, token);
    const b = client(s1, room, token);
    const c = client(s1, room, token);
    await Promise.all([synced(a.p), synced(b.p), synced(c.p)]);
    a.doc.getText('text').insert(0, 'counted');
    await docUntil(c.doc, () => textOf(c.doc) === 'counted');
    await s0.app.relayRooms.drain();
    // Connected on the other instance only, nothing stored: still found.
    const quiet = 'acme-conversation-figures-quiet';
    await relay(s1, quiet, token);

    for (const s of [s0, s1]) {
      expect(await admin(s, 'GET', `/admin/rooms/${room}`)).toMatchObject({ room, connections: 3 });
      expect(await admin(s, 'GET', `/admin/rooms/${quiet}`)).toMatchObject({ room: quiet, entries: 0, connections: 1 });
      const list = (await admin(s, 'GET', `/admin/rooms?prefix=${room}`)) as { rooms: Array<{ room: string; connections: number }> };
      expect(list.rooms.find((r) => r.room === room)).toMatchObject({ connections: 3 });
    }
  });
});

