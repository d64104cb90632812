/**
 * A sealed entry that arrives before an update it depends on waits in the document (Yjs pending
 * structs); Yjs emits no `update` for it, so persistence does not store it. Before, the stored
 * sealed cursor moved past it anyway: after a restart the device never read it again, and when the
 * dependency came later the dependent edit was missing there for good. Now the stored cursor stays
 * below the first entry applied while something waits (src/sealed/progress-tracker.ts), until
 * nothing waits. Unit level (ProgressTracker), then real providers, transports and an in-process
 * server with an UpdateLogStore that outlives the provider (an app restart).
 */
import { afterEach, expect, it } from 'vitest';
import * as Y from 'yjs';
import { serverPerTest, TEST_SECRET } from '../../../test/helpers/server.js';
import { ProgressTracker } from '../src/sealed/progress-tracker.js';
import type { SealedProgress } from '../src/sealed/progress.js';
import { device, MemStore, settled, when } from './helpers/store-device.js';

const scope = serverPerTest();
afterEach(() => scope.close());
const KEY = new Uint8Array(32).fill(11);

/** 'one', then 'two' typed after it on the same device: the second update depends on the first */
function dependentPair(): { one: Uint8Array; two: Uint8Array } {
  const source = new Y.Doc();
  source.getArray<string>('m').push(['one']);
  const one = Y.encodeStateAsUpdate(source);
  const sv = Y.encodeStateVector(source);
  source.getArray<string>('m').push(['two']);
  return { one, two: Y.encodeStateAsUpdate(source, sv) };
}

const sorted = (doc: Y.Doc): string[] => doc.getArray<string>('m').toArray().sort();

it('the stored cursor stays below an entry applied while the document waits on a missing update, and passes it once nothing waits', () => {
  const { one, two } = dependentPair();
  const other = new Y.Doc();
  other.getArray<string>('m').push(['independent']);
  const doc = new Y.Doc();
  const stored: SealedProgress[] = [];
  const tracker = new ProgressTracker({ doc, resume: { cursor: 0, held: Y.encodeStateVector(new Y.Doc()), generation: 3 }, onProgress: (p) => stored.push(p), pending: () => 0 });
  const apply = (seq: number, update: Uint8Array): void => {
    Y.applyUpdate(doc, update);
    tracker.cursor = seq;
    tracker.applied(seq);
    tracker.close(); // the report due now (it waits PROGRESS_MS otherwise)
  };

  apply(1, Y.encodeStateAsUpdate(other));
  expect(stored.at(-1)?.cursor).toBe(1);
  apply(2, two);
  expect(doc.store.pendingStructs).not.toBeNull();
  expect(stored.at(-1)?.cursor).toBe(1);
  apply(3, Y.encodeStateAsUpdate(other));
  expect(stored.at(-1)?.cursor).toBe(1);
  // the snapshot of the room still covers every entry applied (it carries what waits)
  expect(tracker.covered).toBe(3);
  apply(4, one);
  expect(doc.store.pendingStructs).toBeNull();
  expect(stored.at(-1)?.cursor).toBe(4);
  expect(sorted(doc)).toEqual(['independent', 'one', 'two']);
});

it('sealed: an entry read before its dependency is read again after a restart, and shows once the dependency arrives', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
  const room = 'test-conversation-waiting-cursor';
  const { one, two } = dependentPair();

  // a member whose document holds 'two' without 'one' (its own store lost it) uploads it: entry 1
  const memberDoc = new Y.Doc();
  Y.applyUpdate(memberDoc, two);
  memberDoc.getArray<string>('m').push(['from the member']);
  const member = await device(scope, server.url, room, { key: KEY, sub: 'member', doc: memberDoc });
  await when(() => settled(member), 'the member uploaded');
  await member.stop();

  // this device reads it ('two' waits), types, and quits
  const store = new MemStore();
  const a = await device(scope, server.url, room, { key: KEY, store, sub: 'a' });
  await when(() => sorted(a.doc).includes('from the member'), 'a read the member');
  expect(a.doc.store.pendingStructs).not.toBeNull();
  a.doc.getArray<string>('m').push(['from a']);
  await when(() => settled(a), 'a acked');
  await a.stop();
  await a.p.whenClosed();
  const cursorAtQuit = store.cursor();

  // 'one' arrives while it is away
  const lateDoc = new Y.Doc();
  Y.applyUpdate(lateDoc, one);
  const late = await device(scope, server.url, room, { key: KEY, sub: 'late', doc: lateDoc });
  await when(() => settled(late) && sorted(late.doc).includes('two'), 'the dependency uploaded');
  await late.stop();

  const again = await device(scope, server.url, room, { key: KEY, store, sub: 'a' });
  await when(() => settled(again), 'a again, caught up');
  expect(sorted(again.doc)).toEqual(['from a', 'from the member', 'one', 'two']);
  expect(again.doc.store.pendingStructs).toBeNull();
  // the entry 'two' came in was not stored: the cursor stored at the quit did not pass it
  expect(cursorAtQuit).toBe(0);
  expect(again.errors).toEqual([]);
  await again.stop();
  await again.p.whenClosed();
  // stored whole now: the cursor passes every entry
  expect(store.texts().sort()).toEqual(['from a', 'from the member', 'one', 'two']);
  expect(store.cursor()).toBeGreaterThanOrEqual(3);
});
