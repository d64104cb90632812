/**
 * Token buckets by key: per source address (limits/address-buckets.ts) and per token `sub`
 * (limits/sub-pacer.ts). A bucket holds `perMinute` tokens at most and refills that many per
 * minute. Memory is bounded: a full bucket is forgotten (it is the same as no entry), and past
 * `maxKeys` the longest-known key goes.
 */
interface Bucket {
  tokens: number;
  last: number;
}

export class KeyedBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(
    /** burst, and what refills in one minute */
    private readonly perMinute: number,
    private readonly maxKeys = 100_000,
    private readonly now: () => number = performance.now.bind(performance),
  ) {
    this.perMs = perMinute / 60_000;
  }

  /** Takes one token for `key`: false when it has none left, unless `owing` (then it goes below 0). */
  take(key: string, owing = false): boolean {
    const bucket = this.refilled(key);
    if (bucket.tokens < 1 && !owing) return false;
    bucket.tokens -= 1;
    if (!this.buckets.has(key)) {
      // Map keeps insertion order: the first key is the longest-known one.
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value as string);
      this.buckets.set(key, bucket);
    }
    return true;
  }

  /** Gives back a token taken by take(). */
  refund(key: string): void {
    const bucket = this.buckets.get(key);
    if (!bucket) return;
    bucket.tokens += 1;
    if (bucket.tokens >= this.perMinute) this.buckets.delete(key);
  }

  /** Milliseconds until `key` has a token (0: it has one now). */
  waitMs(key: string): number {
    const bucket = this.refilled(key);
    return bucket.tokens >= 1 ? 0 : Math.ceil((1 - bucket.tokens) / this.perMs);
  }

  get size(): number {
    return this.buckets.size;
  }

  private refilled(key: string): Bucket {
    const t = this.now();
    const bucket = this.buckets.get(key);
    if (!bucket) return { tokens: this.perMinute, last: t };
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + (t - bucket.last) * this.perMs);
    bucket.last = t;
    if (bucket.tokens >= this.perMinute) this.buckets.delete(key);
    return bucket;
  }
}
