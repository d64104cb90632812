/**
 * Several server processes on the real Redis and PostgreSQL behind a round-robin TCP load
 * balancer: stock y-websocket clients spread over three instances converge; kill -9 of one
 * instance during a write storm loses nothing (its clients reconnect to the others); and
 * REDIS_URL without STORAGE=postgres refuses to start.
 */
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { testRedisUrl } from './helpers/test-env.js';
import { PostgresStore } from '../apps/server/src/relay/persistence/postgres.js';
import { PG_URL, urlWithSchema, schemaForThisFile } from '../apps/server/test/postgres-helpers.js';
import { docUntil, logClient, metric, startWriteStorm, synced, type LogClient } from './fixtures/relay-clients.js';
import { freePort } from './helpers/process.js';
import { killIfRunning, startServerProcess, stopProcess, storedLog, type ServerProcess } from './fixtures/relay-process.js';
import { TcpProxy } from './fixtures/scale-proxy.js';

const REDIS_URL = testRedisUrl();
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const schema = schemaForThisFile('cluster');
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function env(prefix: string): Record<string, string> {
  return {
    STORAGE: 'postgres',
    DATABASE_URL: urlWithSchema(schema),
    REDIS_URL,
    REDIS_PREFIX: prefix,
    PERSIST_FLUSH_MS: '50',
    MAX_MESSAGES_PER_SECOND: '2000',
    ROOM_IDLE_MS: '500',
  };
}

async function instances(n: number, prefix: string): Promise<ServerProcess[]> {
  const list: ServerProcess[] = [];
  for (let i = 0; i < n; i++) {
    const p = await startServerProcess(await freePort(), env(prefix));
    cleanup.push(() => killIfRunning(p));
    list.push(p);
  }
  return list;
}

async function balancer(servers: ServerProcess[]): Promise<string> {
  const lb = new TcpProxy(() => servers.map((s) => s.port));
  cleanup.push(() => lb.close());
  return `ws://127.0.0.1:${await lb.listen()}`;
}

function client(wsUrl: string, room: string, version: 2 | 3): LogClient {
  const c = logClient(version, wsUrl, room);
  cleanup.push(() => c.destroy());
  return c;
}

const stored = (room: string): Promise<string[]> => storedLog(new PostgresStore(PG_URL, { schema }), room);
const prefix = (): string => `test-${randomBytes(5).toString('hex')}:`;

/** Three instances behind the balancer, six synced stock clients (2.x and 3.x) in a fresh room through it. */
async function clusterWithClients(): Promise<{ servers: ServerProcess[]; clients: LogClient[]; room: string }> {
  const servers = await instances(3, prefix());
  const lb = await balancer(servers);
  const room = `acme-conversation-${randomBytes(6).toString('hex')}`;
  const clients = Array.from({ length: 6 }, (_, i) => client(lb, room, i % 2 ? 2 : 3));
  await Promise.all(clients.map((c) => synced(c.p)));
  return { servers, clients, room };
}

describe('three instances behind a load balancer', () => {
  it('stock clients spread over three instances converge', async () => {
    const { servers, clients, room } = await clusterWithClients();
    // Round robin put two clients on each instance.
    for (const s of servers) expect(await metric(s.url, 'sync_relay_connections')).toBe(2);
    clients.forEach((c, i) => {
      for (let n = 0; n < 20; n++) c.list.push([`${i}:${n}`]);
    });
    for (const c of clients) await docUntil(c.doc, () => c.list.length === 120, 15_000, 'all 120 entries');
    const reference = JSON.stringify((clients[0] as LogClient).list.toArray());
    for (const c of clients) expect(JSON.stringify(c.list.toArray())).toBe(reference);
    for (const s of servers) expect(await metric(s.url, 'sync_redis_messages_total', { direction: 'receive' })).toBeGreaterThan(0);
    for (const s of servers) expect(await stopProcess(s, 'SIGTERM')).toBe(0);
    expect((await stored(room)).length).toBe(120);
  });

  it('kill -9 of one instance during a write storm: its clients move to the others and nothing is lost', async () => {
    const { servers, clients, room } = await clusterWithClients();
    const [victim, ...survivors] = servers as [ServerProcess, ...ServerProcess[]];
    // The reader writes nothing and sits on a survivor, past the balancer: every entry it holds
    // came through the servers (the Redis fan-out for the clients on other instances).
    const reader = client((survivors.at(-1) as ServerProcess).wsUrl, room, 3);
    await synced(reader.p);
    const storm = startWriteStorm(clients, 5);
    cleanup.push(() => storm.stop());
    await docUntil(reader.doc, () => reader.list.length >= 300, 20_000, 'storm under way');
    const atKill = storm.counts();
    expect(await stopProcess(victim, 'SIGKILL')).toBe('SIGKILL');
    // Its two clients reconnect through the balancer, which now reaches only the survivors; every
    // client's writes from after the kill reach the reader.
    const wroteAfterKill = (i: number): boolean => reader.list.toArray().some((e) => e.startsWith(`${i}:`) && Number(e.slice(e.indexOf(':') + 1)) >= (atKill[i] ?? 0) + 20);
    await docUntil(reader.doc, () => clients.every((_, i) => wroteAfterKill(i)), 20_000, 'every client writing through the survivors after the kill');
    storm.stop();
    const total = storm.total();
    const expected = storm.expected();
    for (const c of [...clients, reader]) await docUntil(c.doc, () => c.list.length === total, 20_000, `all ${total} writes in every client`);
    for (const c of clients) expect(new Set(c.list.toArray())).toEqual(expected);
    let connections = 0;
    for (const s of survivors) connections += await metric(s.url, 'sync_relay_connections');
    expect(connections).toBe(7); // the six clients and the reader
    for (const s of survivors) expect(await stopProcess(s, 'SIGTERM')).toBe(0);
    const inStorage = await stored(room);
    expect(inStorage.length).toBe(total);
    expect(new Set(inStorage)).toEqual(expected);
  });

  it('REDIS_URL with STORAGE other than postgres refuses to start, naming the fix', () => {
    for (const storage of ['sqlite', 'memory']) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', 'apps/server/src/main.ts'], {
        cwd: ROOT,
        env: { PATH: process.env['PATH'] ?? '', STORAGE: storage, REDIS_URL, PORT: '0' },
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(r.status).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/REDIS_URL: .*STORAGE=postgres/);
    }
  });
});
