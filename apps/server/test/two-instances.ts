/**
 * Two server instances on one PostgreSQL schema and one Redis, the second one's Redis through a
 * TcpProxy whose cable a test cuts and mends: how the cluster tests make an instance miss a
 * Redis message (a delete, a commit notice) and then hear from Redis again.
 */
import { randomBytes } from 'node:crypto';
import * as Y from 'yjs';
import { expect } from 'vitest';
import { docUntil, textOf, type StockClient } from '../../../test/fixtures/relay-clients.js';
import { TcpProxy } from '../../../test/fixtures/scale-proxy.js';
import { startServer, TEST_SECRET, testToken, type TestServer } from '../../../test/helpers/server.js';
import { urlWithSchema } from './postgres-helpers.js';

const REDIS_URL = new URL(process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379');

export interface Cluster {
  a: TestServer;
  /** on Redis through a proxy whose cable `cutB` cuts and `mendB` mends */
  b: TestServer;
  /** a token of sub alice for rooms acme-* */
  token: string;
  cutB(): Promise<void>;
  mendB(): Promise<void>;
}

export interface ClusterOptions {
  schema: string;
  adminToken: string;
  /** settings of both instances, over the defaults */
  env?: Record<string, string>;
  /** settings of B alone */
  bEnv?: Record<string, string>;
  /** run before the instances close (whether `body` passed or not): close clients, release held calls */
  beforeClose?: () => Promise<void> | void;
}

/** Starts A and B, runs `body`, then closes everything (B's cable mended first: its shutdown says goodbye to Redis). */
export async function withCluster(opts: ClusterOptions, body: (cluster: Cluster) => Promise<void>): Promise<void> {
  const proxy = new TcpProxy(() => [Number(REDIS_URL.port || 6379)]);
  const proxyPort = await proxy.listen();
  const common = {
    AUTH_SECRET: TEST_SECRET,
    ADMIN_TOKEN: opts.adminToken,
    STORAGE: 'postgres',
    DATABASE_URL: urlWithSchema(opts.schema),
    REDIS_PREFIX: `test-${randomBytes(5).toString('hex')}:`,
    PERSIST_FLUSH_MS: '20',
    ...opts.env,
  };
  const servers: TestServer[] = [];
  let cut = false;
  try {
    servers.push(await startServer({ ...common, REDIS_URL: REDIS_URL.href }));
    servers.push(await startServer({ ...common, ...opts.bEnv, REDIS_URL: `redis://${REDIS_URL.hostname}:${proxyPort}` }));
    const [a, b] = servers as [TestServer, TestServer];
    await body({
      a,
      b,
      token: await testToken('alice', ['acme-*']),
      cutB: async () => {
        await proxy.cut();
        cut = true;
      },
      mendB: async () => {
        await proxy.restore();
        cut = false;
      },
    });
  } finally {
    await opts.beforeClose?.();
    if (cut) await proxy.restore();
    await Promise.all(servers.map((s) => s.close()));
    await proxy.close();
  }
}

/** The admin delete of `room`, made on `server`; expects it answered 200. */
export async function deleteRoomOn(server: TestServer, room: string, adminToken: string): Promise<void> {
  const del = await fetch(`${server.url}/admin/rooms/${room}`, { method: 'DELETE', headers: { authorization: `Bearer ${adminToken}` } });
  expect(del.status).toBe(200);
}

/**
 * `writer` types `text` at the end of its text `name`; resolves once `witness` (another client of
 * the same instance) has it: the server accepted it.
 */
export async function write(writer: StockClient, witness: StockClient, text: string, name = 'text'): Promise<void> {
  writer.doc.getText(name).insert(textOf(writer.doc, name).length, text);
  await docUntil(witness.doc, () => textOf(witness.doc, name).includes(text), 10_000, `"${text}" on the witness`);
}

/**
 * The room's text `name` as relay storage holds it (snapshot and log); throws when something
 * stored cannot apply (an update of the deleted room building on its content).
 */
export async function storedText(server: TestServer, room: string, name = 'text'): Promise<string> {
  const stored = await server.app.relayRooms.store.load(room);
  const doc = new Y.Doc();
  try {
    for (const u of stored.snapshot ? [stored.snapshot, ...stored.updates] : stored.updates) Y.applyUpdate(doc, u);
    if (doc.store.pendingStructs || doc.store.pendingDs) throw new Error('stored updates that do not apply');
    return textOf(doc, name);
  } finally {
    doc.destroy();
  }
}

/** sync_storage_errors_total{op} on `server` */
export async function storageErrors(server: TestServer, op: string): Promise<number> {
  const { values } = await server.app.sync.metrics.storageErrors.get();
  return values.filter((v) => v.labels['op'] === op).reduce((n, v) => n + v.value, 0);
}
