/**
 * buildServer(config): the whole server as a Fastify instance, not yet listening.
 * main.ts listens on it; tests listen on port 0 and close it.
 */
import { randomUUID } from 'node:crypto';
import fastifyWebsocket from '@fastify/websocket';
import fp from 'fastify-plugin';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import { closeWith } from '@sync-suite/shared';
import { createLogger, createServerMetrics, type Logger, type ServerConfig } from '@sync-suite/shared/node';
import { installAdminBus } from './admin/install-bus.js';
import { AdminHub } from './admin/hub.js';
import { Authenticator } from './auth/authenticate.js';
import { LiveSockets } from './auth/live-sockets.js';
import { RevocationList } from './auth/revocations.js';
import type { ServerContext } from './context.js';
import { Readiness } from './health/readiness.js';
import { clientErrorHandler, installErrorHandler } from './http/client-errors.js';
import { installCors } from './http/cors.js';
import redisLinkPlugin from './fanout/redis-link-plugin.js';
import relayRoomsPlugin from './relay/rooms-plugin.js';
import quotasPlugin from './limits/quotas-plugin.js';
import { Lifecycle } from './lifecycle/shutdown.js';
import { Admission } from './ws/admission.js';
import { metricOnCollect, UnsentBudget } from './ws/unsent-budget.js';
import { TurnFlush } from './ws/turn-output.js';
import { endpointOf, installAdmission, onSocketError } from './ws/upgrade-hooks.js';
import { StorageSize } from './status/storage-size.js';
import { SqliteThreads } from './storage/sqlite-thread.js';
import { adminRoutes } from './routes/admin/index.js';
import { healthRoutes } from './routes/health/index.js';
import { metricsRoutes } from './routes/metrics/index.js';
import { relayRoutes } from './routes/relay/index.js';
import { sealedRoutes } from './routes/sealed/index.js';
import { signalingRoutes } from './routes/signaling/index.js';
import { statusRoutes } from './routes/status/index.js';
import { turnCredentialsRoutes } from './routes/turn-credentials/index.js';
import { createRoomChanges } from './webhooks/create.js';

export interface BuildOptions {
  /** a pino logger (tests pass one writing to a sink) */
  logger?: Logger;
}

export async function buildServer(config: ServerConfig, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const logger = opts.logger ?? createLogger({ level: config.LOG_LEVEL, name: 'sync-server' });
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    genReqId: () => randomUUID(),
    trustProxy: config.TRUST_PROXY,
    // Time allowed for in-flight HTTP requests once close() starts; sockets are closed by us.
    forceCloseConnections: 'idle',
    // Keep answering while shutdown drains: /readyz must say 503 naming the check (README "Endpoints") and
    // /healthz stays 200 while the process runs; Fastify's blanket 503 would hide both.
    return503OnClosing: false,
    clientErrorHandler,
    // Slow or half-sent requests must not hold sockets forever (SECURITY.md, "Limits").
    connectionTimeout: config.HTTP_CONNECTION_TIMEOUT_MS,
    keepAliveTimeout: config.HTTP_KEEPALIVE_TIMEOUT_MS,
    requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
    http: {
      headersTimeout: config.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeout: config.HTTP_REQUEST_TIMEOUT_MS,
      // Node checks both timeouts only this often (30 s by default).
      connectionsCheckingInterval: checkingInterval(config.HTTP_HEADERS_TIMEOUT_MS),
    },
  });

  const secrets = [config.AUTH_SECRET, config.AUTH_SECRET_PREVIOUS].filter((s): s is string => !!s);
  const metrics = createServerMetrics();
  const lifecycle = new Lifecycle();
  const revocations = new RevocationList();
  const live = new LiveSockets({
    graceSeconds: config.TOKEN_EXPIRY_GRACE_SECONDS,
    metrics,
    revoked: (s) => revocations.revoked(s),
  });
  const changes = createRoomChanges(app, config, metrics);
  const unsent = new UnsentBudget(config.MAX_UNSENT_BYTES_TOTAL);
  // Exact on a scrape (a recount of the receivers charged since the last one), not per send.
  metricOnCollect(metrics.unsentBytes, () => unsent.recount());
  const context: ServerContext = {
    config,
    log: app.log,
    metrics,
    auth: new Authenticator(secrets, metrics, config.TOKEN_MAX_TTL_SECONDS, revocations),
    roomPolicy: { types: config.ROOM_TYPES, prefix: config.ROOM_PREFIX },
    readiness: new Readiness(() => lifecycle.shuttingDown, { log: app.log.child({ component: 'readiness' }) }),
    lifecycle,
    admission: new Admission({
      maxConnections: config.MAX_CONNECTIONS,
      unauthenticatedPerMinute: config.MAX_UNAUTHENTICATED_UPGRADES_PER_MINUTE,
      // With auth off every caller is the one 'anonymous' sub (auth/authenticate.ts): no per-sub cap.
      maxPerSub: secrets.length > 0 ? config.MAX_CONNECTIONS_PER_SUB : null,
    }),
    turns: new TurnFlush(),
    unsent,
    live,
    revocations,
    admin: new AdminHub({ live, revocations, changes, log: app.log.child({ component: 'admin' }) }),
    changes,
    storageSize: new StorageSize(config.STORAGE, (err) => app.log.warn({ err }, 'storage size unavailable')),
    sqliteThreads: new SqliteThreads(),
  };
  app.decorate('sync', context);
  await context.auth.warm();
  app.decorate('shutdown', () => app.close());
  app.addHook('onClose', async () => {
    live.stop();
    context.admin.stop();
    unsent.stop();
  });

  // Runs before @fastify/websocket's own preClose: commit, then close sockets with 1012.
  app.addHook('preClose', async () => {
    await lifecycle.shutdown((phase, err) => app.log.error({ err, phase }, 'shutdown step failed'));
  });

  const wsOptions = {
    // The largest of the endpoints' limits; /signal lowers it per socket (ws/ws-internals.ts setFramePayloadLimit).
    maxPayload: Math.max(config.SIGNALING_MAX_MESSAGE_BYTES, config.RELAY_MAX_MESSAGE_BYTES),
    // Compression costs CPU per message on the hot path and the payloads are mostly binary.
    perMessageDeflate: false,
    // After our close frame, a peer that does not answer is cut off at once instead of 30 s later.
    closeTimeout: CLOSE_TIMEOUT_MS,
    // ws/admission.ts tracks the open sockets (admission.sockets) without a closure per socket.
    clientTracking: false,
  };
  await app.register(fastifyWebsocket, {
    // closeTimeout is a ws 8 option its type definitions do not list yet.
    options: wsOptions as Omit<typeof wsOptions, 'closeTimeout'>,
    errorHandler: (err, socket, req) => onSocketError(app, err, socket, endpointOf(req.url)),
  });
  installAdmission(app);
  context.lifecycle.on('sockets', () => closeAll(context.turns, app.sync.admission.sockets, ...closeWith('ERR_SHUTTING_DOWN')));

  installErrorHandler(app);
  installCors(app, config.CORS_ORIGINS);
  // Shared services, decorated once on the root instance (fastify-plugin), before the endpoints.
  await app.register(redisLinkPlugin);
  await app.register(relayRoomsPlugin);
  await app.register(quotasPlugin);
  await app.register(healthRoutes);
  await app.register(metricsRoutes);
  await app.register(signalingRoutes);
  await app.register(relayRoutes);
  // fastify-plugin: its `app.sealedRooms` decorator must reach the root instance.
  await app.register(fp(sealedRoutes, { name: 'sync-sealed', fastify: '5.x' }));
  await app.register(turnCredentialsRoutes);
  await app.register(statusRoutes);
  await app.register(adminRoutes);
  await installAdminBus(app);
  return app;
}

/** How long a closing WebSocket waits for the peer's close frame before its socket is destroyed. */
const CLOSE_TIMEOUT_MS = 1000;

function checkingInterval(headersTimeoutMs: number): number {
  return Math.min(30_000, Math.max(100, Math.floor(headersTimeoutMs / 4)));
}

/**
 * Close every socket and wait (bounded) for the close frames to go out. What the sockets were
 * given this turn is written first (ws/turn-output.ts): after ws.close() the socket is no longer
 * OPEN and the end-of-turn flush would drop it.
 */
async function closeAll(turns: TurnFlush, clients: ReadonlySet<WebSocket>, code: number, reason: string): Promise<void> {
  turns.flushNow();
  const closed = [...clients].map(
    (ws) =>
      new Promise<void>((resolve) => {
        if (ws.readyState === ws.CLOSED) return resolve();
        const timer = setTimeout(() => {
          ws.terminate();
          resolve();
        }, 2000);
        ws.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        ws.close(code, reason);
      }),
  );
  await Promise.all(closed);
}
