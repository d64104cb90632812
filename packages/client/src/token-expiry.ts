/**
 * When a room token expires, read from its `exp` claim without verifying it: the client only
 * uses this to ask for a new token in time; the server is the one that verifies. Likewise its
 * `scope` claim (packages/shared/src/auth/room-token.ts): a read-scope socket confirms nothing.
 */
import { decodeJwt } from 'jose';

/** Milliseconds since the epoch, or undefined when the token is not a JWT with a numeric exp. */
export function tokenExpiresAt(token: string | undefined): number | undefined {
  if (!token) return undefined;
  try {
    const { exp } = decodeJwt(token);
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** True when the token's `scope` claim is `read` (the server drops that socket's updates). */
export function tokenIsReadOnly(token: string | undefined): boolean {
  if (!token) return false;
  try {
    return decodeJwt(token)['scope'] === 'read';
  } catch {
    return false;
  }
}
