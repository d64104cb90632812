/**
 * Cross-instance WebRTC signaling with stock clients: three in-process servers on the real
 * PostgreSQL (STORAGE=postgres, a schema per run) and Redis (a prefix per run). Two stock
 * y-webrtc peers, each in its own Node process (no BroadcastChannel between them) and each on a
 * DIFFERENT instance's /signal?token=…, find each other through Redis and sync a Y.Text and
 * awareness over a real WebRTC data channel (node-datachannel on 127.0.0.1). A raw observer on
 * the third instance sees only what crossed Redis, and the `clients` count on those publishes.
 *
 * Stock y-websocket clients on different instances syncing through the relay are proven by
 * test/scale-cluster.test.ts (three server processes) and apps/server/test/redis-fanout.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { testRedisUrl } from './helpers/test-env.js';
import { urlWithSchema, schemaForThisFile } from '../apps/server/test/postgres-helpers.js';
import { RawClient, metricValue, publishesReceived } from '../apps/server/test/signaling-client.js';
import { expectSyncedOverWebrtc, killPeers, startPeersInTurn, stopPeers, untilSynced, type PeerProcess } from './e2e/fixtures/signaling-peer-process.js';
import { startServers, TEST_SECRET, testToken, type TestServer } from './helpers/server.js';
import { withTimeout } from './helpers/timeout.js';

const REDIS_URL = testRedisUrl();
const SYNC_MS = 30_000;
/** until the first peer's announce is out: a Node + tsx start-up, slow on a busy machine */
const START_MS = 20_000;
const schema = schemaForThisFile('webrtc');
const prefix = `test-${randomBytes(5).toString('hex')}:`;
const peers: PeerProcess[] = [];
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  killPeers(peers);
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function cluster(n: number): Promise<TestServer[]> {
  const servers = await startServers(n, { AUTH_SECRET: TEST_SECRET, STORAGE: 'postgres', DATABASE_URL: urlWithSchema(schema), REDIS_URL, REDIS_PREFIX: prefix, LOG_LEVEL: 'warn' });
  for (const s of servers) cleanup.push(() => s.close());
  return servers;
}

async function signalUrl(server: TestServer, sub: string, room: string): Promise<string> {
  return `${server.wsUrl}/signal?token=${await testToken(sub, [room])}`;
}

/** phone on A, then desktop on B, observer on C; resolves once both peers synced and exited. */
async function syncAcross([a, b, c]: TestServer[], room: string, password?: string) {
  if (!a || !b || !c) throw new Error('three instances needed');
  const observer = await RawClient.open(await signalUrl(c, 'observer', room));
  cleanup.push(() => observer.close());
  observer.send({ type: 'subscribe', topics: [room] });
  await observer.roundTrip();
  // The desktop starts once the phone's announce has crossed Redis (seen on C): see startPeersInTurn.
  const from = observer.frames.length;
  const phoneAnnounced = () => observer.find(from, (m) => m['type'] === 'publish', START_MS);
  const urls = { phone: await signalUrl(a, 'phone', room), desktop: await signalUrl(b, 'desktop', room) };
  const [phone, desktop] = await startPeersInTurn(peers, room, urls, phoneAnnounced, password);
  const results = await untilSynced([phone, desktop], SYNC_MS);
  // While both are still online: one signaling socket on each instance.
  const connections = await Promise.all([a, b, c].map((s) => metricValue(s, 'signalingConnections')));
  const codes = await withTimeout(stopPeers([phone, desktop]), 10_000, 'peers exit');
  const relayed = publishesReceived(observer);
  return { results, codes, connections, relayed };
}

/** What must hold however the peers signal: each instance carried its own part, C only through Redis. */
async function expectCrossInstance([a, b, c]: TestServer[], relayed: Array<Record<string, unknown>>) {
  if (!a || !b || !c) throw new Error('three instances needed');
  // The observer never published: every publish it received came from A or B through Redis.
  expect(await metricValue(c, 'signalingMessages', { type: 'publish' })).toBe(0);
  expect(await metricValue(a, 'signalingMessages', { type: 'publish' })).toBeGreaterThan(0);
  expect(await metricValue(b, 'signalingMessages', { type: 'publish' })).toBeGreaterThan(0);
  for (const s of [a, b]) expect(await metricValue(s, 'redisMessages', { direction: 'publish' })).toBeGreaterThan(0);
  for (const s of [a, b, c]) expect(await metricValue(s, 'redisMessages', { direction: 'receive' })).toBeGreaterThan(0);
  for (const s of [a, b, c]) expect(await metricValue(s, 'authFailures')).toBe(0);
  // `clients` counts the subscribers of all three instances (observer, phone, desktop) once
  // the counts have been announced, and never more.
  const counts = relayed.map((m) => m['clients']);
  expect(counts.length).toBeGreaterThan(2);
  expect(counts).toContain(3);
  for (const n of counts) expect([1, 2, 3]).toContain(n);
}

describe('stock y-webrtc peers on different instances (Redis fan-out, PostgreSQL storage)', () => {
  it('find each other through Redis and sync a Y.Text and awareness over WebRTC', async () => {
    const servers = await cluster(3);
    const room = `acme-conversation-${randomBytes(6).toString('hex')}`;
    const { results, codes, connections, relayed } = await syncAcross(servers, room);
    expectSyncedOverWebrtc(results);
    expect(codes).toEqual([0, 0]);
    expect(connections).toEqual([1, 1, 1]);
    await expectCrossInstance(servers, relayed);
    // Both announces and the SDP exchange crossed instances; the document never went through signaling.
    const announcers = new Set(relayed.map((m) => m['data'] as { type?: string; from?: string }).filter((d) => d.type === 'announce').map((d) => d.from));
    expect(announcers.size).toBe(2);
    expect(relayed.some((m) => JSON.stringify(m).includes('"sdp"'))).toBe(true);
    expect(JSON.stringify(relayed)).not.toContain('hello from');
  });

  it('with a room password: the same across instances, and Redis carries only ciphertext', async () => {
    const servers = await cluster(3);
    const room = `acme-conversation-${randomBytes(6).toString('hex')}`;
    const { results, codes, connections, relayed } = await syncAcross(servers, room, 'correct horse battery staple');
    expectSyncedOverWebrtc(results);
    expect(codes).toEqual([0, 0]);
    expect(connections).toEqual([1, 1, 1]);
    await expectCrossInstance(servers, relayed);
    for (const m of relayed) {
      expect(typeof m['data']).toBe('string');
      // Base64 ciphertext may hold "sdp" by chance (it did once in CI): look for the plaintext's
      // own markers in the decoded bytes, and for any marker in the rest of the message.
      expect(Buffer.from(m['data'] as string, 'base64').toString('latin1')).not.toMatch(/"announce"|"sdp"|candidate:|hello from/);
      expect(JSON.stringify({ ...m, data: '' })).not.toMatch(/announce|sdp|candidate|hello from/);
    }
  });
});
