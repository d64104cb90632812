/**
 * Outages with real processes: a private redis-server is killed and restarted mid-session, and
 * PostgreSQL is cut off behind a TCP proxy. /readyz names the failing check while it lasts;
 * afterwards the instances resubscribe, clients converge and every accepted update is stored.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { PostgresStore } from '../apps/server/src/relay/persistence/postgres.js';
import { PG_URL, urlWithSchema, schemaForThisFile } from '../apps/server/test/postgres-helpers.js';
import { startRedis, type Service } from './helpers/services.js';
import { testRedisUrl } from './helpers/test-env.js';
import { withTimeout } from './helpers/timeout.js';
import { docUntil, logClient, metric, synced, type LogClient } from './fixtures/relay-clients.js';
import { freePort } from './helpers/process.js';
import { killIfRunning, startServerProcess, stopProcess, storedLog, type ServerProcess } from './fixtures/relay-process.js';
import { TcpProxy } from './fixtures/scale-proxy.js';
import { fakeEnvelope, RawSealed } from './fixtures/sealed-raw.js';
import { TEST_SECRET, testToken } from './helpers/server.js';

const schema = schemaForThisFile('outage');
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** A private redis-server (the run's shared one stays untouched), stopped when the test ends. */
async function redisServer(port: number): Promise<Service> {
  const redis = await startRedis(port);
  cleanup.push(() => redis.stop());
  return redis;
}

async function instance(extra: Record<string, string>): Promise<ServerProcess> {
  const p = await startServerProcess(await freePort(), {
    STORAGE: 'postgres',
    DATABASE_URL: urlWithSchema(schema),
    PERSIST_FLUSH_MS: '50',
    ROOM_IDLE_MS: '500',
    ...extra,
  });
  cleanup.push(() => killIfRunning(p));
  return p;
}

function client(server: ServerProcess, room: string): LogClient {
  const c = logClient(3, server.wsUrl, room);
  cleanup.push(() => c.destroy());
  return c;
}

interface Ready {
  status: number;
  body: { status: string; checks: Record<string, string> };
}

/** /readyz has no push channel: ask until it answers as expected. */
async function readyz(server: ServerProcess, want: (r: Ready) => boolean, ms = 15_000): Promise<Ready> {
  const deadline = Date.now() + ms;
  for (;;) {
    const res = await fetch(`${server.url}/readyz`);
    const r: Ready = { status: res.status, body: (await res.json()) as Ready['body'] };
    if (want(r)) return r;
    if (Date.now() > deadline) throw new Error(`readyz never matched; last: ${JSON.stringify(r)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const stored = (room: string): Promise<string[]> => storedLog(new PostgresStore(PG_URL, { schema }), room);

const room = (): string => `acme-conversation-${randomBytes(6).toString('hex')}`;
const write = (c: { list: Y.Array<string> }, tag: string, n: number): void => {
  for (let i = 0; i < n; i++) c.list.push([`${tag}:${i}`]);
};

describe('outages', () => {
  it('Redis restarted mid-session: /readyz shows it, instances resubscribe, clients converge', async () => {
    const redisPort = await freePort();
    let redis = await redisServer(redisPort);
    const env = { REDIS_URL: `redis://127.0.0.1:${redisPort}`, REDIS_PREFIX: 'outage:' };
    const [a, b] = [await instance(env), await instance(env)];
    const name = room();
    const onA = client(a, name);
    const onB = client(b, name);
    await Promise.all([synced(onA.p), synced(onB.p)]);
    write(onA, 'a-before', 10);
    await docUntil(onB.doc, () => onB.list.length === 10, 10_000, 'cross-instance before the outage');

    await redis.stop();
    for (const s of [a, b]) {
      const r = await readyz(s, (x) => x.status === 503);
      expect(r.body.checks['redis']).toBe('failed'); // the detail is logged, not shown (health/readiness.ts)
      expect(r.body.checks['storage']).toBe('ok');
    }
    // Each side keeps writing; the relay accepts and commits, but cannot fan out meanwhile.
    write(onA, 'a-during', 15);
    write(onB, 'b-during', 15);
    // Their commits cannot be published: counted as Redis errors.
    await untilMetric(a, 'sync_redis_errors_total');
    await untilMetric(b, 'sync_redis_errors_total');

    redis = await redisServer(redisPort);
    for (const s of [a, b]) await readyz(s, (x) => x.status === 200);
    for (const c of [onA, onB]) await docUntil(c.doc, () => c.list.length === 40, 15_000, 'convergence after the outage');
    expect(new Set(onA.list.toArray())).toEqual(new Set(onB.list.toArray()));
    // And fan-out works again, live.
    write(onB, 'b-after', 5);
    await docUntil(onA.doc, () => onA.list.length === 45, 10_000, 'cross-instance after the outage');
    for (const s of [a, b]) expect(await stopProcess(s, 'SIGTERM')).toBe(0);
    expect((await stored(name)).length).toBe(45);
  });

  it('Redis restarted mid-session, sealed rooms: entries committed during it reach the other instance once it is back', async () => {
    const redisPort = await freePort();
    let redis = await redisServer(redisPort);
    const env = { REDIS_URL: `redis://127.0.0.1:${redisPort}`, REDIS_PREFIX: 'sealed-outage:', AUTH_SECRET: TEST_SECRET };
    const [a, b] = [await instance(env), await instance(env)];
    const name = room();
    const token = await testToken('alice', ['acme-*']);
    const device = async (server: ServerProcess): Promise<RawSealed> => {
      const c = await RawSealed.connect(server.wsUrl, `/sealed/${name}?token=${token}`);
      cleanup.push(() => c.close());
      c.hello(0);
      await c.next('caught-up');
      return c;
    };
    const [onA, onB] = [await device(a), await device(b)];
    const envelope = (n: number): Uint8Array => fakeEnvelope([n, 0xee, n, 0xee]);
    const entries = (c: RawSealed): number => c.messages.filter((m) => m.type === 'entry').length;
    const acks = (c: RawSealed): number => c.messages.filter((m) => m.type === 'ack').length;
    onA.update(1, envelope(1));
    await onB.wait(() => entries(onB) === 1, 'cross-instance entry before the outage', 10_000);

    await redis.stop();
    for (const s of [a, b]) await readyz(s, (x) => x.status === 503);
    for (let i = 2; i <= 4; i++) onA.update(i, envelope(i));
    await onA.wait(() => acks(onA) === 4, 'entries committed during the outage', 10_000);

    redis = await redisServer(redisPort);
    for (const s of [a, b]) await readyz(s, (x) => x.status === 200);
    // Nothing new is written: the other instance reads what it missed because the link came back.
    await onB.wait(() => entries(onB) === 4, 'the missed entries after the outage', 15_000);
    onB.update(1, envelope(5));
    await onA.wait(() => entries(onA) === 1, 'cross-instance entry after the outage', 10_000);
    for (const s of [a, b]) expect(await stopProcess(s, 'SIGTERM')).toBe(0);
  });

  it('PostgreSQL unreachable: /readyz 503, accepted updates are kept and committed when it returns', async () => {
    const pgPort = Number(new URL(PG_URL).port || 5432);
    const cable = new TcpProxy(() => [pgPort]);
    cleanup.push(() => cable.close());
    const proxied = PG_URL.replace(`:${pgPort}/`, `:${await cable.listen()}/`);
    const env = { DATABASE_URL: urlWithSchema(schema, proxied), REDIS_URL: testRedisUrl(), REDIS_PREFIX: `pg-${randomBytes(4).toString('hex')}:` };
    const [a, b] = [await instance(env), await instance(env)];
    const name = room();
    const writer = client(a, name);
    const neighbour = client(a, name);
    const far = client(b, name);
    await Promise.all([writer, neighbour, far].map((c) => synced(c.p)));
    write(writer, 'before', 10);
    await docUntil(far.doc, () => far.list.length === 10, 10_000, 'before the outage');

    await cable.cut();
    const r = await readyz(a, (x) => x.status === 503);
    expect(r.body.checks['storage']).toBe('failed');
    write(writer, 'during', 20);
    // Accepted: clients on the same instance get them at once, while nothing can be committed.
    await docUntil(neighbour.doc, () => neighbour.list.length === 30, 10_000, 'local delivery during the outage');
    await untilMetric(a, 'sync_storage_errors_total'); // a commit failed, and was kept
    // A room not in memory cannot be loaded meanwhile: refused with 1011 (clients retry), not served empty.
    const cold = new WebSocket(`${a.wsUrl}/relay/${room()}`);
    cleanup.push(() => cold.terminate());
    const [code] = (await withTimeout(once(cold, 'close'), 10_000, 'cold room refused')) as [number];
    expect(code).toBe(1011);

    await cable.restore();
    await readyz(a, (x) => x.status === 200);
    // Committed once storage is back, then published to the other instance.
    await docUntil(far.doc, () => far.list.length === 30, 15_000, 'other instance after the outage');
    for (const s of [a, b]) expect(await stopProcess(s, 'SIGTERM')).toBe(0);
    const inStorage = await stored(name);
    expect(inStorage.length).toBe(30);
    expect(new Set(inStorage)).toEqual(new Set(far.list.toArray()));
  });
});

/** Until the metric is above zero (metrics have no push channel either). */
async function untilMetric(server: ServerProcess, name: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while ((await metric(server.url, name)) === 0) {
    if (Date.now() > deadline) throw new Error(`${name} stayed 0`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
