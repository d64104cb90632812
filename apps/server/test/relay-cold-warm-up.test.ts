/**
 * The start-up warm-up (relay/cold-path-warm-up.ts) must run the path a stored room takes on its
 * first load: a snapshot taken on its stamp, a log checked and merged byte for byte. Were the
 * made-up room to fall off that path (no stamp, a merge that gives up), the warm-up would compile
 * other code than a cold load runs, and nothing else would tell.
 */
import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { madeUpRoom, warmColdPath } from '../src/relay/cold-path-warm-up.js';
import { coldDiff, prepareColdState } from '../src/relay/persistence/stored-bytes.js';
import { DEFAULT_UPDATE_LIMITS } from '../src/relay/update-limits.js';

describe('relay cold-path warm-up', () => {
  it('takes the stamped cold path and serves the made-up room whole', () => {
    const stored = madeUpRoom(DEFAULT_UPDATE_LIMITS);
    expect(stored.snapshotStamp).toBeDefined();
    expect(stored.updates.length).toBeGreaterThan(0);
    const cold = prepareColdState(stored, DEFAULT_UPDATE_LIMITS);
    expect(cold?.stamped).toBe(true);
    expect(cold?.skip.size).toBe(0);
    // The byte merge served it (not Yjs's diff): the answer is the merged update itself.
    if (!cold) throw new Error('no cold state');
    expect(coldDiff(cold, Uint8Array.of(0))).toBe(cold.update);
    const served = new Y.Doc();
    Y.applyUpdate(served, cold.update);
    const expected = new Y.Doc();
    if (stored.snapshot) Y.applyUpdate(expected, stored.snapshot);
    for (const u of stored.updates) Y.applyUpdate(expected, u);
    expect(served.getArray<Y.Text>('messages').toJSON()).toEqual(expected.getArray<Y.Text>('messages').toJSON());
    expect(served.getArray('messages').length).toBeGreaterThan(100);
  });

  it('runs every round it is asked for', () => {
    expect(warmColdPath(DEFAULT_UPDATE_LIMITS, 3)).toBe(3);
  });
});
