/**
 * After its subscriber reconnects, RedisLink subscribes its channels again itself
 * (fanout/redis-link.ts): ioredis's own resubscription is a promise nobody handles, so closing
 * the link (a shutdown) before Redis answered it was an unhandled rejection, which ends a Node
 * process; and a resubscription Redis refuses is retried (not ready until it holds). Real Redis,
 * behind a proxy that drops connections and can swallow, delay, refuse or hold SUBSCRIBE commands.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { afterEach, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { Redis } from 'ioredis';
import type { FastifyBaseLogger } from 'fastify';
import { createServerMetrics } from '@sync-suite/shared/node';
import { RedisLink } from '../src/fanout/redis-link.js';
import { testRedisUrl } from '../../../test/helpers/test-env.js';
import { withTimeout } from '../../../test/helpers/timeout.js';
import { SwallowingProxy } from './swallowing-proxy.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

const log = pino({ level: 'silent' });

async function linkTo(url: string): Promise<RedisLink> {
  const l = new RedisLink({ url, metrics: createServerMetrics(), log });
  await l.connect();
  cleanup.push(() => l.close());
  return l;
}

/** Resolves once a line `match` accepts has been written (at once if one has). */
function logged(lines: Array<Record<string, unknown>>, written: EventEmitter, match: (line: Record<string, unknown>) => boolean): Promise<void> {
  return new Promise<void>((resolve) => {
    const seen = (): void => {
      if (!lines.some(match)) return;
      written.off('line', seen);
      resolve();
    };
    written.on('line', seen);
    seen();
  });
}

/** A warn-level logger whose lines are kept, parsed; emits 'line' as each is written (pino writes synchronously). */
function capture(): { log: FastifyBaseLogger; lines: Array<Record<string, unknown>>; written: EventEmitter } {
  const lines: Array<Record<string, unknown>> = [];
  const written = new EventEmitter();
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      written.emit('line');
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream) as unknown as FastifyBaseLogger, lines, written };
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

it('a resubscription Redis refuses is retried until it holds; meanwhile the link is not ready and no resync runs', async () => {
  const proxy = new SwallowingProxy();
  const url = await proxy.listen();
  cleanup.push(() => proxy.close());
  const { log: captured, lines } = capture();
  const metrics = createServerMetrics();
  const link = new RedisLink({ url, metrics, log: captured });
  cleanup.push(() => link.close());
  await link.connect();
  const other = await linkTo(testRedisUrl());
  const channel = `resub-${randomBytes(6).toString('hex')}`;
  const heard: string[] = [];
  await link.subscribe(channel, (m) => heard.push(m.toString()));
  let resyncs = 0;
  link.onResync(() => resyncs++);

  // The resubscription after the reconnect is answered -ERR; its retry waits for release().
  proxy.refuse = 1;
  proxy.holdAfterRefusal = true;
  const refused = once(proxy, 'refused');
  const held = once(proxy, 'held');
  proxy.drop();
  await withTimeout(refused, 10_000, 'the resubscription, refused');
  // The subscriber is connected again ('ready' came before its SUBSCRIBE), its channel is not.
  expect(link.subscriberReady).toBe(false);
  await withTimeout(held, 10_000, 'the resubscription, retried');
  // The link has read the refusal (it retried): still not ready, /readyz fails, nothing hears the
  // channel, and the subscriber's resync has not run (the publisher's may have).
  expect(link.subscriberReady).toBe(false);
  await expect(link.check()).rejects.toThrow(/not subscribed again/);
  expect(await other.publishCounted(channel, Buffer.from('lost'))).toBe(0);
  expect(resyncs).toBeLessThanOrEqual(1);

  proxy.release();
  await waitFor(() => resyncs >= 2, 'the resyncs after the retried resubscription');
  expect(link.subscriberReady).toBe(true);
  await link.check();
  expect(await other.publishCounted(channel, Buffer.from('after'))).toBe(1);
  await waitFor(() => heard.includes('after'), 'the message published after the retry');
  expect(proxy.misordered).toBe(0);
  // One warning for the refusal (not an error), each warning counted once.
  const refusals = lines.filter((l) => (l['err'] as { message?: string } | undefined)?.message === 'ERR injected');
  expect(refusals.map((l) => [l['level'], l['resubscribeAttempt']])).toEqual([[40, 1]]);
  expect(lines.filter((l) => Number(l['level']) >= 50)).toEqual([]);
  const counted = (await metrics.redisErrors.get()).values.reduce((n, v) => n + v.value, 0);
  expect(counted).toBe(lines.filter((l) => l['msg'] === 'redis error').length);
});

it('closing the link while a refused resubscription waits for its retry stops the retry, without an unhandled rejection', async () => {
  const proxy = new SwallowingProxy();
  const url = await proxy.listen();
  cleanup.push(() => proxy.close());
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  cleanup.push(() => void process.off('unhandledRejection', onUnhandled));
  const { log: captured, lines, written } = capture();
  const link = new RedisLink({ url, metrics: createServerMetrics(), log: captured });
  await link.connect();
  await link.subscribe(`resub-${randomBytes(6).toString('hex')}`, () => undefined);

  proxy.refuse = Number.POSITIVE_INFINITY;
  const warned = logged(lines, written, (l) => l['resubscribeAttempt'] !== undefined);
  proxy.drop();
  await withTimeout(warned, 10_000, 'the refused resubscription, logged');
  // The retry is scheduled in the same turn as that warning, and comes 100 ms later at the earliest.
  const retry = (): unknown => (link as unknown as { resubscribeTimer: unknown }).resubscribeTimer;
  expect(retry()).not.toBeNull();
  await withTimeout(link.close(), 10_000, 'the link closed');
  expect(retry()).toBeNull();
  await new Promise((resolve) => setImmediate(resolve));
  expect(unhandled.map(String)).toEqual([]);
  expect(lines.filter((l) => Number(l['level']) >= 50)).toEqual([]);
});

it('a drop while a refused resubscription waits for its retry leaves one retry loop', async () => {
  const proxy = new SwallowingProxy();
  const url = await proxy.listen();
  cleanup.push(() => proxy.close());
  const { log: captured, lines, written } = capture();
  const link = new RedisLink({ url, metrics: createServerMetrics(), log: captured });
  cleanup.push(() => link.close());
  await link.connect();
  const other = await linkTo(testRedisUrl());
  const channel = `resub-${randomBytes(6).toString('hex')}`;
  const heard: string[] = [];
  await link.subscribe(channel, (m) => heard.push(m.toString()));
  // Only the subscriber drops: every resync is the subscriber's.
  let resyncs = 0;
  link.onResync(() => resyncs++);

  // Every resubscription is refused until the end: each attempt logs its number.
  proxy.refuse = Number.POSITIVE_INFINITY;
  const firstRefusal = logged(lines, written, (l) => l['resubscribeAttempt'] === 1);
  proxy.dropSubscribers();
  await withTimeout(firstRefusal, 10_000, "the first round's refusal, logged");
  const mark = lines.length;
  const attempts = (): unknown[] => lines.slice(mark).flatMap((l) => (l['resubscribeAttempt'] === undefined ? [] : [l['resubscribeAttempt']]));
  const third = logged(lines, written, () => attempts().includes(3));
  proxy.dropSubscribers(); // the first round's retry is pending (100 ms)
  await withTimeout(third, 10_000, "the second round's third attempt, logged");
  // One loop: 1, 2, 3. Two would interleave (the first round's retry came before the second's).
  expect(attempts()).toEqual([1, 2, 3]);
  proxy.refuse = 0;
  await waitFor(() => link.subscriberReady, 'the channels subscribed again');
  expect(resyncs).toBe(1);
  expect(lines.filter((l) => l['msg'] === 'redis channels subscribed again').map((l) => l['attempts'])).toEqual([4]);
  expect(await other.publishCounted(channel, Buffer.from('after'))).toBe(1);
  await waitFor(() => heard.includes('after'), 'the message published after the retry');
  expect(proxy.misordered).toBe(0);
});
