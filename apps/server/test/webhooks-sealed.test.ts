/**
 * Webhooks for sealed rooms against a local receiver: committed envelopes send a signed
 * room.changed (no content), an admin delete sends room.deleted.
 */
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer } from '../../../test/helpers/server.js';
import { freePort } from '../../../test/helpers/process.js';
import { listenLocal } from '../../../test/helpers/http-listen.js';
import { untilCount } from '../../../test/helpers/timeout.js';
import { fakeEnvelope, RawSealed } from '../../../test/fixtures/sealed-raw.js';

const SECRET = 'webhook-secret-for-the-tests-0123';
const ADMIN_TOKEN = 'admin-token-for-the-webhook-tests';
const ROOM = 'acme-conversation-sealedhooks';
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** Records each POST (raw body, signature), answering 204; `received(n)` waits for n in all. */
async function receiver(port: number): Promise<{ bodies: string[]; received(n: number): Promise<Array<Record<string, unknown>>> }> {
  const bodies: string[] = [];
  const signatures: Array<string | undefined> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString());
      signatures.push(req.headers['x-sync-signature'] as string | undefined);
      res.writeHead(204).end();
      server.emit('event');
    });
  });
  cleanup.push((await listenLocal(server, port)).close);
  return {
    bodies,
    async received(n) {
      await untilCount(server, 'event', () => bodies.length, n, 10_000, `${n} webhook events`);
      return bodies.map((body, i) => {
        expect(signatures[i]).toBe(`sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`);
        return JSON.parse(body) as Record<string, unknown>;
      });
    },
  };
}

describe('webhooks for sealed rooms', () => {
  it('committed envelopes send one room.changed without content; DELETE sends room.deleted', async () => {
    const port = await freePort();
    const hooks = await receiver(port);
    const server = await startServer({
      WEBHOOK_URL: `http://127.0.0.1:${port}/hook`,
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_DEBOUNCE_MS: '200',
      ADMIN_TOKEN,
      PERSIST_FLUSH_MS: '10',
    });
    cleanup.push(() => server.close());
    const c = await RawSealed.connect(server.wsUrl, `/sealed/${ROOM}`);
    cleanup.push(() => c.close());
    c.hello(0);
    await c.next('caught-up');
    const secret = fakeEnvelope([...Buffer.from('sealed-envelope-bytes')]);
    c.update(1, secret);
    c.update(2, secret);
    await c.wait(() => c.messages.filter((m) => m.type === 'ack').length === 2, 'two acks');

    const [changed] = await hooks.received(1);
    expect(changed).toMatchObject({ type: 'room.changed', room: ROOM, updates: 2, at: expect.any(Number) as number });
    expect(hooks.bodies[0]).not.toContain('sealed-envelope');

    const res = await fetch(`${server.url}/admin/rooms/${ROOM}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(await c.closed()).toBe(4410);
    const events = await hooks.received(2);
    expect(events[1]).toMatchObject({ type: 'room.deleted', room: ROOM });
  });
});
