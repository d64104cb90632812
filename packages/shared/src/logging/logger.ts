/**
 * pino JSON logs with tokens kept out: `authorization` headers are censored by path,
 * and URL query parameters that may hold secrets are rewritten before they are logged.
 */
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { stdoutDestination } from './stdout-destination.js';

const SECRET_NAMES = new Set(['token', 'access_token', 'auth', 'password', 'secret', 'credential']);
// One query parameter; stops at whitespace too, so a URL inside a log message keeps the words after it.
const QUERY_PARAM = /([?&])([^=&#\s]*)=([^&#\s]*)/g;

/**
 * The name as the server's query parser reads it (percent-decoded, `+` as space), in lower case:
 * `?%74oken=` and `?TOKEN=` are redacted like `?token=`.
 */
function paramName(raw: string): string {
  let name = raw.replace(/\+/g, ' ');
  try {
    name = decodeURIComponent(name);
  } catch {
    // a malformed escape: the parser keeps it as is
  }
  return name.trim().toLowerCase();
}

export function redactUrl(url: string): string {
  return url.replace(QUERY_PARAM, (whole: string, sep: string, name: string) =>
    SECRET_NAMES.has(paramName(name)) ? `${sep}${name}=[REDACTED]` : whole,
  );
}

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["sec-websocket-protocol"]',
  'headers.authorization',
  'authorization',
  'token',
  '*.token',
  'password',
  '*.password',
  'credential',
  '*.credential',
  'secret',
  '*.secret',
];

interface RequestLike {
  id?: unknown;
  method?: string;
  url?: string;
  hostname?: string;
  ip?: string;
}

export const serializers = {
  req(req: RequestLike) {
    return { id: req.id, method: req.method, url: req.url ? redactUrl(req.url) : undefined, remoteAddress: req.ip };
  },
};

/** Top-level keys that hold a URL (e.g. @fastify/websocket logs `{ path: req.url }`). */
const URL_KEYS = ['url', 'path'] as const;

function redactUrlKeys(obj: Record<string, unknown>): Record<string, unknown> {
  let out = obj;
  for (const key of URL_KEYS) {
    const value = obj[key];
    if (typeof value === 'string' && value.includes('?')) {
      if (out === obj) out = { ...obj };
      out[key] = redactUrl(value);
    }
  }
  return out;
}

export function loggerOptions(level: string, name?: string): LoggerOptions {
  return {
    level,
    ...(name ? { name } : {}),
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    serializers,
    formatters: { log: redactUrlKeys },
    hooks: {
      // Messages can embed a URL too (Fastify's "Route GET:/x?token=... not found").
      logMethod(args, method) {
        const clean = args.map((a: unknown) => (typeof a === 'string' && a.includes('?') ? redactUrl(a) : a));
        method.apply(this, clean as Parameters<typeof method>);
      },
    },
  };
}

export function createLogger(opts: { level?: string; name?: string; destination?: DestinationStream } = {}): Logger {
  const options = loggerOptions(opts.level ?? 'info', opts.name);
  return pino(options, opts.destination ?? stdoutDestination());
}

export type { Logger };
