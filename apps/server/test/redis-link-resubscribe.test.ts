/**
 * After its subscriber reconnects, RedisLink subscribes its channels again itself
 * (fanout/redis-link.ts): ioredis's own resubscription is a promise nobody handles, so closing
 * the link (a shutdown) before Redis answered it was an unhandled rejection, which ends a Node
 * process. Real Redis, behind a proxy that drops connections and can swallow SUBSCRIBE commands.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { Redis } from 'ioredis';
import type { FastifyBaseLogger } from 'fastify';
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
 * Forwards to Redis, command by command; `drop()` ends every connection; while `swallow` is set, a
 * connection's SUBSCRIBE and all after it are not forwarded; with `subscribeDelayMs`, a SUBSCRIBE
 * and all after it on that connection are forwarded that much later (in order). While `refuse` is
 * above 0, a SUBSCRIBE is answered `-ERR injected` by the proxy itself (not forwarded; emits
 * 'refused'); with `holdAfterRefusal`, the next SUBSCRIBE and all after it on that connection wait
 * for `release()` (emits 'held'). `dropSubscribers()` ends only the connections that sent a SUBSCRIBE.
 */
class SwallowingProxy extends EventEmitter {
  swallow = false;
  subscribeDelayMs = 0;
  swallowed = 0;
  refuse = 0;
  holdAfterRefusal = false;
  /** a refusal written while Redis still owed answers: ioredis would have matched it to another command */
  misordered = 0;
  private releaseHeld: () => void = () => undefined;
  private readonly held = new Promise<void>((resolve) => (this.releaseHeld = resolve));
  private readonly sockets = new Set<Socket>();
  private readonly subscribers = new Set<Socket>();
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

  dropSubscribers(): void {
    for (const s of this.subscribers) s.destroy();
  }

  release(): void {
    this.releaseHeld();
  }

  /** Resolves once a SUBSCRIBE has been swallowed. */
  swallowedOne(): Promise<void> {
    return this.swallowed > 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }

  async close(): Promise<void> {
    this.release();
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
        this.subscribers.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    const conn: ProxiedConnection = { sent: 0, answered: 0, stalled: false, refused: false, gate: null };
    splitValues(client, (command) => this.route(conn, command, client, upstream));
    splitValues(upstream, (reply) => {
      conn.answered++;
      client.write(reply);
    });
  }

  private route(conn: ProxiedConnection, command: Buffer, client: Socket, upstream: Socket): void {
    const subscribe = /^\*\d+\r\n\$\d+\r\nsubscribe\r\n/i.test(command.toString('latin1', 0, 40));
    // From a swallowed SUBSCRIBE on, nothing more is forwarded: Redis would answer later
    // commands, and ioredis would match those answers to the SUBSCRIBE.
    if (subscribe) this.subscribers.add(client);
    if (!conn.stalled && this.swallow && subscribe) {
      conn.stalled = true;
      this.swallowed++;
      this.waiters.splice(0).forEach((w) => w());
    }
    if (conn.stalled) return;
    if (!conn.gate && subscribe && this.refuse > 0) {
      this.refuse--;
      conn.refused = true;
      // ioredis takes the error as this SUBSCRIBE's one reply only if Redis owes no earlier answer
      // (counted on a connection not subscribed yet: a subscribed one's messages are not answers).
      if (conn.answered < conn.sent) this.misordered++;
      client.write('-ERR injected\r\n');
      this.emit('refused');
      return;
    }
    if (!conn.gate && subscribe && this.subscribeDelayMs > 0) {
      conn.gate = new Promise((resolve) => setTimeout(resolve, this.subscribeDelayMs));
    } else if (!conn.gate && subscribe && this.holdAfterRefusal && conn.refused) {
      conn.gate = this.held;
      this.emit('held');
    }
    const forward = (): void => {
      conn.sent++;
      upstream.write(command);
    };
    if (conn.gate) void conn.gate.then(forward);
    else forward();
  }
}

interface ProxiedConnection {
  /** commands forwarded, and values Redis sent back */
  sent: number;
  answered: number;
  /** a SUBSCRIBE was swallowed: nothing more is forwarded */
  stalled: boolean;
  /** a SUBSCRIBE was refused by the proxy */
  refused: boolean;
  /** from a delayed or held SUBSCRIBE on, each command is forwarded once this resolves (in order) */
  gate: Promise<void> | null;
}

/** Calls `each` with every complete RESP2 value read from `socket`, in order. */
function splitValues(socket: Socket, each: (value: Buffer) => void): void {
  let buffered = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    let end: number;
    while (buffered.length > 0 && (end = valueEnd(buffered, 0)) > 0) {
      each(buffered.subarray(0, end));
      buffered = buffered.subarray(end);
    }
  });
}

/** Where the RESP2 value at `at` ends, or -1 while `buf` does not hold all of it. */
function valueEnd(buf: Buffer, at: number): number {
  const line = buf.indexOf('\r\n', at);
  if (line < 0) return -1;
  const type = String.fromCharCode(buf[at] ?? 0);
  const n = Number(buf.toString('latin1', at + 1, line));
  let end = line + 2;
  if (type === '$') return n < 0 ? end : end + n + 2 <= buf.length ? end + n + 2 : -1;
  if (type !== '*') return end;
  for (let i = 0; i < n && end > 0; i++) end = valueEnd(buf, end);
  return end;
}

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
