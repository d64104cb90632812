/**
 * Stateless nonces for node-turn's long-term auth: node-turn keeps every nonce in a map with
 * an hour-long timer each (one per 401, so unauthenticated traffic grows memory and keeps the
 * process alive). Ours carry their expiry and an HMAC of it: no state, no timers.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export class StatelessNonces {
  private readonly key = randomBytes(32);

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
    const expiry = nonce.slice(0, 12);
    const given = Buffer.from(nonce.slice(12));
    const expected = Buffer.from(this.mac(expiry));
    return timingSafeEqual(given, expected) && Number.parseInt(expiry, 16) > this.now();
  }

  private mac(expiry: string): string {
    return createHmac('sha256', this.key).update(expiry).digest('base64url').slice(0, 24);
  }
}
