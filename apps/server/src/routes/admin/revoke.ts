/** POST /admin/revoke {"sub"|"jti", "until"?}: refuse matching tokens until `until`, close their sockets everywhere. */
import type { FastifyInstance } from 'fastify';
import { CLOCK_SKEW_SECONDS, TOKEN_ID_MAX_LENGTH, isTokenId } from '@sync-suite/shared';
import type { Revocation } from '../../auth/revocations.js';
import { badRequest } from './reply.js';

/**
 * How long a revocation lasts, from the latest `exp` it must cover (the caller's `until`, or by
 * default the latest `exp` a token may carry now: TOKEN_MAX_TTL_SECONDS + 30 s ahead without
 * `iat`): a token is accepted until its `exp` + 30 s of clock skew
 * (packages/shared/src/auth/room-token.ts), so a revocation that ended at `exp` would let it in
 * again for those 30 s.
 */
function coveredUntil(lastExp: number): number {
  return lastExp + CLOCK_SKEW_SECONDS;
}

type Parsed = { ok: true; revocation: Revocation } | { ok: false; message: string };

export function parseRevoke(body: unknown, now: number, maxTtlSeconds: number): Parsed {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { ok: false, message: 'body must be a JSON object' };
  const { sub, jti, until } = body as Record<string, unknown>;
  // the rule verifyRoomToken applies to the tokens themselves (packages/shared/src/auth/token-id.ts)
  const id = (v: unknown): v is string | undefined => v === undefined || isTokenId(v);
  if (!id(sub) || !id(jti)) {
    return { ok: false, message: `sub and jti are non-empty strings of at most ${TOKEN_ID_MAX_LENGTH} characters, without control characters` };
  }
  if (sub === undefined && jti === undefined) return { ok: false, message: 'give "sub" or "jti"' };
  if (until !== undefined && (typeof until !== 'number' || !Number.isSafeInteger(until + CLOCK_SKEW_SECONDS) || until <= now)) {
    return { ok: false, message: '"until" is a whole number of unix seconds in the future' };
  }
  const revocation: Revocation = { until: coveredUntil(until ?? now + maxTtlSeconds + CLOCK_SKEW_SECONDS) };
  if (sub !== undefined) revocation.sub = sub;
  if (jti !== undefined) revocation.jti = jti;
  return { ok: true, revocation };
}

export async function revokeRoutes(app: FastifyInstance): Promise<void> {
  const { admin, config, metrics } = app.sync;
  app.post('/admin/revoke', { bodyLimit: 4096 }, async (req, reply) => {
    const parsed = parseRevoke(req.body, Math.floor(Date.now() / 1000), config.TOKEN_MAX_TTL_SECONDS);
    if (!parsed.ok) {
      metrics.adminRequests.inc({ action: 'revoke', outcome: 'bad_request' });
      return badRequest(reply, parsed.message);
    }
    const { revocation } = parsed;
    const done = await admin.revoke(revocation);
    metrics.adminRequests.inc({ action: 'revoke', outcome: 'ok' });
    req.log.info({ admin: 'revoke', ip: req.ip, ...revocation, closed: done.closed, instances: done.instances }, 'admin: token revoked');
    return { revoked: revocation, closed: done.closed, instances: done.instances };
  });
}
