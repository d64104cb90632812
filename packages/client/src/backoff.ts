/**
 * The one back-off of the client: exponential with jitter ("equal jitter": half fixed, half
 * random), so that many devices refused or cut off at once do not come back in step. Every
 * reconnect of either transport and every retry of getToken() / GET /turn-credentials waits
 * `next()`; only a connection proven to work (or a success) calls `reset()`.
 */

export interface BackoffOptions {
  /** the first delay's upper bound (default 1000 ms) */
  baseMs?: number;
  /** no delay above this (default 15000 ms) */
  maxMs?: number;
  /** [0, 1): injectable for tests */
  random?: () => number;
}

export class Backoff {
  private failures = 0;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;

  constructor(opts: BackoffOptions = {}) {
    this.baseMs = opts.baseMs ?? 1_000;
    this.maxMs = opts.maxMs ?? 15_000;
    this.random = opts.random ?? Math.random;
  }

  /** failures since the last reset */
  get count(): number {
    return this.failures;
  }

  /** Count one more failure; the delay before the next attempt, between half and all of min(base·2ⁿ, max). */
  next(): number {
    const cap = Math.min(this.baseMs * 2 ** Math.min(this.failures, 30), this.maxMs);
    this.failures++;
    return cap / 2 + (cap / 2) * this.random();
  }

  reset(): void {
    this.failures = 0;
  }
}
