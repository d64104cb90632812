/**
 * After its subscriber reconnects, RedisLink subscribes its channels again itself
 * (fanout/redis-link.ts): ioredis's own resubscription is a promise nobody handles, so closing
 * the link (a shutdown) before Redis answered it was an unhandled rejection, which ends a Node
 * process. Real Redis, behind a proxy that drops connections and can swallow SUBSCRIBE commands.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import pino from 'pino';
import type { Redis } from 'ioredis';
import { createServerMetrics } from '@sync-suite/shared/node';
import { RedisLink } from '../src/fanout/redis-link.js';
import { testRedisUrl } from '../../../test/helpers/test-env.js';
import { withTimeout } from '../../../test/helpers/timeout.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

const log = pino({ level: 'silent' });
const redis = new URL(testRedisUrl());

/**
 * Forwards to Redis; `drop()` ends every connection; while `swallow` is set, a connection's
 * SUBSCRIBE and all after it are not forwarded; with `subscribeDelayMs`, a SUBSCRIBE and all
 * after it on that connection are forwarded that much later (in order).
 */
class SwallowingProxy {
  swallow = false;
  subscribeDelayMs = 0;
  swallowed = 0;
  private readonly sockets = new Set<Socket>();
  private readonly waiters: Array<() => void> = [];
  private readonly server: Server = createServer((client) => this.accept(client));

  async listen(): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    const address = this.server.address();
    return `redis://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  }

  drop(): void {
    for (const s of this.sockets) s.destroy();
  }

  /** Resolves once a SUBSCRIBE has been swallowed. */
  swallowedOne(): Promise<void> {
    return this.swallowed > 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }

  async close(): Promise<void> {
    this.drop();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    const upstream = createConnection({ host: redis.hostname, port: Number(redis.port || 6379) });
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.once('close', () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    let stalled = false;
    let delayed: Promise<void> | null = null;
    client.on('data', (chunk: Buffer) => {
      const subscribe = chunk.toString('latin1').toLowerCase().includes('subscribe');
      // From a swallowed SUBSCRIBE on, nothing more is forwarded: Redis would answer later
      // commands, and ioredis would match those answers to the SUBSCRIBE.
      if (!stalled && this.swallow && subscribe) {
        stalled = true;
        this.swallowed++;
        this.waiters.splice(0).forEach((w) => w());
      }
      if (stalled) return;
      if (!delayed && subscribe && this.subscribeDelayMs > 0) {
        delayed = new Promise((resolve) => setTimeout(resolve, this.subscribeDelayMs));
      }
      if (delayed) void delayed.then(() => upstream.write(chunk));
      else upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
  }
}

async function linkTo(url: string): Promise<RedisLink> {
  const l = new RedisLink({ url, metrics: createServerMetrics(), log });
  await l.connect();
  cleanup.push(() => l.close());
  return l;
}

async function waitFor(check: () => boolean, what: string): Promise<void> {
  await withTimeout(
    (async () => {
      while (!check()) await new Promise((resolve) => setTimeout(resolve, 10));
    })(),
    10_000,
    what,
  );
}

it('channels are subscribed again after the subscriber reconnects: messages reach their handler, and the resync listeners run after that', async () => {
  const proxy = new SwallowingProxy();
  const url = await proxy.listen();
  cleanup.push(() => proxy.close());
  const link = await linkTo(url);
  const other = await linkTo(testRedisUrl());
  // Redis answering the resubscription late: the publisher's resync comes first (the CI failure
  // of 51e51cd: a publish after the first resync reached nobody).
  proxy.subscribeDelayMs = 300;
  const channel = `resub-${randomBytes(6).toString('hex')}`;
  const heard: string[] = [];
  await link.subscribe(channel, (m) => heard.push(m.toString()));
  let resyncs = 0;
  link.onResync(() => resyncs++);

  proxy.drop();
  await waitFor(() => !link.subscriberReady, 'the subscriber to notice the drop');
  // Both connections came back: the publisher's resync, and the subscriber's, which runs once the
  // SUBSCRIBE is answered: a publish now is heard.
  await waitFor(() => resyncs >= 2, 'the resyncs after the reconnect');
  expect(await other.publishCounted(channel, Buffer.from('after'))).toBe(1);
  await waitFor(() => heard.includes('after'), 'the message published after the reconnect');
});

it('closing the link before Redis answers the resubscription is not an unhandled rejection', async () => {
  const proxy = new SwallowingProxy();
  const url = await proxy.listen();
  cleanup.push(() => proxy.close());
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  cleanup.push(() => void process.off('unhandledRejection', onUnhandled));

  const link = new RedisLink({ url, metrics: createServerMetrics(), log });
  await link.connect();
  await link.subscribe(`resub-${randomBytes(6).toString('hex')}`, () => undefined);
  proxy.swallow = true;
  proxy.drop();
  await withTimeout(proxy.swallowedOne(), 10_000, 'the resubscription, swallowed');
  // A shutdown while Redis does not answer: when the subscriber's socket closes, the unanswered
  // SUBSCRIBE fails with "Connection is closed."
  const ended = once((link as unknown as { sub: Redis }).sub, 'end');
  const closed = link.close(); // QUIT is written now, and not answered
  proxy.drop();
  await withTimeout(closed, 10_000, 'the link closed');
  await withTimeout(ended, 10_000, "the subscriber's end");
  // Node reports an unhandled rejection once the microtasks after it have run.
  await new Promise((resolve) => setImmediate(resolve));
  expect(unhandled.map(String)).toEqual([]);
});
