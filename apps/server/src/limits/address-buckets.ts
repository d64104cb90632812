/**
 * A token bucket per source address, for refusals that must not let one address lock out
 * everyone else. IPv6 addresses are grouped by /64 (one subscriber usually holds a whole /64).
 * Memory is bounded: full buckets are forgotten, and past `maxAddresses` the oldest entry goes.
 */
import { isIPv6 } from 'node:net';

interface Bucket {
  tokens: number;
  last: number;
}

export class AddressBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(
    /** burst, and what refills in one minute */
    private readonly perMinute: number,
    private readonly maxAddresses = 100_000,
    private readonly now: () => number = performance.now.bind(performance),
  ) {
    this.perMs = perMinute / 60_000;
  }

  /** Takes one token for the address; false when it has none left. */
  take(address: string): boolean {
    const key = addressKey(address);
    const bucket = this.refilled(key);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    if (!this.buckets.has(key)) {
      if (this.buckets.size >= this.maxAddresses) this.evictOldest();
      this.buckets.set(key, bucket);
    }
    return true;
  }

  /** Gives back a token taken by take() (the upgrade turned out to be authenticated). */
  refund(address: string): void {
    const key = addressKey(address);
    const bucket = this.buckets.get(key);
    if (!bucket) return;
    bucket.tokens += 1;
    if (bucket.tokens >= this.perMinute) this.buckets.delete(key);
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
    return bucket;
  }

  private evictOldest(): void {
    // Map keeps insertion order: the first key is the longest-known address.
    const first = this.buckets.keys().next();
    if (!first.done) this.buckets.delete(first.value);
  }
}

// node's isIPv6 compiles its regular expression on first use (about 6 ms) and again on the
// second (1.5 ms): paid when the server starts, not by the first connections after a restart
// (bench/cold-load.ts measures from the connection to the content).
for (let i = 0; i < 3; i++) isIPv6('::1');

/** IPv4 (and IPv4-mapped IPv6) as is; other IPv6 addresses by their /64 prefix. */
export function addressKey(address: string): string {
  if (address.startsWith('::ffff:') && !isIPv6(address.slice(7))) return address.slice(7);
  if (!isIPv6(address)) return address;
  return expandIPv6(address).slice(0, 4).join(':') + '::/64';
}

function expandIPv6(address: string): string[] {
  const [head = '', tail] = address.split('%')[0]?.split('::') ?? [''];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const missing = tail === undefined ? 0 : 8 - left.length - right.length;
  return [...left, ...Array<string>(Math.max(0, missing)).fill('0'), ...right].map((h) => h.padStart(4, '0'));
}
