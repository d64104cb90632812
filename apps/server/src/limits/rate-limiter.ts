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
 * What every limiter of one rate shares: the rates, the abuse bucket's size and the clock. Held
 * once per rate (see policyFor) rather than as four fields of every limiter: 24 B per connection
 * (docs/benchmarks.md, memory).
 */
interface RatePolicy {
  /** the pace bucket's rate, messages per second (its size is perSecond * MILLI) */
  readonly perSecond: number;
  /** the abuse bucket's rate, messages per second */
  readonly abuseRate: number;
  /** the abuse bucket's size, in thousandths of a message */
  readonly abuseBurst: number;
  readonly now: () => number;
}

/** The policies of the monotonic clock, by rate: one per configured rate (a handful), shared by every connection. */
const sharedPolicies = new Map<string, RatePolicy>();

function policyFor(perSecond: number, abuse: AbuseThreshold, now: () => number): RatePolicy {
  const make = (): RatePolicy => {
    const abuseRate = perSecond * abuse.factor;
    return Object.freeze({ perSecond, abuseRate, abuseBurst: abuseRate * abuse.seconds * MILLI, now });
  };
  if (now !== monotonicNow) return make(); // a test's clock: a policy of its own
  const key = `${perSecond}/${abuse.factor}/${abuse.seconds}`;
  let policy = sharedPolicies.get(key);
  if (!policy) sharedPolicies.set(key, (policy = make()));
  return policy;
}

/**
 * Every field of its own holds a small integer (a Smi, stored in the object itself): bucket levels in
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
  private readonly policy: RatePolicy;

  /** `perSecond`, `abuse.factor` and `abuse.seconds` are whole numbers (positive integers in the config). */
  constructor(perSecond: number, abuse: AbuseThreshold, now: () => number = monotonicNow) {
    const policy = (this.policy = policyFor(perSecond, abuse, now));
    this.tokens = perSecond * MILLI;
    this.abuseTokens = policy.abuseBurst;
    const t = Math.floor(now());
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
    return this.tokens >= 0 ? 0 : Math.ceil(-this.tokens / this.policy.perSecond);
  }

  private refill(): void {
    const { perSecond, abuseRate, abuseBurst, now } = this.policy;
    const t = Math.floor(now());
    const second = Math.floor(t / 1000);
    const ms = t - second * 1000;
    const elapsed = (second - this.lastSecond) * 1000 + (ms - this.lastMs);
    this.lastSecond = second;
    this.lastMs = ms;
    // n messages per second refill n thousandths of a message per millisecond
    this.tokens = Math.min(perSecond * MILLI, this.tokens + elapsed * perSecond);
    this.abuseTokens = Math.min(abuseBurst, this.abuseTokens + elapsed * abuseRate);
  }
}
