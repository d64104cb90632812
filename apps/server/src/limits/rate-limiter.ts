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

export class RateLimiter {
  private tokens: number;
  private abuseTokens: number;
  private last: number;
  private readonly abuseRate: number;
  private readonly abuseBurst: number;

  constructor(
    private readonly perSecond: number,
    abuse: AbuseThreshold,
    private readonly now: () => number = monotonicNow,
  ) {
    this.tokens = perSecond;
    this.abuseRate = perSecond * abuse.factor;
    this.abuseBurst = this.abuseRate * abuse.seconds;
    this.abuseTokens = this.abuseBurst;
    this.last = this.now();
  }

  /** One message arrived: 'slow' means pause reading for waitMs(), 'abuse' means refuse the connection. */
  take(): RateVerdict {
    this.refill();
    if (this.abuseTokens < 1) return 'abuse';
    this.abuseTokens -= 1;
    this.tokens -= 1;
    return this.tokens < 0 ? 'slow' : 'ok';
  }

  /** Milliseconds until the pace bucket is out of debt (0 when it is not in debt). */
  waitMs(): number {
    this.refill();
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.perSecond);
  }

  private refill(): void {
    const t = this.now();
    const elapsed = t - this.last;
    this.last = t;
    this.tokens = Math.min(this.perSecond, this.tokens + (elapsed * this.perSecond) / 1000);
    this.abuseTokens = Math.min(this.abuseBurst, this.abuseTokens + (elapsed * this.abuseRate) / 1000);
  }
}
