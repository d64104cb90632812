/**
 * Revoked token subjects and ids, held in memory for the check every socket admission makes, and
 * stored (RevocationStore, implemented by each storage engine) so that a restart keeps them.
 * An entry ends at `until` (unix seconds); by then every token it covered has expired, since no
 * token may live longer than TOKEN_MAX_TTL_SECONDS.
 */
import type { RoomTokenClaims } from '@sync-suite/shared';

export interface Revocation {
  sub?: string;
  jti?: string;
  /** unix seconds */
  until: number;
}

export interface RevocationStore {
  saveRevocation(r: Revocation): Promise<void>;
  /** the revocations still in force at `now` (unix seconds) */
  loadRevocations(now: number): Promise<Revocation[]>;
}

export class RevocationList {
  private readonly subs = new Map<string, number>();
  private readonly jtis = new Map<string, number>();

  /** Adds (or lengthens) a revocation. */
  apply(r: Revocation): void {
    if (r.sub !== undefined) this.subs.set(r.sub, Math.max(this.subs.get(r.sub) ?? 0, r.until));
    if (r.jti !== undefined) this.jtis.set(r.jti, Math.max(this.jtis.get(r.jti) ?? 0, r.until));
  }

  revoked(claims: Pick<RoomTokenClaims, 'sub' | 'jti'>, now = Date.now() / 1000): boolean {
    return this.active(this.subs, claims.sub, now) || (claims.jti !== undefined && this.active(this.jtis, claims.jti, now));
  }

  get size(): number {
    return this.subs.size + this.jtis.size;
  }

  private active(map: Map<string, number>, key: string, now: number): boolean {
    const until = map.get(key);
    if (until === undefined) return false;
    if (until > now) return true;
    map.delete(key); // ended: forget it
    return false;
  }
}
