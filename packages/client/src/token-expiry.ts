/**
 * When a room token expires, read from its `exp` claim without verifying it: the client only
 * uses this to ask for a new token in time; the server is the one that verifies.
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
