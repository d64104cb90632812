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

it('keeps the first generation it is welcomed with (stored at once); a cursor stored without one counts from 0; another generation (storage reset) counts from 0 and holds nothing', () => {
  const stored: unknown[] = [];
  const empty = Y.encodeStateVector(new Y.Doc());
  // stored by a client before generations: its cursor may count in a deleted log, so read from 0
  const tracker = new ProgressTracker({ doc: new Y.Doc(), resume: { cursor: 3, held }, onProgress: (p) => stored.push(p), pending: () => 0 });
  expect(tracker.generation).toBe(0);
  expect(tracker.cursor).toBe(0);
  expect(tracker.heldAtStart).toEqual(held);
  expect(tracker.welcomed(0)).toBe('same'); // a server before generations names none
  expect(stored).toEqual([]);
  expect(tracker.welcomed(77)).toBe('adopted');
  expect(stored).toEqual([{ cursor: 0, held, generation: 77 }]);
  expect(tracker.welcomed(77)).toBe('same');
  tracker.cursor = 5;
  expect(tracker.welcomed(78)).toBe('other');
  expect(tracker.generation).toBe(78);
  expect(tracker.cursor).toBe(0);
  expect(stored.at(-1)).toEqual({ cursor: 0, held: empty, generation: 78 });
  const resumed = new ProgressTracker({ doc: new Y.Doc(), resume: { cursor: 3, held, generation: 77 }, pending: () => 0 });
  expect(resumed.cursor).toBe(3);
  expect(resumed.welcomed(77)).toBe('same');
  expect(resumed.welcomed(78)).toBe('other');
  expect(resumed.cursor).toBe(0);
});

it('a snapshot that did not open claims nothing; its replacement, opening after later entries, claims up to its covers, and past them only if nothing after them failed', () => {
  const t = new ProgressTracker({ doc: new Y.Doc(), pending: () => 0 });
  t.cursor = 6;
  t.snapshotFailed(6);
  expect(t.snapshotUnopened).toBe(true);
  expect(t.covered).toBe(0);
  t.cursor = 10; // entries 7-10 applied
  t.snapshotOpened(6); // the replacement, sent after them
  expect(t.snapshotUnopened).toBe(false);
  expect(t.covered).toBe(10);

  const u = new ProgressTracker({ doc: new Y.Doc(), pending: () => 0 });
  u.cursor = 6;
  u.snapshotFailed(6);
  u.cursor = 10;
  u.unopened(8); // and entry 8 did not open
  u.snapshotOpened(6);
  expect(u.covered).toBe(6); // which of 7-10 failed is not kept: no more than the snapshot is claimed
});

it('a snapshot that opens covering less than one that did not claims no more than its covers', () => {
  const t = new ProgressTracker({ doc: new Y.Doc(), pending: () => 0 });
  t.cursor = 10;
  t.snapshotFailed(10);
  t.snapshotOpened(3); // an older genuine one: entries 4-10 stay unread
  expect(t.covered).toBe(3);
  t.cursor = 15;
  expect(t.covered).toBe(3);
  t.snapshotOpened(10); // one covering as much clears the mark
  expect(t.covered).toBe(15);
});
