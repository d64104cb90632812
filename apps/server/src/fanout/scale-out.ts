/**
 * Chooses the fan-out: in-process without REDIS_URL, Redis with it. The Redis link is shared by
 * signaling and relay (one per server), checked by /readyz as `redis`, and closed with the app
 * after the shutdown phases have committed and published everything.
 */
import type { FastifyInstance } from 'fastify';
import type { ServerContext } from '../context.js';
import { LocalFanout, type RoomFanout } from '../relay/fanout.js';
import type { DocStore } from '../relay/persistence/types.js';
import type { RoomRegistry } from '../relay/room-registry.js';
import { LocalTopicBus } from '../signaling/local-topic-bus.js';
import type { TopicBus } from '../signaling/topic-bus.js';
import { redisKeys } from './redis-keys.js';
import type { RedisLink } from './redis-link.js';
import { RedisRoomFanout } from './redis-room-fanout.js';
import { RedisTopicBus } from './redis-topic-bus.js';

const links = new WeakMap<ServerContext, Promise<RedisLink>>();

/** The server's Redis link, connected; null without REDIS_URL. */
export function redisLinkFor(app: FastifyInstance): Promise<RedisLink> | null {
  const ctx = app.sync;
  const url = ctx.config.REDIS_URL;
  if (!url) return null;
  let link = links.get(ctx);
  if (!link) {
    // ioredis is loaded only when REDIS_URL is set: a single instance never pays for it (bench/memory.ts).
    link = import('./redis-link.js').then(({ RedisLink }) => {
      const created = new RedisLink({ url, metrics: ctx.metrics, log: ctx.log.child({ component: 'redis' }) });
      ctx.readiness.register('redis', () => created.check());
      app.addHook('onClose', () => created.close());
      return created.connect().then(
        () => created,
        async (err: unknown) => {
          await created.close();
          throw new Error(`cannot connect to REDIS_URL: ${err instanceof Error ? err.message : String(err)}`);
        },
      );
    });
    links.set(ctx, link);
  }
  return link;
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

export interface RelayScaleOut {
  fanout: RoomFanout;
  bind(registry: RoomRegistry): void;
}

/** The relay fan-out: local, or across instances through Redis. */
export async function createRelayScaleOut(app: FastifyInstance, store: DocStore): Promise<RelayScaleOut> {
  const pending = redisLinkFor(app);
  if (!pending) return { fanout: new LocalFanout(), bind: () => undefined };
  const fanout = new RedisRoomFanout({
    link: await pending,
    keys: redisKeys(app.sync.config.REDIS_PREFIX),
    store,
    metrics: app.sync.metrics,
    log: app.sync.log.child({ component: 'relay-bus' }),
  });
  return {
    fanout,
    bind: (registry) => fanout.bind(registry),
  };
}
