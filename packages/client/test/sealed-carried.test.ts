/**
 * The bounds on what a device carries in its snapshots (src/sealed/carried.ts) and the carrying
 * snapshot's plaintext, which any key holder seals and is read as hostile input.
 */
import { describe, expect, it } from 'vitest';
import { CarriedEnvelopes, carryLimits, decodeCarryingSnapshot, DEFAULT_CARRY_LIMITS, encodeCarryingSnapshot } from '../src/sealed/carried.js';

const env = (n: number, bytes = 50): Uint8Array => new Uint8Array(bytes).fill(n);

describe('CarriedEnvelopes', () => {
  it('drops the oldest past maxEnvelopes and maxBytes', () => {
    const c = new CarriedEnvelopes({ maxEnvelopes: 3, maxBytes: 1000, maxAgeSeqs: 1000 });
    for (const seq of [5, 2, 9, 7]) c.add(seq, env(seq));
    expect(c.forSnapshot(10).map((e) => e.seq)).toEqual([5, 7, 9]);
    const b = new CarriedEnvelopes({ maxEnvelopes: 10, maxBytes: 120, maxAgeSeqs: 1000 });
    for (const seq of [1, 2, 3]) b.add(seq, env(seq));
    expect(b.forSnapshot(10).map((e) => e.seq)).toEqual([2, 3]);
    expect(b.lowest).toBe(2);
  });

  it('drops for good what is older than maxAgeSeqs, carries only up to covers, and forgets what a snapshot stands for', () => {
    const c = new CarriedEnvelopes({ maxEnvelopes: 10, maxBytes: 10_000, maxAgeSeqs: 100 });
    for (const seq of [10, 50, 200]) c.add(seq, env(seq));
    expect(c.forSnapshot(120).map((e) => e.seq)).toEqual([50]);
    expect(c.size).toBe(2);
    c.forgetUpTo(60);
    expect(c.lowest).toBe(200);
    const none = new CarriedEnvelopes({ ...DEFAULT_CARRY_LIMITS, maxEnvelopes: 0 });
    none.add(1, env(1));
    expect(none.size).toBe(0);
  });

  it('keeps a copy, not the caller\'s bytes', () => {
    const c = new CarriedEnvelopes(DEFAULT_CARRY_LIMITS);
    const e = env(1);
    c.add(1, e);
    e.fill(9);
    expect(c.forSnapshot(1)[0]?.envelope).toEqual(env(1));
  });
});

describe('carrying snapshot plaintext', () => {
  it('round-trips, leaves out seq 0 and seqs past covers, and refuses what does not decode', () => {
    const doc = Uint8Array.of(0, 0);
    const plain = encodeCarryingSnapshot(doc, [
      { seq: 3, envelope: env(3) },
      { seq: 0, envelope: env(0) },
      { seq: 11, envelope: env(11) },
    ]);
    expect(decodeCarryingSnapshot(plain, 10)).toEqual({ doc, carried: [{ seq: 3, envelope: env(3) }] });
    expect(decodeCarryingSnapshot(plain.subarray(0, plain.length - 1), 10)).toBeUndefined();
    expect(decodeCarryingSnapshot(Uint8Array.of(...plain, 7), 10)).toBeUndefined();
    expect(decodeCarryingSnapshot(Uint8Array.of(2, 0, 0), 10)).toBeUndefined();
    // a count far beyond the bytes: stops at the end of the input
    expect(decodeCarryingSnapshot(Uint8Array.of(1, 0, 0xff, 0xff, 0xff, 0x7f), 10)).toBeUndefined();
  });

  it('carryLimits: defaults, overrides, and a TypeError for a bad bound', () => {
    expect(carryLimits(undefined)).toEqual(DEFAULT_CARRY_LIMITS);
    expect(carryLimits({ maxEnvelopes: 0 })).toEqual({ ...DEFAULT_CARRY_LIMITS, maxEnvelopes: 0 });
    expect(() => carryLimits({ maxBytes: -1 })).toThrow(TypeError);
    expect(() => carryLimits({ maxAgeSeqs: 1.5 })).toThrow(TypeError);
  });
});
