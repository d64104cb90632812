/**
 * The one constant-time comparison of a secret (or a MAC) a caller gave with the expected one:
 * the time taken does not depend on how many leading bytes match. Lengths may differ (then it
 * is false at once: the length of a secret is not the secret).
 */
import { timingSafeEqual } from 'node:crypto';

export function sameBytes(given: Uint8Array, expected: Uint8Array): boolean {
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export function sameSecret(given: string, expected: string): boolean {
  return sameBytes(Buffer.from(given), Buffer.from(expected));
}
