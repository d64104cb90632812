/**
 * RedisTopicBus holds a new topic's publishes until its SUBSCRIBE is confirmed
 * (fanout/redis-topic-bus.ts). During a Redis outage that wait lasts as long as the outage: what
 * it holds is bounded (HELD_PUBLISH_BYTES), and what it held goes out once Redis is back.
 * Real Redis, cut off behind a TCP proxy.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, expect, it, vi } from 'vitest';
import pino from 'pino';
import { createServerMetrics } from '@sync-suite/shared/node';
import { BusKind, readBusFrame } from '../src/fanout/bus-frame.js';
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
  // Once subscribed nothing waits any more, and a publish reaches the other instance. (The held ones
  // go out at that moment too, unless the publishing connection is not back yet: then they are
  // dropped, as every publish is while Redis is down; so they are not counted here.)
  await vi.waitFor(() => expect((bus as unknown as { held: Map<string, unknown> }).held.has(topic)).toBe(false), { timeout: 15_000, interval: 50 });
  await vi.waitFor(
    () => {
      const marker = { type: 'publish' as const, topic, data: 'marker' };
      bus.publish(topic, marker, Buffer.from(JSON.stringify(marker)));
      expect(heard.at(-1)).toBe('marker');
    },
    { timeout: 10_000, interval: 100 },
  );
});
