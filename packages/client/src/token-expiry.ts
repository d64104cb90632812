/**
 * When a room token expires, read from its `exp` claim without verifying it: the client only
 * uses this to ask for a new token in time; the server is the one that verifies.
 */

/** Milliseconds since the epoch, or undefined when the token is not a JWT with a numeric exp. */
export function tokenExpiresAt(token: string | undefined): number | undefined {
  if (!token) return undefined;
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/');
    const claims: unknown = JSON.parse(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, '=')));
    const exp = (claims as { exp?: unknown } | null)?.exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
