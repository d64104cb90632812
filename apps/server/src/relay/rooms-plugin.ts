/**
 * The relay's rooms as the Fastify decorator `app.relayRooms`, registered once by buildServer
 * (fastify-plugin, so it lands on the root instance) before the /relay endpoint that uses it.
 * Composes storage (STORAGE), the fan-out (REDIS_URL) and the registry; wires storage into
 * readiness and the shutdown phases: drain commits everything accepted, release closes storage.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { createRelayFanout } from '../fanout/scale-out.js';
import { RelayRoomSource } from './admin-source.js';
import { createDocStore } from './persistence/create-store.js';
import { storageStartupError } from './persistence/storage-startup.js';
import { RoomRegistry } from './room-registry.js';
import { presenceLimitsFrom, updateLimitsFrom } from './update-limits.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** the relay's rooms in memory, with their storage (relay/room-registry.ts) */
    relayRooms: RoomRegistry;
  }
}

async function relayRoomsPlugin(app: FastifyInstance): Promise<void> {
  const ctx = app.sync;
  const { config } = ctx;
  const store = createDocStore(config, ctx.metrics, ctx.sqliteThreads);
  const fanout = await createRelayFanout(app);
  try {
    await store.init();
  } catch (err) {
    throw storageStartupError(config, err);
  }
  const registry = new RoomRegistry({
    store,
    fanout,
    metrics: ctx.metrics,
    log: ctx.log.child({ component: 'relay' }),
    flushMs: config.PERSIST_FLUSH_MS,
    idleMs: config.ROOM_IDLE_MS,
    compactAfter: config.COMPACT_AFTER_UPDATES,
    maxPeersPerRoom: config.MAX_PEERS_PER_ROOM,
    changes: ctx.changes,
    limits: updateLimitsFrom(config),
    presence: presenceLimitsFrom(config),
    roomMaxBytes: config.ROOM_MAX_BYTES,
  });
  ctx.admin.addSource(new RelayRoomSource(store, registry));
  await ctx.admin.useRevocationStore(store);
  ctx.changes.useOutbox(store.webhookOutbox());

  ctx.readiness.register('storage', () => store.check());
  ctx.storageSize.add(() => store.storageBytes());
  ctx.lifecycle.on('drain', () => registry.drain());
  ctx.lifecycle.on('release', async () => {
    try {
      await registry.close();
    } finally {
      // Webhook events of the last commits go to the outbox before storage closes.
      await ctx.changes.close().catch((err: unknown) => ctx.log.warn({ err }, 'webhook events could not all be stored at shutdown'));
      await store.close();
    }
  });
  app.decorate('relayRooms', registry);
}

export default fp(relayRoomsPlugin, { name: 'sync-relay-rooms', fastify: '5.x' });
