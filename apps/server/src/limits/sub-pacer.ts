/**
 * A token bucket per token `sub` that says how long to wait instead of refusing: the relay's large
 * sync step 1 answers that had to be encoded (RELAY_LARGE_SYNC_ANSWERS_PER_MINUTE, relay/connection.ts).
 * Memory: one entry per sub below a full bucket; full buckets are forgotten, and past `maxSubs`
 * the oldest entry goes.
 */
interface Bucket {
  tokens: number;
  last: number;
}

export class SubPacer {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(
    /** burst, and what refills in one minute */
    private readonly perMinute: number,
    private readonly maxSubs = 100_000,
    private readonly now: () => number = performance.now.bind(performance),
  ) {
    this.perMs = perMinute / 60_000;
  }

  /** Milliseconds until `sub` has a token (0: it has one now). */
  waitMs(sub: string): number {
    const bucket = this.refilled(sub);
    return bucket.tokens >= 1 ? 0 : Math.ceil((1 - bucket.tokens) / this.perMs);
  }

  /** Takes one token (below 0 when the caller did not wait for it). */
  charge(sub: string): void {
    const bucket = this.refilled(sub);
    bucket.tokens -= 1;
    if (this.buckets.has(sub)) return;
    if (this.buckets.size >= this.maxSubs) {
      const first = this.buckets.keys().next();
      if (!first.done) this.buckets.delete(first.value);
    }
    this.buckets.set(sub, bucket);
  }

  get size(): number {
    return this.buckets.size;
  }

  private refilled(sub: string): Bucket {
    const t = this.now();
    const bucket = this.buckets.get(sub);
    if (!bucket) return { tokens: this.perMinute, last: t };
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + (t - bucket.last) * this.perMs);
    bucket.last = t;
    if (bucket.tokens >= this.perMinute) this.buckets.delete(sub);
    return bucket;
  }
}
