/**
 * Per-connection message rate, enforced by backpressure. A token bucket holding one second's
 * worth (MAX_MESSAGES_PER_SECOND) paces the connection: a message that finds it empty is still
 * accepted, the bucket goes into debt and the caller stops reading the socket until the debt is
 * paid (ws/read-throttle.ts), so a fast sender is slowed and loses nothing. Messages that were
 * already read when reading paused can still arrive; a second, much larger bucket (`abuseFactor`
 * times the rate, `abuseSeconds` of it at once) catches a peer that keeps pushing past that:
 * only then is the connection refused (4429).
 */
export type RateVerdict = 'ok' | 'slow' | 'abuse';

export interface AbuseThreshold {
  /** RATE_LIMIT_ABUSE_FACTOR */
  factor: number;
  /** RATE_LIMIT_ABUSE_SECONDS */
  seconds: number;
}

/** One bound clock for every limiter (a limiter per connection: bench/memory.ts). */
const monotonicNow = performance.now.bind(performance);

/** Thousandths of a message: at whole milliseconds and whole-number rates, every bucket level is an integer. */
const MILLI = 1000;

/**
 * Every field holds a small integer (a Smi, stored in the object itself): bucket levels in
 * thousandths of a message, the last refill as whole seconds and milliseconds (Smis for decades of
 * uptime, where milliseconds alone would outgrow one after 12 days). A fractional level or a
 * performance.now() value would be a double, which V8 keeps in a separate box per field: about 48 B
 * per connection (docs/benchmarks.md, memory). Time is counted in whole milliseconds; the part of
 * a millisecond not yet counted is counted at the next refill, so nothing is lost.
 */
export class RateLimiter {
  /** pace bucket, in thousandths of a message (negative: in debt) */
  private tokens: number;
  /** abuse bucket, in thousandths of a message */
  private abuseTokens: number;
  /** the last refill's time: whole seconds, and the milliseconds past them */
  private lastSecond: number;
  private lastMs: number;
  /** the abuse bucket's rate, messages per second */
  private readonly abuseRate: number;
  /** the abuse bucket's size, in thousandths of a message (the pace bucket's is perSecond * MILLI) */
  private readonly abuseBurst: number;

  /** `perSecond`, `abuse.factor` and `abuse.seconds` are whole numbers (positive integers in the config). */
  constructor(
    private readonly perSecond: number,
    abuse: AbuseThreshold,
    private readonly now: () => number = monotonicNow,
  ) {
    this.tokens = perSecond * MILLI;
    this.abuseRate = perSecond * abuse.factor;
    this.abuseBurst = this.abuseRate * abuse.seconds * MILLI;
    this.abuseTokens = this.abuseBurst;
    const t = Math.floor(this.now());
    this.lastSecond = Math.floor(t / 1000);
    this.lastMs = t - this.lastSecond * 1000;
  }

  /** One message arrived: 'slow' means pause reading for waitMs(), 'abuse' means refuse the connection. */
  take(): RateVerdict {
    this.refill();
    if (this.abuseTokens < MILLI) return 'abuse';
    this.abuseTokens -= MILLI;
    this.tokens -= MILLI;
    return this.tokens < 0 ? 'slow' : 'ok';
  }

  /** Milliseconds until the pace bucket is out of debt (0 when it is not in debt). */
  waitMs(): number {
    this.refill();
    // debt in thousandths of a message, at perSecond messages (thousandths per millisecond)
    return this.tokens >= 0 ? 0 : Math.ceil(-this.tokens / this.perSecond);
  }

  private refill(): void {
    const t = Math.floor(this.now());
    const second = Math.floor(t / 1000);
    const ms = t - second * 1000;
    const elapsed = (second - this.lastSecond) * 1000 + (ms - this.lastMs);
    this.lastSecond = second;
    this.lastMs = ms;
    // n messages per second refill n thousandths of a message per millisecond
    this.tokens = Math.min(this.perSecond * MILLI, this.tokens + elapsed * this.perSecond);
    this.abuseTokens = Math.min(this.abuseBurst, this.abuseTokens + elapsed * this.abuseRate);
  }
}
