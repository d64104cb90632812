/**
 * RedisTopicBus holds a new topic's publishes until its SUBSCRIBE is confirmed
 * (fanout/redis-topic-bus.ts). During a Redis outage that wait lasts as long as the outage: what
 * it holds is bounded (HELD_PUBLISH_BYTES), and what it held goes out once Redis is back, whichever
 * of the link's two connections (fanout/redis-link.ts) comes back first. Real Redis, cut off
 * behind TCP proxies: one per connection, so the test chooses which returns first.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, expect, it, vi } from 'vitest';
import pino from 'pino';
import { createServerMetrics } from '@sync-suite/shared/node';
import type { Redis } from 'ioredis';
import { BusKind, readBusFrame, writeBusFrame, writeCount } from '../src/fanout/bus-frame.js';
import { RedisLink } from '../src/fanout/redis-link.js';
import { redisKeys } from '../src/fanout/redis-keys.js';
import { HELD_PUBLISH_BYTES, RedisTopicBus } from '../src/fanout/redis-topic-bus.js';
import { TcpProxy } from '../../../test/fixtures/scale-proxy.js';
import { testRedisUrl } from '../../../test/helpers/test-env.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

const log = pino({ level: 'silent' });

async function link(url: string): Promise<RedisLink> {
  const l = new RedisLink({ url, metrics: createServerMetrics(), log });
  await l.connect();
  cleanup.push(() => l.close());
  return l;
}

it('publishes held while a topic waits out a Redis outage are bounded, and nothing waits once Redis is back', async () => {
  const redis = new URL(testRedisUrl());
  const proxy = new TcpProxy(() => [Number(redis.port || 6379)]);
  const port = await proxy.listen();
  cleanup.push(() => proxy.close());
  const behindProxy = await link(`redis://${redis.hostname}:${port}`);
  const keys = redisKeys(`held-${randomBytes(6).toString('hex')}:`);
  const bus = new RedisTopicBus({ link: behindProxy, keys, log, maxMembersPerTopic: 50 });
  cleanup.push(() => bus.close());
  const topic = 'acme-conversation-held';

  // Another instance, straight to Redis: it counts the publishes that reach the topic's channel.
  const watcher = await link(testRedisUrl());
  const heard: string[] = [];
  await watcher.subscribe(keys.signalTopic(topic), (message) => {
    const read = readBusFrame(message);
    if (read.ok && read.frame.kind === BusKind.SignalPublish) heard.push(JSON.parse(read.frame.payload.toString('utf8')).data as string);
  });

  await proxy.cut();
  await vi.waitFor(() => expect(behindProxy.subscriberReady).toBe(false), { timeout: 10_000, interval: 20 });
  // A member joins: the topic's SUBSCRIBE now waits for the reconnect, and its publishes are held.
  expect(bus.join(topic, { id: 'member', deliver: () => undefined })).toBe('joined');
  const FRAME = 60_000;
  const COUNT = Math.ceil((2 * HELD_PUBLISH_BYTES) / FRAME);
  for (let i = 0; i < COUNT; i++) {
    const data = `${String(i).padStart(6, '0')}${'x'.repeat(FRAME)}`;
    const fields = { type: 'publish' as const, topic, data };
    bus.publish(topic, fields, Buffer.from(JSON.stringify(fields)));
  }

  // What waits is bounded: the first publishes, in order, up to HELD_PUBLISH_BYTES.
  const waiting = (bus as unknown as { held: Map<string, Buffer[]> }).held.get(topic) ?? [];
  const ids = waiting.map((f) => {
    const read = readBusFrame(f);
    return read.ok ? Number((JSON.parse(read.frame.payload.toString('utf8')) as { data: string }).data.slice(0, 6)) : -1;
  });
  expect(ids.length).toBeGreaterThan(0);
  expect(ids.length).toBeLessThan(COUNT);
  expect(waiting.reduce((n, f) => n + f.length, 0)).toBeLessThanOrEqual(HELD_PUBLISH_BYTES);
  expect(ids).toEqual(ids.map((_, i) => i));

  await proxy.restore();
  // Once subscribed and able to publish, nothing waits any more: the held ones reach the other
  // instance, in order (either connection may come back first: the tests below), and so does a later publish.
  await vi.waitFor(() => expect((bus as unknown as { held: Map<string, unknown> }).held.has(topic)).toBe(false), { timeout: 15_000, interval: 50 });
  await vi.waitFor(() => expect(heard.slice(0, ids.length).map((d) => Number(d.slice(0, 6)))).toEqual(ids), { timeout: 10_000, interval: 50 });
  await vi.waitFor(
    () => {
      const marker = { type: 'publish' as const, topic, data: 'marker' };
      bus.publish(topic, marker, Buffer.from(JSON.stringify(marker)));
      expect(heard.at(-1)).toBe('marker');
    },
    { timeout: 10_000, interval: 100 },
  );
});

/** `link`'s publishing connection reconnects through `port` from now on (ioredis reads its options at each connect). */
function publisherThrough(l: RedisLink, port: number): void {
  (l as unknown as { pub: Redis }).pub.options.port = port;
}

it.each(['publisher', 'subscriber'] as const)('publishes held during an outage reach the other instances, in order, when the %s connection comes back last', async (last) => {
  const redis = new URL(testRedisUrl());
  const toRedis = (): number[] => [Number(redis.port || 6379)];
  const [subProxy, pubProxy] = [new TcpProxy(toRedis), new TcpProxy(toRedis)];
  const subPort = await subProxy.listen();
  const pubPort = await pubProxy.listen();
  cleanup.push(() => subProxy.close(), () => pubProxy.close());
  const behindProxies = await link(`redis://${redis.hostname}:${subPort}`);
  publisherThrough(behindProxies, pubPort);
  const keys = redisKeys(`held-${randomBytes(6).toString('hex')}:`);
  const bus = new RedisTopicBus({ link: behindProxies, keys, log, maxMembersPerTopic: 50 });
  cleanup.push(() => bus.close());
  const topic = `acme-conversation-held-${last}`;
  const channel = keys.signalTopic(topic);

  const watcher = await link(testRedisUrl());
  const heard: string[] = [];
  await watcher.subscribe(channel, (message) => {
    const read = readBusFrame(message);
    if (read.ok && read.frame.kind === BusKind.SignalPublish) heard.push(JSON.parse(read.frame.payload.toString('utf8')).data as string);
  });

  await Promise.all([subProxy.cut(), pubProxy.cut()]);
  await vi.waitFor(() => expect([behindProxies.subscriberReady, behindProxies.publisherReady]).toEqual([false, false]), { timeout: 10_000, interval: 20 });
  expect(bus.join(topic, { id: 'member', deliver: () => undefined })).toBe('joined');
  const sent = Array.from({ length: 5 }, (_, i) => `held-${i}`);
  for (const data of sent) {
    const fields = { type: 'publish' as const, topic, data };
    bus.publish(topic, fields, Buffer.from(JSON.stringify(fields)));
  }
  let expected = sent;

  if (last === 'publisher') {
    await subProxy.restore();
    // Subscribed again: a count the other instance publishes now reaches the bus. Redis answered
    // the SUBSCRIBE before that message, so the bus has handled the answer (and released what it
    // could) before the publisher can be back.
    await vi.waitFor(
      async () => {
        await watcher.publishCounted(channel, writeBusFrame(BusKind.SignalCount, watcher.instance, writeCount(1)));
        expect(bus.size(topic)).toBe(2);
      },
      { timeout: 15_000, interval: 50 },
    );
    expect(behindProxies.publisherReady).toBe(false);
    await pubProxy.restore();
  } else {
    await pubProxy.restore();
    // 'ready' ran the link's resync (redis-link.ts pubReady) before publisherReady reads true: a
    // held publish released then went out on the publishing connection before this marker, so
    // once the other instance hears the marker it would have heard that publish too.
    await vi.waitFor(() => expect(behindProxies.publisherReady).toBe(true), { timeout: 15_000, interval: 20 });
    const marker = { type: 'publish' as const, topic, data: 'marker' };
    expect(behindProxies.publish(channel, writeBusFrame(BusKind.SignalPublish, behindProxies.instance, Buffer.from(JSON.stringify(marker))))).toBe(true);
    await vi.waitFor(() => expect(heard).toContain('marker'), { timeout: 10_000, interval: 20 });
    expect(behindProxies.subscriberReady).toBe(false);
    expect(heard).toEqual(['marker']); // the held ones still wait for the subscription
    expected = ['marker', ...sent];
    await subProxy.restore();
  }
  await vi.waitFor(() => expect(heard).toEqual(expected), { timeout: 15_000, interval: 50 });
  expect((bus as unknown as { held: Map<string, unknown> }).held.has(topic)).toBe(false);
});
