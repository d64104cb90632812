/**
 * Room tokens (README "Endpoints"): HS256 JWTs with `sub`, `exp`, `rooms`, `scope`.
 * Verification accepts several secrets so that AUTH_SECRET can be rotated without downtime.
 */
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { TOKEN_ID_MAX_LENGTH, isTokenId } from './token-id.js';

export const CLOCK_SKEW_SECONDS = 30;
export type TokenScope = 'write' | 'read';

export interface RoomTokenClaims {
  sub: string;
  exp: number;
  rooms: string[];
  scope: TokenScope;
  /** issue time (seconds), when the token carries one */
  iat?: number;
  /** token id, when the token carries one: what `POST /admin/revoke {"jti"}` names */
  jti?: string;
}

export type TokenFailure =
  | 'missing'
  | 'malformed'
  | 'bad_signature'
  | 'bad_algorithm'
  | 'expired'
  | 'not_yet_valid'
  | 'missing_exp'
  | 'missing_sub'
  /** a `sub` POST /admin/revoke could not name: over TOKEN_ID_MAX_LENGTH characters, or a control character */
  | 'bad_sub'
  /** a `jti` that is not such a string (a number, an empty string, too long, a control character) */
  | 'bad_jti'
  | 'missing_rooms'
  | 'bad_scope'
  /** lives longer than the server's TOKEN_MAX_TTL_SECONDS (exp - iat, or exp - now) */
  | 'ttl_too_long';

export type VerifyResult = { ok: true; claims: RoomTokenClaims } | { ok: false; reason: TokenFailure };

const encoder = new TextEncoder();
const keyOf = (secret: string | Uint8Array): Uint8Array => (typeof secret === 'string' ? encoder.encode(secret) : secret);

export interface CreateRoomTokenOptions {
  sub: string;
  rooms: string[];
  /** lifetime in seconds */
  ttlSeconds: number;
  scope?: TokenScope;
  /** for tests: the issue time in seconds */
  now?: number;
  /** token id (default: a random UUID), so one token can be revoked without its `sub` */
  jti?: string;
}

export async function createRoomToken(secret: string | Uint8Array, opts: CreateRoomTokenOptions): Promise<string> {
  if (!opts.sub) throw new TypeError('sub is required');
  const idRule = `non-empty, at most ${TOKEN_ID_MAX_LENGTH} characters, no control characters`;
  if (!isTokenId(opts.sub)) throw new TypeError(`sub must be ${idRule}`);
  if (opts.jti !== undefined && !isTokenId(opts.jti)) throw new TypeError(`jti must be ${idRule}`);
  if (!Array.isArray(opts.rooms) || opts.rooms.length === 0) throw new TypeError('rooms must list at least one room');
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  return new SignJWT({ rooms: opts.rooms, scope: opts.scope ?? 'write' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(opts.sub)
    .setJti(opts.jti ?? crypto.randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + opts.ttlSeconds)
    .sign(keyOf(secret));
}

function classify(err: unknown): TokenFailure {
  if (err instanceof joseErrors.JWTExpired) return 'expired';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'bad_algorithm';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad_signature';
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    // jose names the claim: a future `nbf`, or an `exp` that is not a number.
    if (err.claim === 'nbf') return 'not_yet_valid';
    if (err.claim === 'exp') return 'missing_exp';
  }
  return 'malformed';
}

/** Verify against each secret in turn (current first); the first that verifies wins. */
export async function verifyRoomToken(
  token: string | undefined | null,
  secrets: ReadonlyArray<string | Uint8Array>,
  opts: { now?: number; maxTtlSeconds?: number } = {},
): Promise<VerifyResult> {
  if (!token) return { ok: false, reason: 'missing' };
  if (token.length > 8192) return { ok: false, reason: 'malformed' };
  let last: TokenFailure = 'bad_signature';
  for (const secret of secrets) {
    try {
      const { payload } = await jwtVerify(token, keyOf(secret), {
        algorithms: ['HS256'],
        clockTolerance: CLOCK_SKEW_SECONDS,
        ...(opts.now !== undefined ? { currentDate: new Date(opts.now * 1000) } : {}),
      });
      if (typeof payload.exp !== 'number') return { ok: false, reason: 'missing_exp' };
      if (typeof payload.sub !== 'string' || payload.sub.length === 0) return { ok: false, reason: 'missing_sub' };
      if (!isTokenId(payload.sub)) return { ok: false, reason: 'bad_sub' };
      if (payload.jti !== undefined && !isTokenId(payload.jti)) return { ok: false, reason: 'bad_jti' };
      const rooms = payload['rooms'];
      if (!Array.isArray(rooms) || rooms.length === 0 || !rooms.every((r) => typeof r === 'string' && r.length > 0)) {
        return { ok: false, reason: 'missing_rooms' };
      }
      const scope = payload['scope'] ?? 'write';
      if (scope !== 'write' && scope !== 'read') return { ok: false, reason: 'bad_scope' };
      const claims: RoomTokenClaims = { sub: payload.sub, exp: payload.exp, rooms: rooms as string[], scope };
      if (typeof payload.iat === 'number') claims.iat = payload.iat;
      if (payload.jti !== undefined) claims.jti = payload.jti;
      if (opts.maxTtlSeconds !== undefined && livesTooLong(claims, opts.maxTtlSeconds, opts.now)) return { ok: false, reason: 'ttl_too_long' };
      return { ok: true, claims };
    } catch (err) {
      last = classify(err);
      // Only a signature mismatch can succeed with another secret.
      if (last !== 'bad_signature') return { ok: false, reason: last };
    }
  }
  return { ok: false, reason: last };
}

/**
 * A token whose lifetime (exp - iat) or remaining life (exp - now) exceeds the limit: a revocation
 * lasts TOKEN_MAX_TTL_SECONDS, so no token may outlive it (an `exp: 1e300` would never end).
 */
function livesTooLong(claims: RoomTokenClaims, maxTtlSeconds: number, now = Date.now() / 1000): boolean {
  if (!Number.isFinite(claims.exp)) return true;
  if (claims.exp - now > maxTtlSeconds + CLOCK_SKEW_SECONDS) return true;
  return claims.iat !== undefined && claims.exp - claims.iat > maxTtlSeconds;
}

/** `rooms` entries are exact names, or prefixes ending in `*`. */
export function tokenCoversRoom(claims: Pick<RoomTokenClaims, 'rooms'>, room: string): boolean {
  for (const pattern of claims.rooms) {
    if (pattern.endsWith('*')) {
      if (room.startsWith(pattern.slice(0, -1))) return true;
    } else if (pattern === room) {
      return true;
    }
  }
  return false;
}
