/** Where a request carries a token: `Authorization: Bearer <token>` or `?token=`. */
import type { FastifyRequest } from 'fastify';
import { sameSecret } from '@sync-suite/shared/node';

type Headers = Record<string, string | string[] | undefined>;

/** The token of an `Authorization: Bearer <token>` header. */
export function bearerToken(headers: Headers): string | undefined {
  const header = headers['authorization'];
  if (typeof header === 'string' && header.startsWith('Bearer ')) return header.slice(7).trim() || undefined;
  return undefined;
}

/** `?token=` (what stock y-websocket and y-webrtc clients can send). */
export function queryToken(query: unknown): string | undefined {
  const token = (query as Record<string, unknown> | undefined)?.['token'];
  return typeof token === 'string' && token.length > 0 ? token : undefined;
}

/**
 * Whether the request carries a static secret (METRICS_TOKEN, ADMIN_TOKEN): always true when
 * none is set; else its bearer token (or, with `query`, its `?token=`) must be it, compared in
 * constant time.
 */
export function secretTokenMatches(req: FastifyRequest, expected: string | undefined, opts: { query?: boolean } = {}): boolean {
  if (!expected) return true;
  const given = [bearerToken(req.headers), opts.query ? queryToken(req.query) : undefined];
  return given.some((token) => token !== undefined && sameSecret(token, expected));
}
