/**
 * WS /relay/<room>?token=JWT: the y-websocket protocol for stock y-websocket clients, with
 * rooms loaded from and committed to storage (STORAGE). Wires storage into readiness and the
 * shutdown phases: drain commits everything accepted, release closes storage.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { Errors } from '@sync-suite/shared';
import type { ServerContext } from '../../context.js';
import { tokenFromRequest } from '../../auth/authenticate.js';
import { RelayConnection, type RelayDeps } from '../../relay/connection.js';
import { createRelayScaleOut } from '../../fanout/scale-out.js';
import { Keepalive } from '../../ws/keepalive.js';
import { limitFramePayload } from '../../ws/payload-limit.js';
import { createDocStore } from '../../relay/persistence/create-store.js';
import { storageStartupError } from '../../relay/persistence/storage-startup.js';
import { RoomRegistry } from '../../relay/room-registry.js';
import { RelayRoomSource } from '../../relay/admin-source.js';
import { TurnFlush } from '../../relay/turn-flush.js';
import { sharedNewRoomLimiter } from '../../limits/new-rooms.js';
import { presenceLimitsFrom, updateLimitsFrom } from '../../relay/update-limits.js';

/** Unsent bytes a relay receiver may hold: two messages of the largest size, and at least 16 MiB. */
const MIN_BUFFERED_BYTES = 16 * 1024 * 1024;
const RELAY_PING_INTERVAL_MS = 30_000;

export async function relayRoutes(app: FastifyInstance): Promise<void> {
  const ctx = app.sync;
  const { config } = ctx;
  const log = ctx.log.child({ component: 'relay' });
  const store = createDocStore(config, ctx.metrics);
  const scale = await createRelayScaleOut(app, store);
  try {
    await store.init();
  } catch (err) {
    throw storageStartupError(config, err);
  }
  const registry = new RoomRegistry({
    store,
    fanout: scale.fanout,
    metrics: ctx.metrics,
    log,
    flushMs: config.PERSIST_FLUSH_MS,
    idleMs: config.ROOM_IDLE_MS,
    compactAfter: config.COMPACT_AFTER_UPDATES,
    maxPeersPerRoom: config.MAX_PEERS_PER_ROOM,
    changes: ctx.changes,
    limits: updateLimitsFrom(config),
    presence: presenceLimitsFrom(config),
  });
  scale.bind(registry);
  ctx.admin.addSource(new RelayRoomSource(store, registry));
  await ctx.admin.useRevocationStore(store);
  // Every 30 s, as the stock y-websocket server; stock clients also close after 30 s of silence.
  const keepalive = new Keepalive(RELAY_PING_INTERVAL_MS);
  const maxBufferedBytes = Math.max(2 * config.RELAY_MAX_MESSAGE_BYTES, MIN_BUFFERED_BYTES);
  const newRooms = ctx.auth.enabled ? sharedNewRoomLimiter(ctx, config.MAX_NEW_ROOMS_PER_SUB_PER_HOUR) : null;
  const quotas = { roomMaxBytes: config.ROOM_MAX_BYTES, newRooms };
  const deps: RelayDeps = { ctx, registry, keepalive, turns: new TurnFlush(), maxBufferedBytes, quotas };

  ctx.readiness.register('storage', () => store.check());
  ctx.lifecycle.on('drain', () => registry.drain());
  ctx.lifecycle.on('release', async () => {
    keepalive.stop();
    newRooms?.stop();
    try {
      await registry.close();
    } finally {
      await store.close();
    }
  });
  registries.set(ctx, registry);

  const handler = (socket: WebSocket, req: FastifyRequest): void => {
    limitFramePayload(socket, config.RELAY_MAX_MESSAGE_BYTES);
    const id = randomUUID();
    const conn = new RelayConnection(socket, deps, id, log.child({ conn: id }));
    // The instance cap and the per-address budget were checked on the upgrade (ws/admission.ts).
    const room = (req.params as Record<string, string | undefined>)['*'] ?? '';
    conn.open(room, tokenFromRequest(req), () => ctx.admission.admit(req, socket)).catch((err: unknown) => {
      log.error({ err, conn: id }, 'relay connection failed to open');
      conn.reject(Errors.ERR_INTERNAL.closeCode, Errors.ERR_INTERNAL.message, 'internal');
    });
  };
  app.get('/relay/*', { websocket: true }, handler);
  app.get('/relay', { websocket: true }, handler);
}

// The plugin is encapsulated, so a decorator would not reach the root instance; key by its context.
const registries = new WeakMap<ServerContext, RoomRegistry>();

/** The relay's rooms, for tests and the status page. */
export function relayRegistry(app: FastifyInstance): RoomRegistry | undefined {
  return registries.get(app.sync);
}
