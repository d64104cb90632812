/** Every variable of apps/server, with its default (README "Configuration", checked by a test). */
import { z } from 'zod';
import { bool, csv, logLevel, nonNegativeInt, port, positiveInt, secret } from './env.js';
import { DEFAULT_ROOM_TYPES } from '../rooms/room-name.js';
import { isProduction } from './node-env.js';

/** AUTH_SECRET and AUTH_SECRET_PREVIOUS; the token CLI checks its secret with it too. */
export const authSecret = secret;

export const serverEnvSchema = z.object({
  NODE_ENV: z.string().default('development'),
  HOST: z.string().default('0.0.0.0'),
  PORT: port.default(4444),
  AUTH_SECRET: authSecret.optional(),
  AUTH_SECRET_PREVIOUS: authSecret.optional(),
  STORAGE: z.enum(['sqlite', 'postgres', 'memory']).default('sqlite'),
  DATA_DIR: z.string().default('./data'),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
  REDIS_PREFIX: z.string().regex(/^[A-Za-z0-9_:.-]{1,64}$/, 'must match [A-Za-z0-9_:.-]{1,64}').default('sync-suite:'),
  REDIS_MAX_RELAY_MESSAGE_BYTES: positiveInt.default(1048576),
  ROOM_PREFIX: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, 'must match [a-z0-9][a-z0-9_-]{0,31}').optional(),
  ROOM_TYPES: csv
    .pipe(z.array(z.string().regex(/^[a-z0-9_]+$/, 'types are [a-z0-9_]+')).min(1))
    .default([...DEFAULT_ROOM_TYPES]),
  TURN_SECRET: secret.optional(),
  TURN_URLS: csv.pipe(z.array(z.string().regex(/^(turns?|stun):/, 'must start with turn:, turns: or stun:'))).optional(),
  TURN_TTL_SECONDS: positiveInt.default(3600),
  TURN_METRICS_URL: z.url({ protocol: /^https?$/ }).optional(),
  MAX_PEERS_PER_ROOM: positiveInt.default(50),
  MAX_TOPICS_PER_CONNECTION: positiveInt.default(100),
  SIGNALING_TOPIC_JOINS_PER_MINUTE: positiveInt.default(200),
  MAX_CONNECTIONS: positiveInt.default(10000),
  MAX_CONNECTIONS_PER_SUB: positiveInt.default(1000),
  SIGNALING_MAX_MESSAGE_BYTES: positiveInt.default(65536),
  RELAY_MAX_MESSAGE_BYTES: positiveInt.default(10485760),
  MAX_MESSAGES_PER_SECOND: positiveInt.default(200),
  SIGNALING_PING_INTERVAL_MS: positiveInt.default(30000),
  PERSIST_FLUSH_MS: positiveInt.default(50),
  ROOM_IDLE_MS: nonNegativeInt.default(5000),
  COMPACT_AFTER_UPDATES: positiveInt.default(500),
  SHUTDOWN_TIMEOUT_MS: positiveInt.default(10000),
  WARM_UP_AT_START: bool.default(true),
  TRUST_PROXY: bool.default(false),
  CORS_ORIGINS: csv.pipe(z.array(z.string().regex(/^(\*|https?:\/\/[^/\s]+)$/, 'origins are * or scheme://host[:port]')).min(1)).default(['*']),
  METRICS_TOKEN: z.string().min(1).optional(),
  LOG_LEVEL: logLevel.default('info'),
  SEALED_ROOM_TYPES: csv.pipe(z.array(z.string().regex(/^[a-z0-9_]+$/, 'types are [a-z0-9_]+'))).optional(),
  SEALED_SNAPSHOT_AFTER: positiveInt.default(500),
  SEALED_REFUTATION_INTERVAL_MS: positiveInt.default(30000),
  SEALED_MAX_PRESENCE_BYTES: positiveInt.default(16384),
  HTTP_HEADERS_TIMEOUT_MS: positiveInt.default(10000),
  HTTP_REQUEST_TIMEOUT_MS: positiveInt.default(30000),
  HTTP_KEEPALIVE_TIMEOUT_MS: positiveInt.default(5000),
  HTTP_CONNECTION_TIMEOUT_MS: positiveInt.default(60000),
  MAX_UNAUTHENTICATED_UPGRADES_PER_MINUTE: positiveInt.default(300),
  RATE_LIMIT_ABUSE_FACTOR: positiveInt.default(10),
  RATE_LIMIT_ABUSE_SECONDS: positiveInt.default(10),
  TOKEN_MAX_TTL_SECONDS: positiveInt.default(86400),
  TOKEN_EXPIRY_GRACE_SECONDS: nonNegativeInt.default(30),
  ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  // No user:password@: fetch refuses such a URL on every attempt, and the error would carry it.
  WEBHOOK_URL: z
    .url({ protocol: /^https?$/ })
    .refine((u) => {
      const url = new URL(u);
      return url.username === '' && url.password === '';
    }, 'must not hold a user name or password (user:password@); authenticate the receiver by the signature, WEBHOOK_SECRET')
    .optional(),
  WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  WEBHOOK_DEBOUNCE_MS: positiveInt.default(2000),
  WEBHOOK_QUEUE_SIZE: positiveInt.default(10000),
  ROOM_MAX_BYTES: positiveInt.default(268435456),
  MAX_NEW_ROOMS_PER_SUB_PER_HOUR: positiveInt.default(200),
  RELAY_MAX_UPDATE_DEPTH: positiveInt.default(64),
  RELAY_MAX_UPDATE_STRUCTS: positiveInt.default(250000),
  RELAY_MAX_UPDATE_DELETE_RANGES: positiveInt.default(200000),
  RELAY_MAX_UPDATE_DELETE_CLIENTS: positiveInt.default(20000),
  RELAY_MAX_UPDATE_SUBDOCS: nonNegativeInt.default(1000),
  RELAY_MAX_UPDATE_CONTENT_BYTES: positiveInt.default(10485760),
  RELAY_MAX_KEY_BYTES: positiveInt.default(4096),
  RELAY_MAX_VALUE_DEPTH: positiveInt.default(32),
  RELAY_MAX_PENDING_BYTES: positiveInt.default(65536),
  RELAY_MAX_AWARENESS_BYTES: positiveInt.default(16384),
  RELAY_MAX_AWARENESS_STATES: positiveInt.default(4),
  RELAY_AWARENESS_QUERY_INTERVAL_MS: nonNegativeInt.default(1000),
  RELAY_SYNC_ANSWER_INTERVAL_MS: nonNegativeInt.default(1000),
  RELAY_LARGE_SYNC_ANSWERS_PER_MINUTE: positiveInt.default(30),
  RELAY_MAX_OUTGOING_BYTES: positiveInt.default(67108864),
  MAX_UNSENT_BYTES_TOTAL: positiveInt.default(268435456),
  RELAY_MAX_PENDING_DELETE_BYTES: nonNegativeInt.default(512),
  RELAY_MAX_STATE_VECTOR_CLIENTS: positiveInt.default(20000),
  TURN_CREDENTIALS_PER_MINUTE: positiveInt.default(30),
});

/** room, bus header and message framing around one presence state on Redis */
export const REDIS_PRESENCE_MARGIN_BYTES = 128;

export const serverConfigSchema = serverEnvSchema.superRefine((c, ctx) => {
  if (isProduction(c.NODE_ENV) && !c.AUTH_SECRET) {
    ctx.addIssue({ code: 'custom', path: ['AUTH_SECRET'], message: 'required when NODE_ENV=production' });
  }
  if (c.STORAGE === 'postgres' && !c.DATABASE_URL) {
    ctx.addIssue({ code: 'custom', path: ['DATABASE_URL'], message: 'required when STORAGE=postgres' });
  }
  if (c.HTTP_HEADERS_TIMEOUT_MS > c.HTTP_REQUEST_TIMEOUT_MS) {
    ctx.addIssue({ code: 'custom', path: ['HTTP_HEADERS_TIMEOUT_MS'], message: 'must not exceed HTTP_REQUEST_TIMEOUT_MS' });
  }
  if (c.WEBHOOK_URL && !c.WEBHOOK_SECRET) {
    ctx.addIssue({ code: 'custom', path: ['WEBHOOK_SECRET'], message: 'required when WEBHOOK_URL is set (receivers verify the signature)' });
  }
  // One presence state or sealed presence envelope goes to the other instances in one message
  // (apps/server/src/fanout/redis-room-fanout.ts, sealed/redis-fanout.ts): a bound below them
  // would silently keep every large presence on its own instance.
  const presence = Math.max(c.RELAY_MAX_AWARENESS_BYTES, c.SEALED_MAX_PRESENCE_BYTES) + REDIS_PRESENCE_MARGIN_BYTES;
  if (c.REDIS_URL && c.REDIS_MAX_RELAY_MESSAGE_BYTES < presence) {
    ctx.addIssue({
      code: 'custom',
      path: ['REDIS_MAX_RELAY_MESSAGE_BYTES'],
      message: `must be at least ${presence} (the larger of RELAY_MAX_AWARENESS_BYTES and SEALED_MAX_PRESENCE_BYTES, plus ${REDIS_PRESENCE_MARGIN_BYTES} for framing)`,
    });
  }
  // The instance's unsent budget (apps/server/src/ws/unsent-budget.ts) must take a largest
  // message to a receiver already holding one, or a big room's readers could never be served.
  if (c.MAX_UNSENT_BYTES_TOTAL < 2 * c.RELAY_MAX_MESSAGE_BYTES) {
    ctx.addIssue({ code: 'custom', path: ['MAX_UNSENT_BYTES_TOTAL'], message: 'must be at least twice RELAY_MAX_MESSAGE_BYTES' });
  }
  if (c.REDIS_URL && c.STORAGE !== 'postgres') {
    ctx.addIssue({
      code: 'custom',
      path: ['REDIS_URL'],
      message: 'multi-instance fan-out needs shared storage: set STORAGE=postgres',
    });
  }
});

export type ServerConfig = z.output<typeof serverConfigSchema>;
