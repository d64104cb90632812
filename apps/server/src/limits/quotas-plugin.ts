/**
 * The storage quotas as the Fastify decorator `app.roomQuotas`, registered once by buildServer
 * (fastify-plugin) after the Redis link and before the endpoints: /relay and /sealed share one
 * new-room quota, since MAX_NEW_ROOMS_PER_SUB_PER_HOUR is per sub whatever the endpoint.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { redisKeys } from '../fanout/redis-keys.js';
import { NewRoomLimiter, RedisNewRoomQuota, type NewRoomQuota } from './new-rooms.js';

export interface RoomQuotas {
  /** ROOM_MAX_BYTES */
  roomMaxBytes: number;
  /** MAX_NEW_ROOMS_PER_SUB_PER_HOUR, counted in Redis with REDIS_URL; null with auth off (no sub) */
  newRooms: NewRoomQuota | null;
}

declare module 'fastify' {
  interface FastifyInstance {
    roomQuotas: RoomQuotas;
  }
}

async function quotasPlugin(app: FastifyInstance): Promise<void> {
  const ctx = app.sync;
  const { config } = ctx;
  const perHour = config.MAX_NEW_ROOMS_PER_SUB_PER_HOUR;
  const link = app.redisLink;
  const newRooms = !ctx.auth.enabled
    ? null
    : link
      ? new RedisNewRoomQuota({ perHour, link, keys: redisKeys(config.REDIS_PREFIX), log: ctx.log.child({ component: 'quota' }) })
      : new NewRoomLimiter(perHour);
  app.decorate('roomQuotas', { roomMaxBytes: config.ROOM_MAX_BYTES, newRooms });
  ctx.lifecycle.on('release', () => newRooms?.stop());
}

export default fp(quotasPlugin, { name: 'sync-room-quotas', fastify: '5.x', dependencies: ['sync-redis-link'] });
