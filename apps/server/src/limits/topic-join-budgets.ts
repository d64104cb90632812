/**
 * SIGNALING_TOPIC_JOINS_PER_MINUTE as a budget per token `sub`, not per socket: a socket's own
 * budget would be full again on every reconnect, and an upgrade with a valid token costs the
 * caller little. With auth off every caller is the same 'anonymous' sub, so each socket keeps its
 * own budget then (signaling/connection.ts), as MAX_CONNECTIONS_PER_SUB counts nothing then.
 *
 * One number per sub (a GCRA): when its budget is full again, in performance.now() ms. A sub whose
 * budget is full again is the same as one never seen, so such entries are swept: the map holds
 * only the subs that joined topics within the last burst's worth of time.
 */
export class TopicJoinBudgets {
  private readonly fullAt = new Map<string, number>();
  private nextSweep = 0;

  constructor(
    private readonly intervalMs: number,
    private readonly burst: number,
  ) {}

  /** Takes `n` joins from `key`'s budget; false (nothing taken) when it has not that many. */
  take(key: string, n: number, now = performance.now()): boolean {
    this.sweep(now);
    const next = takeFrom(this.fullAt.get(key) ?? 0, n, now, this.intervalMs, this.burst);
    if (next === null) return false;
    this.fullAt.set(key, next);
    return true;
  }

  get size(): number {
    return this.fullAt.size;
  }

  private sweep(now: number): void {
    if (now < this.nextSweep) return;
    this.nextSweep = now + this.burst * this.intervalMs;
    for (const [key, at] of this.fullAt) if (at <= now) this.fullAt.delete(key);
  }
}

/**
 * The GCRA step: the budget's new full-again time after taking `n` joins at `now`, or null when
 * it has not that many (1 ms of slack for the rounding of the sums).
 */
export function takeFrom(fullAt: number, n: number, now: number, intervalMs: number, burst: number): number | null {
  const next = Math.max(fullAt, now) + n * intervalMs;
  return next - now > burst * intervalMs + 1 ? null : next;
}
