/**
 * Stateless nonces for node-turn's long-term auth: node-turn keeps every nonce in a map with
 * an hour-long timer each (one per 401, so unauthenticated traffic grows memory and keeps the
 * process alive). Ours carry their expiry and an HMAC of it: no timers, and no state but a
 * bounded memo of nonces already verified (a client signs every request of its allocation
 * with the same nonce; each check would be an HMAC), whose expiry is still checked every time.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** verified nonces kept; the memo is cleared whole when full */
const VERIFIED_MAX = 4096;

export class StatelessNonces {
  private readonly key = randomBytes(32);
  /** nonce -> its expiry (ms), for nonces whose MAC was verified */
  private readonly verified = new Map<string, number>();

  constructor(
    private readonly lifetimeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  issue(): string {
    const expiry = (this.now() + this.lifetimeMs).toString(16).padStart(12, '0');
    return expiry + this.mac(expiry);
  }

  valid(nonce: string): boolean {
    if (typeof nonce !== 'string' || nonce.length !== 12 + 24) return false;
    const known = this.verified.get(nonce);
    if (known !== undefined) return known > this.now();
    const expiry = nonce.slice(0, 12);
    const given = Buffer.from(nonce.slice(12));
    const expected = Buffer.from(this.mac(expiry));
    // 24 characters of a UTF-8 NONCE can be more than 24 bytes: timingSafeEqual would throw
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return false;
    const expiresAt = Number.parseInt(expiry, 16);
    if (this.verified.size >= VERIFIED_MAX) this.verified.clear();
    this.verified.set(nonce, expiresAt);
    return expiresAt > this.now();
  }

  private mac(expiry: string): string {
    return createHmac('sha256', this.key).update(expiry).digest('base64url').slice(0, 24);
  }
}
