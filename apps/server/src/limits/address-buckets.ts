/**
 * A token bucket per source address, for refusals that must not let one address lock out
 * everyone else. IPv6 addresses are grouped by /64 (one subscriber usually holds a whole /64).
 * Memory: limits/keyed-buckets.ts.
 */
import { isIPv6 } from 'node:net';
import { KeyedBuckets } from './keyed-buckets.js';

export class AddressBuckets {
  private readonly buckets: KeyedBuckets;

  constructor(perMinute: number, maxAddresses = 100_000, now?: () => number) {
    this.buckets = new KeyedBuckets(perMinute, maxAddresses, now);
  }

  /** Takes one token for the address; false when it has none left. */
  take(address: string): boolean {
    return this.buckets.take(addressKey(address));
  }

  /** Gives back a token taken by take() (the upgrade turned out to be authenticated). */
  refund(address: string): void {
    this.buckets.refund(addressKey(address));
  }

  get size(): number {
    return this.buckets.size;
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
