/** The per-address budget and the backpressure rate limiter, on a fake clock. */
import { describe, expect, it } from 'vitest';
import { AddressBuckets, addressKey } from '../src/limits/address-buckets.js';
import { RateLimiter } from '../src/limits/rate-limiter.js';

describe('addressKey', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['2001:db8::1', '2001:0db8:0000:0000::/64'],
    ['2001:db8:0:0:ffff:1:2:3', '2001:0db8:0000:0000::/64'],
    ['2001:db8:0:1::1', '2001:0db8:0000:0001::/64'],
    ['::1', '0000:0000:0000:0000::/64'],
  ])('%s -> %s', (address, key) => expect(addressKey(address)).toBe(key));
});

describe('AddressBuckets', () => {
  it('gives each address its burst, refills over a minute, takes refunds, and forgets full buckets', () => {
    let t = 0;
    const b = new AddressBuckets(3, 100, () => t);
    expect([b.take('a'), b.take('a'), b.take('a'), b.take('a')]).toEqual([true, true, true, false]);
    expect(b.take('b')).toBe(true);
    b.refund('a');
    expect(b.take('a')).toBe(true);
    expect(b.take('a')).toBe(false);
    t += 20_000; // a third of a minute: one token back
    expect(b.take('a')).toBe(true);
    b.refund('b');
    expect(b.size).toBe(1); // b is full again: forgotten
  });

  it('holds at most maxAddresses entries', () => {
    const b = new AddressBuckets(5, 10, () => 0);
    for (let i = 0; i < 1000; i++) b.take(`10.0.${i >> 8}.${i & 255}`);
    expect(b.size).toBe(10);
  });
});

describe('RateLimiter', () => {
  it('passes a burst of one second, then asks to pause for the debt, and refuses only past the abuse bucket', () => {
    let t = 0;
    const r = new RateLimiter(10, { factor: 2, seconds: 1 }, () => t);
    const verdicts = Array.from({ length: 25 }, () => r.take());
    expect(verdicts.slice(0, 10).every((v) => v === 'ok')).toBe(true);
    expect(verdicts.slice(10, 20).every((v) => v === 'slow')).toBe(true); // debt: 10 messages
    expect(verdicts.slice(20)).toEqual(['abuse', 'abuse', 'abuse', 'abuse', 'abuse']); // 2 x 10/s for 1 s = 20
    expect(r.waitMs()).toBe(1000); // 10 messages of debt at 10/s
    t += 1000;
    expect(r.waitMs()).toBe(0);
    t += 100; // one token more than the debt
    expect(r.take()).toBe('ok');
  });

  it('a clock read in fractions of a millisecond, across whole seconds, refills exactly the time that passed', () => {
    let t = 0.3;
    const r = new RateLimiter(1000, { factor: 3, seconds: 1 }, () => t);
    for (let i = 0; i < 2000; i++) r.take(); // 1,000 messages of debt
    expect(r.waitMs()).toBe(1000);
    for (let i = 0; i < 2505; i++) {
      t += 0.4; // 1,002 ms in steps shorter than a millisecond
      r.waitMs();
    }
    expect(r.waitMs()).toBe(0);
    expect([r.take(), r.take(), r.take()]).toEqual(['ok', 'ok', 'slow']); // the debt, then 2 ms: two messages
  });

  it('a sender kept at the rate by pausing is never refused', () => {
    let t = 0;
    const r = new RateLimiter(100, { factor: 10, seconds: 10 }, () => t);
    let refused = 0;
    for (let i = 0; i < 20_000; i++) {
      const v = r.take();
      if (v === 'abuse') refused++;
      if (v === 'slow') t += r.waitMs(); // reading paused until the debt is paid
    }
    expect(refused).toBe(0);
  });
  // Property: against a model holding the bucket levels as plain numbers of thousandths, refilled
  // by floor(now) differences, over random clocks: fractional steps, second boundaries, long idle
  // gaps, a start decades into uptime, and (not performance.now, but the limiter must not gain
  // from it) steps back. The limiter never passes more than its bucket plus what the time earned.
  it('matches a plain model over random clocks, and never passes more than the rate allows', () => {
    const seed = Date.now() % 1_000_000;
    let x = seed;
    const rand = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let run = 0; run < 200; run++) {
      const perSecond = 1 + Math.floor(rand() * (rand() < 0.5 ? 10 : 5000));
      const abuse = { factor: 1 + Math.floor(rand() * 4), seconds: 1 + Math.floor(rand() * 5) };
      let t = rand() < 0.5 ? rand() * 5000 : 1e12 + rand() * 1e9; // decades of uptime: past a Smi of milliseconds
      const start = t;
      let latest = t;
      const r = new RateLimiter(perSecond, abuse, () => t);
      const model = { tokens: perSecond * 1000, abuse: perSecond * abuse.factor * abuse.seconds * 1000, at: Math.floor(t) };
      const refill = () => {
        const now = Math.floor(t);
        const elapsed = now - model.at;
        model.at = now;
        model.tokens = Math.min(perSecond * 1000, model.tokens + elapsed * perSecond);
        model.abuse = Math.min(perSecond * abuse.factor * abuse.seconds * 1000, model.abuse + elapsed * perSecond * abuse.factor);
      };
      let passed = 0;
      for (let step = 0; step < 300; step++) {
        const u = rand();
        if (u < 0.5) t += rand() * 3;
        else if (u < 0.6) t += Math.ceil(t / 1000) * 1000 - t - 0.5 + rand(); // around a second boundary
        else if (u < 0.63) t += rand() * 1e7; // hours idle
        else if (u < 0.65) t -= rand() * 50; // back
        latest = Math.max(latest, t);
        const context = `seed ${seed} run ${run} step ${step}`;
        if (rand() < 0.8) {
          refill();
          const expected = model.abuse < 1000 ? 'abuse' : model.tokens - 1000 < 0 ? 'slow' : 'ok';
          if (expected !== 'abuse') {
            model.abuse -= 1000;
            model.tokens -= 1000;
          }
          const verdict = r.take();
          expect(verdict, context).toBe(expected);
          if (verdict === 'ok') passed++;
        } else {
          refill();
          expect(r.waitMs(), context).toBe(model.tokens >= 0 ? 0 : Math.ceil(-model.tokens / perSecond));
        }
        expect(passed, context).toBeLessThanOrEqual(perSecond + Math.floor(((Math.floor(latest) - Math.floor(start)) * perSecond) / 1000));
      }
    }
  });

  it('holds its own state only: limiters of one rate on the server clock share the rates and the clock', () => {
    const abuse = { factor: 3, seconds: 2 };
    const [a, b, other] = [new RateLimiter(50, abuse), new RateLimiter(50, { ...abuse }), new RateLimiter(51, abuse)];
    // two bucket levels, the last refill (seconds, milliseconds), the shared policy: 24 B less per connection than eight fields
    expect(Object.keys(a)).toHaveLength(5);
    const policy = (r: RateLimiter): unknown => Object.values(r).find((v) => typeof v === 'object');
    expect(policy(a)).toBeDefined();
    expect(policy(b)).toBe(policy(a));
    expect(policy(other)).not.toBe(policy(a));
    // the abuse threshold is part of the policy: another factor or window is another policy
    expect(policy(new RateLimiter(50, { factor: 4, seconds: 2 }))).not.toBe(policy(a));
    expect(policy(new RateLimiter(50, { factor: 3, seconds: 3 }))).not.toBe(policy(a));
    expect([a.take(), a.waitMs(), other.take()]).toEqual(['ok', 0, 'ok']);
  });
});
