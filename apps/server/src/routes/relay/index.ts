/**
 * WS /relay/<room>?token=JWT: the y-websocket protocol for stock y-websocket clients, over the
 * rooms of `app.relayRooms` (relay/rooms-plugin.ts: storage, fan-out, registry).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { Errors } from '@sync-suite/shared';
import { tokenFromRequest } from '../../auth/authenticate.js';
import { RelayConnection, type RelayDeps } from '../../relay/connection.js';
import { ownString } from '../../ws/conn-log.js';
import { Keepalive } from '../../ws/keepalive.js';
import { setFramePayloadLimit } from '../../ws/ws-internals.js';
import { releaseUpgrade } from '../../ws/upgrade-hooks.js';
import { SubPacer } from '../../limits/sub-pacer.js';

/** Unsent bytes a relay receiver may hold: two messages of the largest size, and at least 16 MiB. */
const MIN_BUFFERED_BYTES = 16 * 1024 * 1024;
const RELAY_PING_INTERVAL_MS = 30_000;

export async function relayRoutes(app: FastifyInstance): Promise<void> {
  const ctx = app.sync;
  const { config } = ctx;
  const log = ctx.log.child({ component: 'relay' });
  // Every 30 s, as the stock y-websocket server; stock clients also close after 30 s of silence.
  const keepalive = new Keepalive(RELAY_PING_INTERVAL_MS);
  const maxBufferedBytes = Math.max(2 * config.RELAY_MAX_MESSAGE_BYTES, MIN_BUFFERED_BYTES);
  // Per token sub: with auth off every connection has the same (empty) sub.
  const syncAnswers = config.AUTH_SECRET ? new SubPacer(config.RELAY_LARGE_SYNC_ANSWERS_PER_MINUTE) : null;
  const deps: RelayDeps = { ctx, log, registry: app.relayRooms, keepalive, admission: ctx.admission, turns: ctx.turns, maxBufferedBytes, quotas: app.roomQuotas, syncAnswers };
  ctx.lifecycle.on('release', () => {
    keepalive.stop();
  });

  const handler = (socket: WebSocket, req: FastifyRequest): void => {
    setFramePayloadLimit(socket, config.RELAY_MAX_MESSAGE_BYTES);
    releaseUpgrade(app, socket, 'relay');
    const conn = new RelayConnection(socket, deps);
    // The instance cap and the per-address budget were checked on the upgrade (ws/admission.ts).
    const room = ownString((req.params as Record<string, string | undefined>)['*'] ?? '');
    conn.open(room, tokenFromRequest(req), (sub) => ctx.admission.admit(req, socket, sub)).catch((err: unknown) => {
      log.error({ err, conn: conn.id }, 'relay connection failed to open');
      conn.reject(Errors.ERR_INTERNAL.closeCode, Errors.ERR_INTERNAL.message, 'internal');
    });
  };
  app.get('/relay/*', { websocket: true }, handler);
  app.get('/relay', { websocket: true }, handler);
}
