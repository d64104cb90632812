/**
 * The status page on two instances sharing Redis and PostgreSQL: each lists both instances with
 * their own figures and the totals summed (the shared database's size counted once, and
 * growing after writes); an instance that shuts down leaves the list.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startServers, type TestServer } from '../../../test/helpers/server.js';
import { stockClient, synced, type StockClient } from '../../../test/fixtures/relay-clients.js';
import { RawSealed } from '../../../test/fixtures/sealed-raw.js';
import type { StatusSnapshot } from '../src/status/snapshot.js';
import { RawClient as SignalClient } from './signaling-client.js';
import { schemaForThisFile, urlWithSchema } from './postgres-helpers.js';

const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const METRICS_TOKEN = 'status-cluster-token-for-tests';
const schema = schemaForThisFile('status');
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function status(server: TestServer): Promise<StatusSnapshot> {
  const res = await fetch(`${server.url}/status.json`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as StatusSnapshot;
}

async function statusUntil(server: TestServer, check: (s: StatusSnapshot) => boolean, what: string, ms = 15_000): Promise<StatusSnapshot> {
  const end = Date.now() + ms;
  for (;;) {
    const s = await status(server);
    if (check(s)) return s;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last status: ${JSON.stringify({ totals: s.totals, instances: s.instances.map((i) => i.id) })}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function relayClient(server: TestServer, room: string): StockClient {
  const c = stockClient(3, server.wsUrl, room);
  cleanups.push(() => c.destroy());
  return c;
}

describe('status on two instances (Redis + PostgreSQL)', () => {
  it('lists both instances with their own figures, sums the totals, and drops an instance that stops', async () => {
    const servers = await startServers(2, {
      STORAGE: 'postgres',
      DATABASE_URL: urlWithSchema(schema),
      REDIS_URL,
      REDIS_PREFIX: `test-${randomBytes(5).toString('hex')}:`,
      METRICS_TOKEN,
      PERSIST_FLUSH_MS: '20',
    });
    cleanups.push(() => Promise.all(servers.map((s) => s.close())));
    const [s0, s1] = servers as [TestServer, TestServer];

    const clients = [
      relayClient(s0, 'acme-conversation-status-a'),
      relayClient(s0, 'acme-conversation-status-a'),
      relayClient(s1, 'acme-conversation-status-a'),
      relayClient(s1, 'acme-conversation-status-b'),
    ];
    await Promise.all(clients.map((c) => synced(c.p)));
    clients[0]?.doc.getText('text').insert(0, 'written on the first instance');
    const peer = await SignalClient.open(`${s1.wsUrl}/signal`);
    cleanups.push(() => peer.close());
    peer.send({ type: 'subscribe', topics: ['acme-conversation-status-peer'] });
    await peer.roundTrip();
    const sealed = await RawSealed.connect(s0.wsUrl, '/sealed/acme-conversation-status-sealed');
    cleanups.push(() => sealed.ws.close());
    sealed.hello(0);
    await sealed.next('caught-up');

    const counted = (s: StatusSnapshot): boolean =>
      s.instances.length === 2 && s.totals.endpoints.relay.connections === 4 && s.totals.endpoints.signal.connections === 1 && s.totals.endpoints.sealed.connections === 1 && s.totals.commit.count > 0 && s.instances.every((i) => (i.storage.bytes ?? 0) > 0);
    const v0 = await statusUntil(s0, counted, 'both instances on the first');
    const v1 = await statusUntil(s1, counted, 'both instances on the second');

    expect(v0.instance).not.toBe(v1.instance);
    expect(v0.instances.map((i) => i.id).sort()).toEqual([v0.instance, v1.instance].sort());
    expect(v1.instances.map((i) => i.id).sort()).toEqual([v0.instance, v1.instance].sort());
    expect(v0.complete && v1.complete).toBe(true);

    const row = (s: StatusSnapshot, id: string) => s.instances.find((i) => i.id === id);
    expect(row(v0, v0.instance)?.endpoints).toEqual({
      relay: { rooms: 1, connections: 2 },
      signal: { rooms: 0, connections: 0 },
      sealed: { rooms: 1, connections: 1 },
    });
    expect(row(v0, v1.instance)?.endpoints).toEqual({
      relay: { rooms: 2, connections: 2 },
      signal: { rooms: 1, connections: 1 },
      sealed: { rooms: 0, connections: 0 },
    });
    // Summed: a room open on both instances counts once per instance.
    expect(v0.totals.endpoints).toEqual({
      relay: { rooms: 3, connections: 4 },
      signal: { rooms: 1, connections: 1 },
      sealed: { rooms: 1, connections: 1 },
    });
    expect(v0.totals.instances).toBe(2);
    // The commit happened on the first instance; the totals hold it whichever instance answers.
    expect(row(v1, v0.instance)?.commit.count).toBeGreaterThan(0);
    expect(v1.totals.commit.p99Ms).toBeGreaterThan(0);

    // One PostgreSQL database: both report its size, the total takes it once.
    for (const v of [v0, v1]) {
      const sizes = v.instances.map((i) => i.storage.bytes as number);
      expect(v.totals.storage).toMatchObject({ engine: 'postgres', shared: true, bytes: Math.max(...sizes) });
      expect(v.totals.storage.bytes).toBeLessThan(sizes[0]! + sizes[1]!);
    }

    // 256 kB of text that does not compress (TOAST would): the database grows, seen from both.
    const before = v0.totals.storage.bytes as number;
    const text = clients[0]?.doc.getText('text');
    for (let i = 0; i < 64; i++) text?.insert(0, randomBytes(2048).toString('hex'));
    for (const s of [s0, s1]) await statusUntil(s, (x) => (x.totals.storage.bytes ?? 0) >= before + 128 * 1024, 'the PostgreSQL size to grow', 20_000);

    await s1.close();
    const alone = await statusUntil(s0, (s) => s.instances.length === 1, 'the stopped instance to leave', 5000);
    expect(alone.instances[0]?.id).toBe(v0.instance);
    expect(alone.totals.endpoints.relay.connections).toBe(2);
  });
});
