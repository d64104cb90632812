import { describe, expect, it } from 'vitest';
import { Backoff } from '../src/backoff.js';

describe('Backoff', () => {
  it('doubles from half..all of the base up to the cap, with jitter, and resets', () => {
    const low = new Backoff({ baseMs: 1000, maxMs: 15_000, random: () => 0 });
    expect([1, 2, 3, 4, 5, 6].map(() => low.next())).toEqual([500, 1000, 2000, 4000, 7500, 7500]);
    const high = new Backoff({ baseMs: 1000, maxMs: 15_000, random: () => 0.999999 });
    expect(high.next()).toBeCloseTo(1000, 0);
    expect(high.count).toBe(1);
    high.reset();
    expect(high.count).toBe(0);
    expect(new Backoff().next()).toBeGreaterThanOrEqual(500);
  });
});
