/**
 * /turn-credentials calls per token subject (`sub`) in fixed one-minute windows. Keyed by sub,
 * not by token string: minting fresh tokens for one user does not buy more credentials (the
 * TURN quota counts that same sub). Memory: one number per sub seen in the current window, and
 * only holders of a valid token get an entry.
 */
const WINDOW_MS = 60_000;

export class PerSubjectLimit {
  private counts = new Map<string, number>();
  private windowStart: number;

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {
    this.windowStart = now();
  }

  /** Count one call; the seconds to wait when it is over the limit, else 0. */
  take(sub: string): number {
    const t = this.now();
    if (t - this.windowStart >= WINDOW_MS) {
      this.counts = new Map();
      this.windowStart = t;
    }
    const used = (this.counts.get(sub) ?? 0) + 1;
    if (used > this.perMinute) return Math.max(1, Math.ceil((this.windowStart + WINDOW_MS - t) / 1000));
    this.counts.set(sub, used);
    return 0;
  }
}
