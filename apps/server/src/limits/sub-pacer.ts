/**
 * A token bucket per token `sub` that says how long to wait instead of refusing: the relay's large
 * sync step 1 answers that had to be encoded (RELAY_LARGE_SYNC_ANSWERS_PER_MINUTE, relay/connection.ts).
 * Memory: limits/keyed-buckets.ts.
 */
import { KeyedBuckets } from './keyed-buckets.js';

export class SubPacer extends KeyedBuckets {
  /** Takes one token, going below 0 when the caller did not wait for it (waitMs). */
  charge(sub: string): void {
    this.take(sub, true);
  }
}
