/**
 * TURN REST API credentials (as coturn's `use-auth-secret`):
 * username `<unix-expiry>:<sub>`, password `base64(HMAC-SHA1(secret, username))`.
 */
import { createHmac } from 'node:crypto';
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

/** The expiry encoded in a REST username, or undefined when it has none. */
export function turnUsernameExpiry(username: string): number | undefined {
  const match = /^(\d{1,12}):/.exec(username);
  return match ? Number(match[1]) : undefined;
}

export type TurnCheck = { ok: true } | { ok: false; reason: 'malformed' | 'expired' | 'bad_password' };

/** Check a username/password pair against the current and any previous secrets. */
export function verifyTurnCredentials(
  username: string,
  password: string,
  secrets: readonly string[],
  now: number = Math.floor(Date.now() / 1000),
): TurnCheck {
  const expiry = turnUsernameExpiry(username);
  if (expiry === undefined) return { ok: false, reason: 'malformed' };
  if (expiry < now) return { ok: false, reason: 'expired' };
  const given = Buffer.from(password);
  for (const secret of secrets) {
    const expected = Buffer.from(turnPassword(secret, username));
    if (sameBytes(given, expected)) return { ok: true };
  }
  return { ok: false, reason: 'bad_password' };
}
