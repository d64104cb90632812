/**
 * WS /sealed/<room>?token=JWT: the relay path for sealed rooms (docs/PROTOCOL-sealed.md): opaque
 * envelopes, stored (STORAGE) and fanned out (REDIS_URL) without ever being opened. Wires its
 * storage into readiness and the shutdown phases: drain commits everything accepted, release
 * closes storage. Same limits, close codes and keepalive as /relay.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { Errors } from '@sync-suite/shared';
import { tokenFromRequest } from '../../auth/authenticate.js';
import { SealedRoomSource } from '../../sealed/admin-source.js';
import { SealedConnection, type SealedDeps } from '../../sealed/connection.js';
import { createSealedFanout } from '../../sealed/redis-fanout.js';
import { SealedRegistry } from '../../sealed/registry.js';
import { createSealedStore } from '../../sealed/store/create.js';
import { MemorySealedStore } from '../../sealed/store/memory.js';
import { Keepalive } from '../../ws/keepalive.js';
import { setFramePayloadLimit } from '../../ws/ws-internals.js';
import { releaseUpgrade } from '../../ws/upgrade-hooks.js';

const MIN_BUFFERED_BYTES = 16 * 1024 * 1024;
const PING_INTERVAL_MS = 30_000;

export async function sealedRoutes(app: FastifyInstance): Promise<void> {
  const ctx = app.sync;
  const { config } = ctx;
  const log = ctx.log.child({ component: 'sealed' });
  const store = createSealedStore(config, ctx.metrics, ctx.sqliteThreads);
  const fanout = await createSealedFanout(app);
  await store.init();
  const registry = new SealedRegistry({
    store,
    fanout,
    metrics: ctx.metrics,
    log,
    flushMs: config.PERSIST_FLUSH_MS,
    idleMs: config.ROOM_IDLE_MS,
    snapshotAfter: config.SEALED_SNAPSHOT_AFTER,
    refutationIntervalMs: config.SEALED_REFUTATION_INTERVAL_MS,
    maxPeersPerRoom: config.MAX_PEERS_PER_ROOM,
    changes: ctx.changes,
    roomMaxBytes: config.ROOM_MAX_BYTES,
  });
  ctx.admin.addSource(new SealedRoomSource(registry));
  const keepalive = new Keepalive(PING_INTERVAL_MS);
  const deps: SealedDeps = { ctx, registry, keepalive, admission: ctx.admission, turns: ctx.turns, maxBufferedBytes: Math.max(2 * config.RELAY_MAX_MESSAGE_BYTES, MIN_BUFFERED_BYTES), quotas: app.roomQuotas };

  ctx.readiness.register('sealed-storage', () => store.check());
  // Elsewhere the sealed rooms share the relay's database, already measured (relay/rooms-plugin.ts).
  if (store instanceof MemorySealedStore) ctx.storageSize.add(() => store.storageBytes());
  ctx.lifecycle.on('drain', () => registry.drain());
  ctx.lifecycle.on('release', async () => {
    keepalive.stop();
    registry.close();
    await store.close();
  });
  app.decorate('sealedRooms', registry);

  const handler = (socket: WebSocket, req: FastifyRequest): void => {
    setFramePayloadLimit(socket, config.RELAY_MAX_MESSAGE_BYTES);
    releaseUpgrade(app, socket, 'sealed');
    const conn = new SealedConnection(socket, deps, log);
    // The instance cap and the per-address budget were checked on the upgrade (ws/admission.ts).
    const room = (req.params as Record<string, string | undefined>)['*'] ?? '';
    conn.open(room, tokenFromRequest(req), (sub) => ctx.admission.admit(req, socket, sub)).catch((err: unknown) => {
      log.error({ err, conn: conn.id }, 'sealed connection failed to open');
      conn.reject(Errors.ERR_INTERNAL.closeCode, Errors.ERR_INTERNAL.message, 'internal');
    });
  };
  app.get('/sealed/*', { websocket: true }, handler);
  app.get('/sealed', { websocket: true }, handler);
}

declare module 'fastify' {
  interface FastifyInstance {
    /** the sealed rooms in memory (registered with fastify-plugin by app.ts, so on the root instance) */
    sealedRooms: SealedRegistry;
  }
}

/** The sealed rooms, for tests: `app.sealedRooms`. */
export function sealedRegistry(app: FastifyInstance): SealedRegistry | undefined {
  return app.sealedRooms;
}
