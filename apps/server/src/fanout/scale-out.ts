/**
 * Chooses the fan-out: in-process without REDIS_URL, Redis with it, over the server's one Redis
 * link (`app.redisLink`, fanout/redis-link-plugin.ts).
 */
import type { FastifyInstance } from 'fastify';
import { LocalFanout, type RoomFanout } from '../relay/fanout.js';
import { LocalTopicBus } from '../signaling/local-topic-bus.js';
import type { TopicBus } from '../signaling/topic-bus.js';
import { redisKeys } from './redis-keys.js';
import type { RedisLink } from './redis-link.js';
import { RedisRoomFanout } from './redis-room-fanout.js';
import { RedisTopicBus } from './redis-topic-bus.js';

/** The server's Redis link, connected; null without REDIS_URL. */
export function redisLinkFor(app: FastifyInstance): Promise<RedisLink> | null {
  return app.redisLink;
}

export interface TopicBusOptions {
  maxMembersPerTopic: number;
  onTopicCount?: (count: number) => void;
}

/** The signaling TopicBus: local, or across instances through Redis. */
export async function createTopicBus(app: FastifyInstance, opts: TopicBusOptions): Promise<TopicBus> {
  const pending = redisLinkFor(app);
  if (!pending) return new LocalTopicBus(opts);
  const bus = new RedisTopicBus({
    ...opts,
    link: await pending,
    keys: redisKeys(app.sync.config.REDIS_PREFIX),
    log: app.sync.log.child({ component: 'signal-bus' }),
  });
  app.addHook('onClose', async () => bus.close());
  return bus;
}

/** The relay fan-out: local, or across instances through Redis. */
export async function createRelayFanout(app: FastifyInstance): Promise<RoomFanout> {
  const pending = redisLinkFor(app);
  if (!pending) return new LocalFanout();
  return new RedisRoomFanout({
    link: await pending,
    keys: redisKeys(app.sync.config.REDIS_PREFIX),
    log: app.sync.log.child({ component: 'relay-bus' }),
    maxMessageBytes: app.sync.config.REDIS_MAX_RELAY_MESSAGE_BYTES,
  });
}
