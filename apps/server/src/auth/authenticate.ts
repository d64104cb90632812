/**
 * One place that turns a request's token into claims (or a refusal), for every endpoint.
 * With auth off (no AUTH_SECRET) every caller gets claims that cover all rooms with write scope.
 */
import { webcrypto } from 'node:crypto';
import { tokenCoversRoom, verifyRoomToken, type ErrorCode, type RoomTokenClaims, type TokenFailure } from '@sync-suite/shared';
import type { ServerMetrics } from '@sync-suite/shared/node';
import { bearerToken, queryToken } from './request-token.js';
import type { RevocationList } from './revocations.js';

export type AuthEndpoint = 'signal' | 'relay' | 'turn' | 'metrics' | 'status' | 'sealed';

export type AuthFailure = TokenFailure | 'revoked';
/** The error a refused token closes its socket with (docs/errors.md), on every endpoint. */
const REFUSALS: Partial<Record<AuthFailure, ErrorCode>> = {
  missing: 'ERR_TOKEN_MISSING',
  revoked: 'ERR_TOKEN_REVOKED',
  ttl_too_long: 'ERR_TOKEN_TTL',
};

export function tokenRefusal(reason: AuthFailure): ErrorCode {
  return REFUSALS[reason] ?? 'ERR_TOKEN_INVALID';
}

export type AuthResult = { ok: true; claims: RoomTokenClaims } | { ok: false; reason: AuthFailure };

/**
 * `exp` first: an object literal with the keys of verifyRoomToken's claims in the same order
 * shares their hidden class, and this exp, too large for a small integer, made V8 keep `exp` as a
 * boxed number (16 B) in every verified token's claims and in every connection that copies it.
 */
const OPEN_CLAIMS: RoomTokenClaims = { exp: Number.MAX_SAFE_INTEGER, sub: 'anonymous', rooms: ['*'], scope: 'write' };

export class Authenticator {
  constructor(
    private readonly secrets: readonly string[],
    private readonly metrics: ServerMetrics,
    /** tokens living longer are refused (TOKEN_MAX_TTL_SECONDS) */
    private readonly maxTtlSeconds: number = Number.MAX_SAFE_INTEGER,
    /** revoked subjects and token ids (POST /admin/revoke) */
    readonly revocations?: RevocationList,
  ) {}

  get enabled(): boolean {
    return this.secrets.length > 0;
  }

  /**
   * Loads Node's WebCrypto (jose verifies with it) now: it loads on first use, and that first use
   * was the first connection after a restart, which waited about 3 ms more (bench/cold-load.ts).
   */
  async warm(): Promise<void> {
    if (!this.enabled) return;
    await webcrypto.subtle.importKey('raw', new Uint8Array(32), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  }

  async verify(token: string | undefined, endpoint: AuthEndpoint): Promise<AuthResult> {
    if (!this.enabled) return { ok: true, claims: OPEN_CLAIMS };
    const verified = await verifyRoomToken(token, this.secrets, { maxTtlSeconds: this.maxTtlSeconds });
    const result: AuthResult = verified.ok && this.revocations?.revoked(verified.claims) ? { ok: false, reason: 'revoked' } : verified;
    if (!result.ok) this.metrics.authFailures.inc({ endpoint, reason: result.reason });
    return result;
  }

  /** Counts a refusal for a room outside the token's `rooms`. */
  covers(claims: RoomTokenClaims, room: string, endpoint: AuthEndpoint): boolean {
    if (tokenCoversRoom(claims, room)) return true;
    this.metrics.authFailures.inc({ endpoint, reason: 'room_not_covered' });
    return false;
  }
}

/** The token from `?token=` (stock clients' params) or `Authorization: Bearer`. */
export function tokenFromRequest(req: { query: unknown; headers: Record<string, string | string[] | undefined> }): string | undefined {
  return queryToken(req.query) ?? bearerToken(req.headers);
}
