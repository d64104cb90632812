/**
 * What every endpoint plugin gets from the app: config, logger, metrics, auth,
 * readiness checks and shutdown hooks. Decorated on the Fastify instance as `app.sync`.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { RoomNamePolicy } from '@sync-suite/shared';
import type { ServerConfig, ServerMetrics } from '@sync-suite/shared/node';
import type { Authenticator } from './auth/authenticate.js';
import type { LiveSockets } from './auth/live-sockets.js';
import type { RevocationList } from './auth/revocations.js';
import type { AdminHub } from './admin/hub.js';
import type { RoomChangeNotifier } from './webhooks/room-changes.js';
import type { Readiness } from './health/readiness.js';
import type { Lifecycle } from './lifecycle/shutdown.js';
import type { Admission } from './ws/admission.js';
import type { TurnFlush } from './ws/turn-output.js';
import type { UnsentBudget } from './ws/unsent-budget.js';
import type { StorageSize } from './status/storage-size.js';
import type { SqliteThreads } from './storage/sqlite-thread.js';

export interface ServerContext {
  config: ServerConfig;
  log: FastifyBaseLogger;
  metrics: ServerMetrics;
  auth: Authenticator;
  roomPolicy: RoomNamePolicy;
  readiness: Readiness;
  lifecycle: Lifecycle;
  /** who may open a WebSocket (instance cap, per-address budget of unauthenticated upgrades) */
  admission: Admission;
  /** writes each WebSocket's output of a turn at its end, for every endpoint (ws/turn-output.ts) */
  turns: TurnFlush;
  /** MAX_UNSENT_BYTES_TOTAL: unsent bytes of every endpoint's receivers, and who is dropped past it (ws/unsent-budget.ts) */
  unsent: UnsentBudget;
  /** sockets admitted by a token: closed on expiry and revocation */
  live: LiveSockets;
  revocations: RevocationList;
  /** admin operations (revoke, room delete) on this instance and the others; room sources register here */
  admin: AdminHub;
  /** where relayed (and sealed) rooms report committed changes: webhooks */
  changes: RoomChangeNotifier;
  /** what storage holds, for the status page: storage registers how to measure itself */
  storageSize: StorageSize;
  /** the SQLite storage threads, one per file, shared by the relay's and the sealed engine */
  sqliteThreads: SqliteThreads;
}

declare module 'fastify' {
  interface FastifyInstance {
    sync: ServerContext;
    /** Graceful shutdown: readiness 503, commit, close sockets 1012, close the app. */
    shutdown(): Promise<void>;
  }
}
