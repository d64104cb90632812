/**
 * The sealed progress value kept in persistence (`sync-suite:sealed`, src/sealed/progress.ts):
 * the generation is a trailing field of version 1, so values written before it still read (the
 * generation then unknown), and the fields before it read the same for an older decoder.
 */
import { expect, it } from 'vitest';
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import { decodeProgress, encodeProgress } from '../src/sealed/progress.js';
import { ProgressTracker } from '../src/sealed/progress-tracker.js';

const held = Uint8Array.from([1, 2, 3]);

it('reads a value written before generations, and writes the generation after the fields older clients read', () => {
  const before = encoding.createEncoder();
  encoding.writeVarUint(before, 1);
  encoding.writeVarUint(before, 500);
  encoding.writeVarUint8Array(before, held);
  const old = encoding.toUint8Array(before);
  expect(decodeProgress(old)).toEqual({ cursor: 500, held });
  expect(encodeProgress({ cursor: 500, held })).toEqual(old);
  const withGeneration = encodeProgress({ cursor: 500, held, generation: 2 ** 48 - 1 });
  expect(withGeneration.subarray(0, old.length)).toEqual(old);
  expect(decodeProgress(withGeneration)).toEqual({ cursor: 500, held, generation: 2 ** 48 - 1 });
  expect(decodeProgress(withGeneration.subarray(0, withGeneration.length - 1))).toBeUndefined();
});

it('keeps the first generation it is welcomed with (stored at once), and tells when a welcome names another', () => {
  const stored: unknown[] = [];
  const tracker = new ProgressTracker({ doc: new Y.Doc(), resume: { cursor: 3, held }, onProgress: (p) => stored.push(p), pending: () => 0 });
  expect(tracker.generation).toBe(0);
  expect(tracker.welcomed(0)).toBe(true); // a server before generations names none
  expect(stored).toEqual([]);
  expect(tracker.welcomed(77)).toBe(true);
  expect(stored).toEqual([{ cursor: 3, held, generation: 77 }]);
  expect(tracker.welcomed(77)).toBe(true);
  expect(tracker.welcomed(78)).toBe(false);
  expect(tracker.generation).toBe(77);
  const resumed = new ProgressTracker({ doc: new Y.Doc(), resume: { cursor: 3, held, generation: 77 }, pending: () => 0 });
  expect(resumed.welcomed(78)).toBe(false);
  expect(resumed.welcomed(77)).toBe(true);
});
