/**
 * Runs the cold-load path (persistence/stored-bytes.ts: the stamp's check, the log's bounded
 * reader, the depth check, the byte merge, sync step 2) on a made-up room when the server starts.
 * V8 compiles a function on its first call and optimises it after many: without this, the first
 * device to open a stored room after a restart paid for both. Measured on a 2 MB conversation
 * (bench/cold-load.ts): the check and merge took 10-13 ms on the first load after a restart and
 * 2.2 ms once compiled (docs/benchmarks.md, cold-load).
 */
import * as Y from 'yjs';
import { stampSnapshot } from './persistence/snapshot-stamp.js';
import { coldDiff, prepareColdState } from './persistence/stored-bytes.js';
import type { StoredContent } from './persistence/types.js';
import { syncStep2Message } from './room.js';
import type { UpdateLimits } from './update-limits.js';

/** how often the path runs: enough calls for V8 to optimise its loops (a few ms in all) */
const ROUNDS = 40;
/** messages in the made-up room's snapshot, and edits in the log after it */
const MESSAGES = 200;
const TAIL_EDITS = 20;

/** Returns how many rounds ran (0 when the made-up room did not take the cold path). */
export function warmColdPath(limits: UpdateLimits, rounds = ROUNDS): number {
  const stored = madeUpRoom(limits);
  const empty = Uint8Array.of(0); // a fresh device's state vector
  for (let i = 0; i < rounds; i++) {
    const cold = prepareColdState(stored, limits);
    if (!cold) return i;
    syncStep2Message(coldDiff(cold, empty));
  }
  return rounds;
}

/** A conversation as bench/cold-load.ts writes it, smaller: a stamped snapshot, then a log of single edits. */
export function madeUpRoom(limits: UpdateLimits): StoredContent {
  const doc = new Y.Doc();
  doc.clientID = 1;
  const messages = doc.getArray<Y.Text>('messages');
  const meta = doc.getMap<string>('meta');
  doc.transact(() => {
    for (let m = 0; m < MESSAGES; m++) {
      const text = new Y.Text();
      messages.push([text]);
      text.insert(0, `message ${m}; `);
      text.insert(text.length, 'more text');
    }
    meta.set('title', 'warm-up');
  });
  messages.delete(0, 1);
  const snapshot = Y.encodeStateAsUpdate(doc);
  const stamp = stampSnapshot(snapshot, limits);
  const updates: Uint8Array[] = [];
  doc.on('update', (u: Uint8Array) => updates.push(u));
  for (let e = 0; e < TAIL_EDITS; e++) messages.get(e % 10)?.insert(0, `edit ${e} `);
  return { snapshot, snapshotSeq: 1, ...(stamp ? { snapshotStamp: stamp } : {}), updates, lastSeq: 1 + updates.length };
}

