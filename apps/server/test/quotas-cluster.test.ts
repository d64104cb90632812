/**
 * MAX_NEW_ROOMS_PER_SUB_PER_HOUR across two instances (Redis + PostgreSQL): one sub creating rooms
 * alternately on both is refused (4429) at the configured total, not at twice it; the same room
 * again and other subs still open. When Redis fails, the instance counts on its own (and warns).
 * ROOM_MAX_BYTES on two instances: what the other instance committed counts here too, so a
 * writer on each cannot store twice the quota; an update that fits is still taken.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { createLogger, createServerMetrics } from '@sync-suite/shared/node';
import { RedisLink } from '../src/fanout/redis-link.js';
import { redisKeys } from '../src/fanout/redis-keys.js';
import { RedisNewRoomQuota } from '../src/limits/new-rooms.js';
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { encodeRelayMessage, writeRelayUpdate } from '@sync-suite/shared';
import { startServer, startServers, TEST_SECRET, testToken, type TestServer } from '../../../test/helpers/server.js';
import { RawClient, metric } from '../../../test/fixtures/relay-clients.js';
import { fakeEnvelope, RawSealed } from '../../../test/fixtures/sealed-raw.js';
import { sealedRegistry } from '../src/routes/sealed/index.js';
import { SEALED_ROW_OVERHEAD_BYTES } from '../src/sealed/store/types.js';
import { urlWithSchema, schemaForThisFile } from './postgres-helpers.js';

const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const schema = schemaForThisFile('quota');
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function open(server: TestServer, room: string, token: string): Promise<RawClient> {
  const c = await RawClient.connect(`${server.wsUrl}/relay/${room}${token ? `?token=${token}` : ''}`);
  cleanup.push(() => c.close());
  return c;
}

/** Two instances on one PostgreSQL schema and Redis (a prefix of their own), closed after the test. */
async function twoInstances(env: Record<string, string>): Promise<[TestServer, TestServer]> {
  const servers = await startServers(2, { STORAGE: 'postgres', DATABASE_URL: urlWithSchema(schema), REDIS_URL, REDIS_PREFIX: `test-${randomBytes(5).toString('hex')}:`, ...env });
  cleanup.push(() => Promise.all(servers.map((s) => s.close())));
  return servers as [TestServer, TestServer];
}

const ready = (c: RawClient) => c.next((m) => m.type === 'sync-step1', 5000, 'sync step 1');

describe('MAX_NEW_ROOMS_PER_SUB_PER_HOUR on two instances', () => {
  it('counts one sub\'s new rooms across the instances (Redis)', async () => {
    const [s0, s1] = await twoInstances({ AUTH_SECRET: TEST_SECRET, MAX_NEW_ROOMS_PER_SUB_PER_HOUR: '3' });
    const [alice, bob] = [await testToken('alice', ['acme-*']), await testToken('bob', ['acme-*'])];

    await ready(await open(s0, 'acme-conversation-q1', alice));
    await ready(await open(s1, 'acme-conversation-q2', alice));
    await ready(await open(s0, 'acme-conversation-q3', alice));
    const fourth = await open(s1, 'acme-conversation-q4', alice);
    expect(await fourth.closed()).toBe(4429);
    expect(await metric(s1.url, 'sync_quota_refusals_total', { quota: 'new_rooms' })).toBe(1);

    await ready(await open(s1, 'acme-conversation-q1', alice)); // counted on s0 already: not twice
    await ready(await open(s1, 'acme-conversation-q4', bob)); // another sub
    const again = await open(s0, 'acme-conversation-q5', alice);
    expect(await again.closed()).toBe(4429);
  });
});

/** An update message inserting `bytes` characters into a fresh document (a client id of its own). */
function updateOf(bytes: number): Uint8Array {
  const d = new Y.Doc();
  d.getText('t').insert(0, 'x'.repeat(bytes));
  return encodeRelayMessage((e) => writeRelayUpdate(e, Y.encodeStateAsUpdate(d)));
}

describe('ROOM_MAX_BYTES on two instances', () => {
  it("counts what the other instance committed: a writer on each is refused (4507) at the quota, not at twice it", async () => {
    const [s0, s1] = await twoInstances({ ROOM_MAX_BYTES: '3000', PERSIST_FLUSH_MS: '20' });
    const room = 'acme-conversation-qbytes';
    const [w0, w1] = [await open(s0, room, ''), await open(s1, room, '')];
    await Promise.all([ready(w0), ready(w1)]);

    w0.send(updateOf(1800)); // stored through s0, within the quota
    await w1.updatesHeard(1); // s1 has it (over Redis, once committed)
    w1.send(updateOf(1800)); // 1800 + 1800 stored would pass 3000
    expect(await w1.closed()).toBe(4507);
    expect(await metric(s1.url, 'sync_quota_refusals_total', { quota: 'room_bytes' })).toBe(1);
    const stat = await s1.app.relayRooms.store.statRoom(room);
    expect(stat?.bytes).toBeGreaterThan(1800);
    expect(stat?.bytes).toBeLessThanOrEqual(3000);

    // What still fits is taken on either instance (counted once, not twice).
    const w2 = await open(s1, room, '');
    await ready(w2);
    w2.send(updateOf(500));
    await w2.handled();
    await w0.updatesHeard(1);
    expect(w2.closeCode).toBeNull();
    expect(w0.closeCode).toBeNull();
    expect((await s0.app.relayRooms.store.statRoom(room))?.bytes).toBeLessThanOrEqual(3000);
  });

  it("does not refuse an honest room that another instance's compaction keeps small: its size is read from storage again", async () => {
    const [s0, s1] = await twoInstances({ ROOM_MAX_BYTES: '4000', COMPACT_AFTER_UPDATES: '5', PERSIST_FLUSH_MS: '20' });
    const room = 'acme-conversation-qcompact';
    const [w0, w1] = [await open(s0, room, ''), await open(s1, room, '')];
    await Promise.all([ready(w0), ready(w1)]);

    // w0 rewrites its 300 characters 20 times (about 6 KB of updates); s0 compacts every 5 commits.
    const doc = new Y.Doc();
    const text = doc.getText('t');
    let sent = 0;
    for (let i = 0; i < 20; i++) {
      const before = Y.encodeStateVector(doc);
      doc.transact(() => {
        text.delete(0, text.length);
        text.insert(0, String.fromCharCode(97 + (i % 26)).repeat(300));
      });
      const update = Y.encodeStateAsUpdate(doc, before);
      sent += update.length;
      w0.send(encodeRelayMessage((e) => writeRelayUpdate(e, update)));
      await w1.updatesHeard(i + 1); // committed, and heard on s1
    }
    expect(sent).toBeGreaterThan(4000);
    await s0.app.relayRooms.persist.flush();
    expect((await s1.app.relayRooms.store.statRoom(room))?.bytes).toBeLessThan(2000);

    w1.send(updateOf(500)); // fits in what storage holds
    expect(await w1.handled().then(() => 'taken', () => `closed ${w1.closeCode}`)).toBe('taken');
    await w0.updatesHeard(1);
  });
});

describe('ROOM_MAX_BYTES on two instances, sealed', () => {
  it("does not refuse an honest room that snapshots stored through another instance keep small", async () => {
    const common = {
      STORAGE: 'postgres',
      DATABASE_URL: urlWithSchema(schema),
      REDIS_URL,
      REDIS_PREFIX: `test-${randomBytes(5).toString('hex')}:`,
      ROOM_MAX_BYTES: '4000',
      PERSIST_FLUSH_MS: '10',
    };
    const a = await startServer({ ...common, SEALED_SNAPSHOT_AFTER: '4' });
    cleanup.push(() => a.close());
    const b = await startServer({ ...common, SEALED_SNAPSHOT_AFTER: '1000' }); // B asks nobody for a snapshot
    cleanup.push(() => b.close());
    const room = 'acme-conversation-qsealed';
    const device = async (server: TestServer): Promise<RawSealed> => {
      const c = await RawSealed.connect(server.wsUrl, `/sealed/${room}`);
      cleanup.push(() => c.close());
      c.hello(0, 0);
      await c.next('caught-up');
      return c;
    };
    const [alice, bob] = [await device(a), await device(b)];
    const store = sealedRegistry(a.app)?.store;

    // alice sends 12 envelopes of 400 bytes (656 each with the row overhead, 7872 in all) and
    // answers every snapshot request A makes with a 100-byte snapshot: storage stays small.
    let answered = 0;
    for (let id = 1; id <= 12; id++) {
      alice.update(id, fakeEnvelope([id], 400));
      await alice.wait(() => alice.messages.some((m) => m.type === 'ack' && m.id === id), `ack ${id}`);
      const requests = alice.messages.filter((m) => m.type === 'snapshot-request');
      const asked = requests[answered];
      if (asked?.type !== 'snapshot-request') continue;
      answered++;
      alice.snapshot(asked.upTo, fakeEnvelope([0xaa, id], 100));
      for (let i = 0; i < 250 && (await store?.stats(room))?.snapshotCovers !== asked.upTo; i++) await new Promise((r) => setTimeout(r, 20));
    }
    await bob.wait(() => bob.messages.filter((m) => m.type === 'entry').length === 12, 'entries at bob');
    expect(answered).toBeGreaterThan(0);
    const stored = (await store?.stats(room))?.bytes ?? 0;
    expect(stored + 100 + SEALED_ROW_OVERHEAD_BYTES).toBeLessThan(4000);

    bob.update(1, fakeEnvelope([0xbb], 100)); // fits in what storage holds
    const acked = bob.wait(() => bob.messages.some((m) => m.type === 'ack'), 'ack at bob').then(() => 'taken');
    expect(await Promise.race([acked, bob.closed().then((code) => `closed ${code}`)])).toBe('taken');
  });
});

describe('the new-room quota when Redis fails', () => {
  it('falls back to counting on this instance, with one warning', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
        cb();
      },
    });
    const log = createLogger({ level: 'info', destination: sink }) as unknown as FastifyBaseLogger;
    const link = new RedisLink({ url: REDIS_URL, metrics: createServerMetrics(), log });
    await link.connect();
    const quota = new RedisNewRoomQuota({ perHour: 2, link: Promise.resolve(link), keys: redisKeys(`test-${randomBytes(5).toString('hex')}:`), log });
    cleanup.push(() => quota.stop());
    expect(await quota.take('carol', 'r1')).toBe(true); // counted in Redis (and here)
    await link.close(); // Redis gone from now on
    expect(await quota.take('carol', 'r2')).toBe(true);
    expect(await quota.take('carol', 'r3')).toBe(false); // r1 and r2 counted here
    expect(await quota.take('carol', 'r1')).toBe(true); // the same room again
    expect(await quota.take('dan', 'r3')).toBe(true);
    expect(lines.filter((l) => String(l['msg']).startsWith('new-room quota: redis failed'))).toHaveLength(1);
  });
});
