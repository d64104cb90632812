/**
 * Webhook receivers that misbehave, and URLs that must not leak: a receiver answering a
 * redirect is not followed (the signed body never reaches the Location, loopback included) and
 * counts as a failed attempt; a delivery failure is logged without the URL's user name,
 * password or query.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, createServerMetrics } from '@sync-suite/shared/node';
import { startServer } from '../../../test/helpers/server.js';
import { listenLocal } from '../../../test/helpers/http-listen.js';
import { eventually } from '../../../test/helpers/timeout.js';
import { synced, stockClient } from '../../../test/fixtures/relay-clients.js';
import { WebhookDelivery } from '../src/webhooks/delivery.js';
import { MemoryOutbox } from '../src/webhooks/outbox/memory.js';
import { metricValue } from './signaling-client.js';

const SECRET = 'webhook-secret-for-the-tests-0123';
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(handler);
  const { port, close } = await listenLocal(server);
  cleanup.push(close);
  return { server, port };
}

describe('webhook receivers that redirect', () => {
  for (const status of [307, 308, 302]) {
    it(`a ${status} is not followed: nothing reaches the Location, and the attempt counts as failed (retry)`, async () => {
      const reached: string[] = [];
      const internal = await listen((req, res) => {
        reached.push(`${req.method} ${req.url}`);
        res.writeHead(204).end();
      });
      let asked = 0;
      const receiver = await listen((req, res) => {
        req.resume();
        req.on('end', () => {
          asked++;
          res.writeHead(status, { location: `http://127.0.0.1:${internal.port}/internal/drop-tables` }).end();
        });
      });
      const server = await startServer({
        STORAGE: 'memory',
        WEBHOOK_URL: `http://127.0.0.1:${receiver.port}/hook`,
        WEBHOOK_SECRET: SECRET,
        WEBHOOK_DEBOUNCE_MS: '50',
        PERSIST_FLUSH_MS: '10',
      });
      cleanup.push(() => server.close());
      const c = stockClient(3, server.wsUrl, 'acme-conversation-redirect');
      cleanup.push(() => c.destroy());
      await synced(c.p);
      c.doc.getText('text').insert(0, 'hello');
      await eventually(async () => (await metricValue(server, 'webhookDeliveries')) >= 1, 10_000, 'a first attempt');
      expect(asked).toBeGreaterThanOrEqual(1);
      expect(reached).toEqual([]);
      expect(await metricValue(server, 'webhookDeliveries', { result: 'ok' })).toBe(0);
      expect(await metricValue(server, 'webhookDeliveries', { result: 'retry' })).toBeGreaterThanOrEqual(1);
      expect(await metricValue(server, 'webhookBacklog')).toBe(1);
      const warned = server.logs.filter((l) => l['level'] === 40 && String(l['msg']).includes('redirect'));
      expect(warned.length).toBeGreaterThanOrEqual(1);
      expect(warned[0]).toMatchObject({ status });
      expect(server.logs.filter((l) => (l['level'] as number) >= 50)).toEqual([]);
    });
  }
});

describe('webhook delivery logs', () => {
  /**
   * Runs a delivery of one event to `url` until `done(log)` holds (bounded: on a loaded machine a
   * fixed time may hold fewer attempts), returning the log lines.
   */
  async function deliveryLogs(url: string, done: (raw: string) => boolean): Promise<string> {
    let raw = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        raw += chunk.toString();
        cb();
      },
    });
    const d = new WebhookDelivery({ url, secret: SECRET, queueSize: 10, metrics: createServerMetrics(), log: createLogger({ level: 'info', destination: sink }) as never, backoffMs: 10 });
    d.use(new MemoryOutbox());
    d.enqueue({ type: 'room.changed', room: 'acme-conversation-x', at: 1, updates: 1 });
    try {
      await eventually(async () => done(raw), 10_000, 'the delivery attempts');
    } finally {
      await d.stop();
    }
    return raw;
  }

  it('a failed attempt logs a code and the URL without user name, password, path or query', async () => {
    // nothing listens on the port of a closed server
    const closed = await listen(() => undefined);
    await new Promise((r) => closed.server.close(r));
    for (const url of [`http://hookuser:S3cretHookPass@127.0.0.1:${closed.port}/hook`, `http://127.0.0.1:${closed.port}/hook?key=S3cretQueryKey#frag`, `http://127.0.0.1:${closed.port}/api/webhooks/123/S3cretPathToken`]) {
      const raw = await deliveryLogs(url, (log) => log.includes('webhook delivery failed; retrying'));
      const lines = raw.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      const failed = lines.filter((l) => l['msg'] === 'webhook delivery failed; retrying');
      expect(failed.length).toBeGreaterThanOrEqual(1);
      expect(raw).not.toContain('S3cretHookPass');
      expect(raw).not.toContain('hookuser');
      expect(raw).not.toContain('S3cretQueryKey');
      expect(raw).not.toContain('S3cretPathToken');
      expect(failed[0]).toMatchObject({ level: 40, target: `http://127.0.0.1:${closed.port}/…`, err: expect.stringMatching(/^[A-Za-z0-9_]+$/) as string });
    }
  });

  it('a refusal (non-2xx) logs the status and the URL without its path and query', async () => {
    const receiver = await listen((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(500).end());
    });
    const raw = await deliveryLogs(`http://127.0.0.1:${receiver.port}/hook?key=S3cretQueryKey`, (log) => log.includes('"status":500'));
    expect(raw).toContain('"status":500');
    expect(raw).toContain(`"target":"http://127.0.0.1:${receiver.port}/…"`);
    expect(raw).not.toContain('S3cretQueryKey');
  });

  it('a receiver refusing every attempt is warned about once per minute, not per attempt', async () => {
    let attempts = 0;
    const receiver = await listen((req, res) => {
      attempts++;
      req.resume();
      req.on('end', () => res.writeHead(500).end());
    });
    const raw = await deliveryLogs(`http://127.0.0.1:${receiver.port}/hook`, () => attempts >= 3);
    const refused = raw.split('\n').filter((l) => l.includes('webhook receiver refused an event'));
    expect(attempts).toBeGreaterThanOrEqual(3);
    expect(refused.length).toBe(1);
  });
});
