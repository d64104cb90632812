/**
 * The server's one Redis link, as the Fastify decorator `app.redisLink` (null without
 * REDIS_URL), registered once by buildServer before the endpoints that use it. It is shared by
 * signaling and relay, checked by /readyz as `redis`, and closed with the app after the
 * shutdown phases have committed and published everything.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { StartupError, describeUrl, withoutSecrets } from '@sync-suite/shared/node';
import type { RedisLink } from './redis-link.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** connected Redis link; rejects when REDIS_URL cannot be reached; null without REDIS_URL */
    redisLink: Promise<RedisLink> | null;
  }
}

async function redisLinkPlugin(app: FastifyInstance): Promise<void> {
  const ctx = app.sync;
  const url = ctx.config.REDIS_URL;
  if (!url) return void app.decorate('redisLink', null);
  // ioredis is loaded only when REDIS_URL is set: a single instance never pays for it (bench/memory.ts).
  const link = import('./redis-link.js').then(({ RedisLink }) => {
    const created = new RedisLink({ url, metrics: ctx.metrics, log: ctx.log.child({ component: 'redis' }) });
    ctx.readiness.register('redis', () => created.check());
    app.addHook('onClose', () => created.close());
    return created.connect().then(
      () => created,
      async (err: unknown) => {
        await created.close();
        const reason = err instanceof Error ? err.message : String(err);
        throw new StartupError('REDIS_URL', `cannot connect to Redis at ${describeUrl(url)}: ${withoutSecrets(reason, url)}`);
      },
    );
  });
  // The endpoints that use the link await it (and fail the start-up); until they do, a failed
  // connection must not count as an unhandled rejection.
  link.catch(() => undefined);
  app.decorate('redisLink', link);
}

export default fp(redisLinkPlugin, { name: 'sync-redis-link', fastify: '5.x' });
