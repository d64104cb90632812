/**
 * The webhook outbox: events stored in the storage engine from when they are due until they are
 * delivered (or given up), so that an instance that stops or crashes loses none. Each engine has
 * one (memory.ts, sqlite.ts, postgres.ts). With several instances on one PostgreSQL, an instance
 * claims the entries it sends for a lease, so each is sent by one of them; a claim that outlives
 * its instance ends with the lease and the entry goes to another.
 *
 * Times are unix ms from the caller's clock.
 */
export interface OutboxEntry {
  id: number;
  /** the signed request body (JSON) */
  body: string;
  /** failed attempts so far */
  attempts: number;
}

export interface OutboxStats {
  /** entries stored */
  size: number;
  /** when the next entry may be claimed (due, and not held by a claim), null when empty */
  nextDue: number | null;
}

export interface WebhookOutbox {
  /**
   * Stores an event due at `now`. With `max`, the oldest entries past the newest `max` are
   * deleted; resolves with how many were.
   */
  add(body: string, now: number, max: number | null): Promise<number>;
  /** Claims up to `limit` entries due at `now` that no live claim holds, until `now + leaseMs`, earliest due first. */
  claim(now: number, leaseMs: number, limit: number): Promise<OutboxEntry[]>;
  /** delivered, or given up */
  remove(id: number): Promise<void>;
  /** failed: due again at `due`, its claim ended */
  retry(id: number, attempts: number, due: number): Promise<void>;
  /** claimed but not tried (shutdown): free for anyone at once */
  release(ids: readonly number[]): Promise<void>;
  stats(): Promise<OutboxStats>;
}
