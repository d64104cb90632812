/**
 * TURN REST API credentials (as coturn's `use-auth-secret`):
 * username `<unix-expiry>:<sub>`, password `base64(HMAC-SHA1(secret, username))`.
 */
import { createHash, createHmac } from 'node:crypto';
import { sameBytes } from '../auth/same-secret.js';

export interface TurnCredentials {
  username: string;
  credential: string;
  /** unix seconds */
  expiresAt: number;
}

export function turnPassword(secret: string, username: string): string {
  return createHmac('sha1', secret).update(username).digest('base64');
}

export function createTurnCredentials(
  secret: string,
  sub: string,
  ttlSeconds: number,
  now: number = Math.floor(Date.now() / 1000),
): TurnCredentials {
  const expiresAt = now + ttlSeconds;
  // `:` separates expiry from the id; keep the id free of it so parsing stays unambiguous.
  const username = `${expiresAt}:${sub.replace(/:/g, '_')}`;
  return { username, credential: turnPassword(secret, username), expiresAt };
}

/**
 * Longest user id, in UTF-8 bytes, that /turn-credentials puts in a username as it is. A TURN
 * server refuses a USERNAME of 509 bytes or more (RFC 8489 section 14.3; apps/turn/src/credentials.ts),
 * and the expiry and separator take up to 13 more.
 */
export const TURN_USER_ID_MAX_BYTES = 256;

/**
 * The user id a REST username carries for `sub`: `sub` itself (`:` replaced, as in
 * createTurnCredentials) up to TURN_USER_ID_MAX_BYTES, else `sha256_` and the base64url SHA-256
 * of `sub`: the same id for the same sub, so per-user limits still count one user.
 */
export function turnUserId(sub: string): string {
  const id = sub.replace(/:/g, '_');
  if (Buffer.byteLength(id) <= TURN_USER_ID_MAX_BYTES) return id;
  return `sha256_${createHash('sha256').update(sub).digest('base64url')}`;
}

/** The two parts of a REST username `<unix-expiry>:<sub>`. */
export interface TurnUsername {
  expiry: number;
  /** who the credentials were issued to: what per-user limits count */
  sub: string;
}

export function parseTurnUsername(username: string): TurnUsername | undefined {
  const match = /^(\d{1,12}):(.*)$/s.exec(username);
  return match ? { expiry: Number(match[1]), sub: match[2]! } : undefined;
}

/** The expiry encoded in a REST username, or undefined when it has none. */
export function turnUsernameExpiry(username: string): number | undefined {
  return parseTurnUsername(username)?.expiry;
}

/**
 * How far past now + the credential lifetime (TURN_TTL_SECONDS) an expiry may lie: the server
 * that issued it and the TURN server that checks it may keep slightly different clocks.
 */
export const TURN_EXPIRY_SKEW_SECONDS = 60;

/** ttl_too_long: the expiry lies further ahead than the credential lifetime allows (a forged username, as `999999999999:victim`). */
export type TurnRefusal = 'malformed' | 'expired' | 'ttl_too_long' | 'bad_password';
export type TurnCheck = { ok: true } | { ok: false; reason: TurnRefusal };
export type TurnMatch = { ok: true; password: string; sub: string } | { ok: false; reason: TurnRefusal };

/**
 * The one REST-credential check, whatever the proof: the username must parse, not be expired
 * nor expire more than `maxTtlSeconds` + TURN_EXPIRY_SKEW_SECONDS from now (the server never
 * issues such a one; only a leaked secret makes it), and `proves(password)` must hold for the password of one of `secrets` (current
 * first). The HTTP side compares a given password; the TURN server checks a STUN
 * MESSAGE-INTEGRITY made with it.
 */
export function matchTurnCredentials(
  username: string,
  secrets: readonly string[],
  proves: (password: string) => boolean,
  now: number = Math.floor(Date.now() / 1000),
  /** how the password of `secret` is found: turnPassword, or a cache of it (the TURN server's) */
  passwordOf: (secret: string, username: string) => string = turnPassword,
  /** the credential lifetime the server issues (TURN_TTL_SECONDS) */
  maxTtlSeconds: number = Number.POSITIVE_INFINITY,
): TurnMatch {
  const parsed = parseTurnUsername(username);
  if (!parsed) return { ok: false, reason: 'malformed' };
  const refusal = expiryRefusal(parsed.expiry, now, maxTtlSeconds);
  if (refusal) return { ok: false, reason: refusal };
  for (const secret of secrets) {
    const password = passwordOf(secret, username);
    if (proves(password)) return { ok: true, password, sub: parsed.sub };
  }
  return { ok: false, reason: 'bad_password' };
}

/** Why a username with this expiry is refused at `now`, or undefined when it is within its lifetime. */
export function expiryRefusal(expiry: number, now: number, maxTtlSeconds: number): 'expired' | 'ttl_too_long' | undefined {
  if (expiry < now) return 'expired';
  if (expiry - now > maxTtlSeconds + TURN_EXPIRY_SKEW_SECONDS) return 'ttl_too_long';
  return undefined;
}

/** Check a username/password pair against the current and any previous secrets. */
export function verifyTurnCredentials(
  username: string,
  password: string,
  secrets: readonly string[],
  now: number = Math.floor(Date.now() / 1000),
  maxTtlSeconds: number = Number.POSITIVE_INFINITY,
): TurnCheck {
  const given = Buffer.from(password);
  const equals = (expected: string): boolean => sameBytes(given, Buffer.from(expected));
  const result = matchTurnCredentials(username, secrets, equals, now, turnPassword, maxTtlSeconds);
  return result.ok ? { ok: true } : result;
}
