/**
 * Webhooks against a local receiver: one signed room.changed event per change burst even with
 * two instances committing the same burst (Redis + PostgreSQL), room.deleted after an admin
 * delete, and an event for a receiver that was down arrives once it is back (retried). Events
 * are kept in storage (the outbox): one queued while the receiver was down, or still in its
 * debounce when the instance stopped, is sent exactly once after a restart (SQLite; PostgreSQL
 * with two instances restarting). The outbox drops its oldest event past WEBHOOK_QUEUE_SIZE, and
 * a request the receiver never answers does not hold a shutdown.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer, startServers, type TestServer } from '../../../test/helpers/server.js';
import { freePort } from '../../../test/helpers/process.js';
import { listenLocal } from '../../../test/helpers/http-listen.js';
import { untilCount, eventually } from '../../../test/helpers/timeout.js';
import { docUntil, stockClient, synced, textOf, type StockClient } from '../../../test/fixtures/relay-clients.js';
import { metricValue } from './signaling-client.js';
import { urlWithSchema, schemaForThisFile, withPg } from './postgres-helpers.js';

const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const SECRET = 'webhook-secret-for-the-tests-0123';
const schema = schemaForThisFile('hooks');
/** The outbox tests' own: the tests above leave events of their last bursts in theirs. */
const outboxSchema = schemaForThisFile('outbox');
const hangSchema = schemaForThisFile('hang');
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

interface Received {
  body: string;
  signature: string | undefined;
}

/** A webhook receiver on `port` that records each POST and answers 204. */
class Receiver {
  readonly events: Received[] = [];
  private readonly server: Server;
  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.events.push({ body: Buffer.concat(chunks).toString(), signature: req.headers['x-sync-signature'] as string | undefined });
        res.writeHead(204).end();
        this.server.emit('event');
      });
    });
  }

  async listen(port: number): Promise<void> {
    cleanup.push((await listenLocal(this.server, port)).close);
  }

  /** Waits for `n` events in all. */
  async received(n: number, ms = 10_000): Promise<Array<Record<string, unknown>>> {
    await untilCount(this.server, 'event', () => this.events.length, n, ms, `${n} webhook events`);
    return this.events.map((e) => {
      // Every event is signed over its raw body.
      expect(e.signature).toBe(`sha256=${createHmac('sha256', SECRET).update(e.body).digest('hex')}`);
      return JSON.parse(e.body) as Record<string, unknown>;
    });
  }
}

function client(server: TestServer, room: string): StockClient {
  const c = stockClient(3, server.wsUrl, room);
  cleanup.push(() => c.destroy());
  return c;
}

describe('webhooks', () => {
  it('two instances committing one burst send exactly one signed room.changed; a delete sends room.deleted', async () => {
    const receiver = new Receiver();
    const port = await freePort();
    await receiver.listen(port);
    const servers = await startServers(2, {
      STORAGE: 'postgres',
      DATABASE_URL: urlWithSchema(schema),
      REDIS_URL,
      REDIS_PREFIX: `test-${randomBytes(5).toString('hex')}:`,
      WEBHOOK_URL: `http://127.0.0.1:${port}/hook`,
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_DEBOUNCE_MS: '300',
      ADMIN_TOKEN: 'admin-token-for-the-webhook-tests',
      PERSIST_FLUSH_MS: '10',
    });
    cleanup.push(() => Promise.all(servers.map((s) => s.close())));
    const [s0, s1] = servers as [TestServer, TestServer];
    const room = 'acme-conversation-hooks';
    const [a, b] = [client(s0, room), client(s1, room)];
    await Promise.all([synced(a.p), synced(b.p)]);
    for (let i = 0; i < 5; i++) {
      a.doc.getText('text').insert(0, 'a');
      b.doc.getText('text').insert(0, 'b');
    }
    await docUntil(a.doc, () => textOf(a.doc).length === 10);

    const [event] = await receiver.received(1);
    expect(event).toMatchObject({ type: 'room.changed', room, updates: expect.any(Number) as number, at: expect.any(Number) as number });
    // Both instances emitted the burst: one sent it, the other stood down.
    const settled = async () => {
      let sent = 0;
      let deduplicated = 0;
      for (const s of servers) {
        sent += await metricValue(s, 'webhookDeliveries', { result: 'ok' });
        deduplicated += await metricValue(s, 'webhookDeliveries', { result: 'deduplicated' });
      }
      return sent === 1 && deduplicated === 1;
    };
    await eventually(settled, 10_000, 'one delivery and one deduplicated burst');
    expect(receiver.events).toHaveLength(1);
    expect(JSON.stringify(event)).not.toContain('aaaaa'); // no content

    const res = await fetch(`${s1.url}/admin/rooms/${room}`, { method: 'DELETE', headers: { authorization: 'Bearer admin-token-for-the-webhook-tests' } });
    expect(res.status).toBe(200);
    const events = await receiver.received(2);
    expect(events[1]).toMatchObject({ type: 'room.deleted', room });
  });

  it('retries with back-off: a receiver that was down gets the event once it is back', async () => {
    const port = await freePort(); // nothing listens here yet
    const server = await startServer({ WEBHOOK_URL: `http://127.0.0.1:${port}/hook`, WEBHOOK_SECRET: SECRET, WEBHOOK_DEBOUNCE_MS: '100', PERSIST_FLUSH_MS: '10' });
    cleanup.push(() => server.close());
    const c = client(server, 'acme-conversation-down');
    await synced(c.p);
    c.doc.getText('text').insert(0, 'hello');
    await eventually(async () => (await metricValue(server, 'webhookDeliveries', { result: 'retry' })) >= 1, 10_000, 'a failed attempt');
    expect(await metricValue(server, 'webhookBacklog')).toBe(1);

    const receiver = new Receiver();
    await receiver.listen(port);
    const [event] = await receiver.received(1, 15_000);
    expect(event).toMatchObject({ type: 'room.changed', room: 'acme-conversation-down', updates: 1 });
    await eventually(async () => (await metricValue(server, 'webhookBacklog')) === 0, 5000, 'an empty backlog');
  });
});

describe('webhook outbox: events survive a restart', () => {
  /** Storage that outlives a server: a SQLite directory, or a PostgreSQL schema. */
  function storage(engine: 'sqlite' | 'postgres'): Record<string, string> {
    if (engine === 'postgres') return { STORAGE: 'postgres', DATABASE_URL: urlWithSchema(outboxSchema) };
    const dir = mkdtempSync(join(tmpdir(), 'webhook-outbox-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    return { STORAGE: 'sqlite', DATA_DIR: dir };
  }

  async function outboxRows(engine: 'sqlite' | 'postgres'): Promise<number | null> {
    if (engine === 'sqlite') return null; // the file is the server's; what it sends after the restart says enough
    return withPg(async (c) => Number((await c.query(`SELECT count(*) AS n FROM "${outboxSchema}".webhook_outbox`)).rows[0].n));
  }

  for (const engine of ['sqlite', 'postgres'] as const) {
    it(`${engine}: receiver down, event queued, instance stopped; receiver up, restarted: delivered exactly once, signed`, async () => {
      const port = await freePort(); // nothing listens here yet
      const env = { ...storage(engine), WEBHOOK_URL: `http://127.0.0.1:${port}/hook`, WEBHOOK_SECRET: SECRET, WEBHOOK_DEBOUNCE_MS: '100', PERSIST_FLUSH_MS: '10' };
      const room = `acme-conversation-outbox-${engine}`;
      const first = await startServer(env);
      cleanup.push(() => first.close());
      const c = client(first, room);
      await synced(c.p);
      c.doc.getText('text').insert(0, 'hello');
      await eventually(async () => (await metricValue(first, 'webhookDeliveries', { result: 'retry' })) >= 1, 10_000, 'a failed attempt');
      c.destroy();
      await first.close();
      if (engine === "postgres") expect(await outboxRows(engine)).toBe(1);

      const receiver = new Receiver();
      await receiver.listen(port);
      // On PostgreSQL two instances come back: the claim lets one of them send it.
      const servers = await startServers(engine === 'postgres' ? 2 : 1, env);
      cleanup.push(() => Promise.all(servers.map((s) => s.close())));
      const [event] = await receiver.received(1, 15_000);
      expect(event).toMatchObject({ type: 'room.changed', room, updates: 1 });
      const delivered = async () => {
        let ok = 0;
        for (const s of servers) ok += await metricValue(s, 'webhookDeliveries', { result: 'ok' });
        return ok;
      };
      await eventually(async () => (await delivered()) === 1, 5000, 'one delivery recorded');
      for (const s of servers) await eventually(async () => (await metricValue(s, 'webhookBacklog')) === 0, 10_000, 'an empty outbox');
      if (engine === 'postgres') expect(await outboxRows(engine)).toBe(0);
      expect(receiver.events).toHaveLength(1);
      expect(await delivered()).toBe(1);
    });
  }

  it('a burst still in its debounce when the instance stops is stored and sent after the restart', async () => {
    const receiver = new Receiver();
    const port = await freePort();
    await receiver.listen(port);
    // A debounce far longer than the test: the event is due only because the instance stops.
    const env = { ...storage('sqlite'), WEBHOOK_URL: `http://127.0.0.1:${port}/hook`, WEBHOOK_SECRET: SECRET, WEBHOOK_DEBOUNCE_MS: '600000', PERSIST_FLUSH_MS: '10' };
    const room = 'acme-conversation-outbox-pending';
    const first = await startServer(env);
    cleanup.push(() => first.close());
    const [a, b] = [client(first, room), client(first, room)];
    await Promise.all([synced(a.p), synced(b.p)]);
    a.doc.getText('text').insert(0, 'last words');
    await docUntil(b.doc, () => textOf(b.doc) === 'last words');
    a.destroy();
    b.destroy();
    await first.close();

    const second = await startServer(env);
    cleanup.push(() => second.close());
    const [event] = await receiver.received(1, 15_000);
    expect(event).toMatchObject({ type: 'room.changed', room });
    await eventually(async () => (await metricValue(second, 'webhookBacklog')) === 0, 10_000, 'an empty outbox');
    expect(receiver.events).toHaveLength(1);
  });
});

describe('webhook outbox bound', () => {
  it('past WEBHOOK_QUEUE_SIZE the oldest event is dropped, counted and logged; the rest are delivered', async () => {
    const port = await freePort(); // nothing listens here yet
    const server = await startServer({ WEBHOOK_URL: `http://127.0.0.1:${port}/hook`, WEBHOOK_SECRET: SECRET, WEBHOOK_DEBOUNCE_MS: '50', WEBHOOK_QUEUE_SIZE: '2', PERSIST_FLUSH_MS: '10' });
    cleanup.push(() => server.close());
    const rooms = ['acme-conversation-bound-1', 'acme-conversation-bound-2', 'acme-conversation-bound-3'];
    for (const [i, room] of rooms.entries()) {
      const c = client(server, room);
      await synced(c.p);
      c.doc.getText('text').insert(0, 'x');
      // Each event stored before the next room changes: the first is the oldest.
      if (i < 2) await eventually(async () => (await metricValue(server, 'webhookBacklog')) === i + 1, 10_000, `event ${i + 1} stored`);
    }
    await eventually(async () => (await metricValue(server, 'webhookDeliveries', { result: 'dropped' })) === 1, 10_000, 'one event dropped');
    expect(server.logs.some((l) => l['level'] === 40 && String(l['msg']).includes('webhook outbox full'))).toBe(true);
    expect(await metricValue(server, 'webhookBacklog')).toBe(2);

    const receiver = new Receiver();
    await receiver.listen(port);
    const events = await receiver.received(2, 15_000);
    expect(events.map((e) => e['room']).sort()).toEqual(rooms.slice(1));
    await eventually(async () => (await metricValue(server, 'webhookBacklog')) === 0, 10_000, 'an empty outbox');
    expect(receiver.events).toHaveLength(2);
  });
});

describe('webhook delivery at shutdown', () => {
  it('a request the receiver never answers does not hold the shutdown; its event is sent by the next start', async () => {
    const bodies: string[] = [];
    let hang = true;
    const held: Array<import('node:http').ServerResponse> = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        bodies.push(Buffer.concat(chunks).toString());
        if (hang) held.push(res);
        else res.writeHead(204).end();
        server.emit('event');
      });
    });
    const { port, close } = await listenLocal(server);
    cleanup.push(close);
    const requests = (n: number) => untilCount(server, 'event', () => bodies.length, n, 15_000, `${n} webhook requests`);

    const env = { STORAGE: 'postgres', DATABASE_URL: urlWithSchema(hangSchema), WEBHOOK_URL: `http://127.0.0.1:${port}/hook`, WEBHOOK_SECRET: SECRET, WEBHOOK_DEBOUNCE_MS: '50', PERSIST_FLUSH_MS: '10' };
    const room = 'acme-conversation-outbox-hang';
    const first = await startServer(env);
    cleanup.push(() => first.close());
    const c = client(first, room);
    await synced(c.p);
    c.doc.getText('text').insert(0, 'x');
    await requests(1); // sent, never answered
    c.destroy();
    await first.close(); // the request is cut short and its claim released, not held for its lease

    hang = false;
    const second = await startServer(env);
    cleanup.push(() => second.close());
    await requests(2);
    expect(JSON.parse(bodies[1] as string)).toMatchObject({ type: 'room.changed', room });
    expect(bodies[1], bodies.join('\n')).toBe(bodies[0]);
    // Both: the backlog gauge reads 0 before the new instance has read its outbox at all.
    const ok = async () => metricValue(second, 'webhookDeliveries', { result: 'ok' });
    await eventually(async () => (await ok()) >= 1 && (await metricValue(second, 'webhookBacklog')) === 0, 10_000, 'the event delivered and the outbox empty');
    expect(await ok(), bodies.join('\n')).toBe(1);
  });
});
