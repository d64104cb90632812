/** Every variable of apps/turn, with its default (README "Configuration", checked by a test). */
import { z } from 'zod';
import { bool, csv, logLevel, port, positiveInt, secret } from './env.js';

export const turnEnvSchema = z.object({
  TURN_LISTEN_IP: z.ipv4().or(z.ipv6()).default('0.0.0.0'),
  TURN_PORT: port.default(3478),
  TURN_SECRET: secret,
  TURN_SECRET_PREVIOUS: secret.optional(),
  TURN_REALM: z.string().min(1).default('sync-suite'),
  // the server's credential lifetime (server-config.ts): usernames expiring further ahead are refused
  TURN_TTL_SECONDS: positiveInt.default(3600),
  TURN_RELAY_IP: z.ipv4().or(z.ipv6()).optional(),
  TURN_EXTERNAL_IP: z.ipv4().or(z.ipv6()).optional(),
  TURN_MIN_PORT: port.default(49152),
  TURN_MAX_PORT: port.default(65535),
  TURN_DENY_PEERS: csv.optional(),
  TURN_ALLOW_LOOPBACK_PEERS: bool.default(false),
  TURN_USER_QUOTA: positiveInt.default(10),
  TURN_TOTAL_QUOTA: positiveInt.default(1000),
  TURN_MAX_LIFETIME_SECONDS: positiveInt.default(3600),
  TURN_MAX_PEERS_PER_REQUEST: positiveInt.default(16),
  TURN_MAX_PERMISSIONS: positiveInt.default(128),
  TURN_MAX_CHANNELS: positiveInt.pipe(z.number().max(0x4000)).default(64),
  TURN_MAX_RESERVATIONS: positiveInt.default(64),
  TURN_REFUSAL_LOGS_PER_MINUTE: positiveInt.default(60),
  TURN_UDP_INTERNALS: bool.default(true),
  TURN_UDP_NATIVE: bool.default(true),
  // Loopback: /metrics tells allocation and refusal counts to anyone who reaches it (docs/turn.md).
  TURN_METRICS_HOST: z.string().default('127.0.0.1'),
  TURN_METRICS_PORT: port.default(9641),
  METRICS_TOKEN: z.string().min(1).optional(),
  LOG_LEVEL: logLevel.default('info'),
});

export const turnConfigSchema = turnEnvSchema.superRefine((c, ctx) => {
  if (c.TURN_MIN_PORT > c.TURN_MAX_PORT) {
    ctx.addIssue({ code: 'custom', path: ['TURN_MIN_PORT'], message: 'must not exceed TURN_MAX_PORT' });
  }
});

export type TurnConfig = z.output<typeof turnConfigSchema>;
