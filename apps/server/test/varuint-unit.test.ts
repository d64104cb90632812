/** The one varuint reader of the bounded decoders (relay/varuint.ts), against lib0's writer. */
import { describe, expect, it } from 'vitest';
import * as encoding from 'lib0/encoding';
import { readVarUint } from '../src/relay/varuint.js';

const encoded = (...values: number[]): Uint8Array => {
  const e = encoding.createEncoder();
  for (const v of values) encoding.writeVarUint(e, v);
  return encoding.toUint8Array(e);
};

describe('readVarUint', () => {
  it('reads what lib0 writes, up to 2^53 - 1, and moves the cursor past each', () => {
    const values = [0, 1, 127, 128, 300, 2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER];
    const buf = encoded(...values);
    const at = { pos: 0 };
    expect(values.map(() => readVarUint(buf, at))).toEqual(values);
    expect(at.pos).toBe(buf.length);
  });

  it('answers -1 for a truncated varuint, one past 2^53 - 1, and a padding too long to be exact', () => {
    expect(readVarUint(Uint8Array.of(0x80, 0x80), { pos: 0 })).toBe(-1);
    expect(readVarUint(new Uint8Array(0), { pos: 0 })).toBe(-1);
    expect(readVarUint(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x10), { pos: 0 })).toBe(-1); // 2^53
    expect(readVarUint(Uint8Array.of(...new Array<number>(9).fill(0x80), 0x00), { pos: 0 })).toBe(-1);
  });
});
