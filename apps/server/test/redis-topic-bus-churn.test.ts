/**
 * Signaling subscribe/unsubscribe churn across instances (fanout/redis-topic-bus.ts): a topic
 * keeps its Redis subscription for a while after its last local member left, so leaving and
 * joining again costs no SUBSCRIBE, hello (which every other instance answers) or UNSUBSCRIBE,
 * only count announcements, at most one per topic per turn and none when the count is back where
 * it was. The counts the other instance sees stay right. Two instances (two Redis links), real Redis.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, expect, it, vi } from 'vitest';
import pino from 'pino';
import { createServerMetrics } from '@sync-suite/shared/node';
import { BusKind, readBusFrame } from '../src/fanout/bus-frame.js';
import { RedisLink } from '../src/fanout/redis-link.js';
import { redisKeys } from '../src/fanout/redis-keys.js';
import { RedisTopicBus } from '../src/fanout/redis-topic-bus.js';
import { testRedisUrl } from '../../../test/helpers/test-env.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of cleanup.splice(0).reverse()) await c();
});

const log = pino({ level: 'silent' });
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const PAIRS = 50;

async function instance(prefix: string, lingerMs: number): Promise<{ link: RedisLink; bus: RedisTopicBus }> {
  const link = new RedisLink({ url: testRedisUrl(), metrics: createServerMetrics(), log });
  await link.connect();
  cleanup.push(() => link.close());
  // no periodic refresh during the test: every announcement counted is one the churn caused
  const bus = new RedisTopicBus({ link, keys: redisKeys(prefix), log, maxMembersPerTopic: 50, refreshMs: 600_000, lingerMs });
  cleanup.push(() => bus.close());
  return { link, bus };
}

/** What `link` is asked to do from now on: SUBSCRIBE, UNSUBSCRIBE, and PUBLISH by bus-frame kind. */
function commands(link: RedisLink): { subscribe: number; unsubscribe: number; kinds: Map<BusKind, number> } {
  const seen = { subscribe: 0, unsubscribe: 0, kinds: new Map<BusKind, number>() };
  const [subscribe, unsubscribe, publish] = [link.subscribe.bind(link), link.unsubscribe.bind(link), link.publish.bind(link)];
  vi.spyOn(link, 'subscribe').mockImplementation((channel, handler) => (seen.subscribe++, subscribe(channel, handler)));
  vi.spyOn(link, 'unsubscribe').mockImplementation((channel) => (seen.unsubscribe++, unsubscribe(channel)));
  vi.spyOn(link, 'publish').mockImplementation((channel, frame) => {
    const read = readBusFrame(frame);
    if (read.ok) seen.kinds.set(read.frame.kind, (seen.kinds.get(read.frame.kind) ?? 0) + 1);
    return publish(channel, frame);
  });
  return seen;
}

const total = (kinds: Map<BusKind, number>): number => [...kinds.values()].reduce((a, b) => a + b, 0);

it(`a member leaving and joining again ${PAIRS} times costs no SUBSCRIBE, hello or UNSUBSCRIBE, two counts a round at most; counts stay right; the subscription ends after the linger`, async () => {
  const prefix = `churn-${randomBytes(6).toString('hex')}:`;
  const a = await instance(prefix, 300);
  const b = await instance(prefix, 300);
  const topic = 'acme-conversation-churn';
  const churner = { id: 'churner', deliver: () => undefined };
  expect(b.bus.join(topic, { id: 'victim', deliver: () => undefined })).toBe('joined');
  expect(a.bus.join(topic, churner)).toBe('joined');
  // both subscribed and each counting the other
  await vi.waitFor(() => expect([a.bus.size(topic), b.bus.size(topic)]).toEqual([2, 2]), { timeout: 10_000, interval: 20 });

  const onA = commands(a.link);
  const onB = commands(b.link);
  for (let i = 0; i < PAIRS; i++) {
    a.bus.leave(topic, churner);
    await turn();
    expect(a.bus.join(topic, churner)).toBe('joined');
    await turn();
  }
  expect(onA.subscribe).toBe(0);
  expect(onA.unsubscribe).toBe(0);
  expect(onA.kinds.get(BusKind.SignalHello) ?? 0).toBe(0);
  expect(total(onA.kinds)).toBeLessThanOrEqual(2 * PAIRS);
  expect(total(onB.kinds)).toBe(0); // no hello to answer

  // In one turn: nothing at all (the count ends where it was).
  for (let i = 0; i < PAIRS; i++) {
    a.bus.leave(topic, churner);
    a.bus.join(topic, churner);
  }
  const before = total(onA.kinds);
  await turn();
  expect(total(onA.kinds)).toBe(before);

  // The other instance's count follows: 2 while the churner is in, 1 once it left (announced at once, not after the linger).
  await vi.waitFor(() => expect(b.bus.size(topic)).toBe(2), { timeout: 5000, interval: 20 });
  a.bus.leave(topic, churner);
  await vi.waitFor(() => expect(b.bus.size(topic)).toBe(1), { timeout: 5000, interval: 20 });
  expect(onA.unsubscribe).toBe(0);
  // After the linger the subscription ends, once.
  await vi.waitFor(() => expect(onA.unsubscribe).toBe(1), { timeout: 5000, interval: 20 });
  expect(a.bus.size(topic)).toBe(0);
});
