/**
 * indexedDbPersistence's retry timer (Node, fake-indexeddb, fake setTimeout; fake-indexeddb
 * schedules with setImmediate, left real): after a failed write the whole document is written
 * again after 1 s, 2 s, 4 s... (one timer for a run of failures), and nothing is retried once the
 * document is destroyed or the persistence closed.
 */
import 'fake-indexeddb/auto';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import * as Y from 'yjs';
import { indexedDbPersistence } from '../src/persistence/indexeddb.js';
import type { SyncPersistence } from '../src/persistence/types.js';

/** adds to database `failing` throw, counted */
let failing = '';
let attempts = 0;
const realAdd = IDBObjectStore.prototype.add;
IDBObjectStore.prototype.add = function add(this: IDBObjectStore, ...args: Parameters<IDBObjectStore['add']>): IDBRequest<IDBValidKey> {
  if (this.transaction.db.name !== failing) return realAdd.apply(this, args);
  attempts++;
  throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
};

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  failing = '';
  attempts = 0;
});
afterEach(() => {
  failing = '';
  vi.useRealTimers();
});

/** lets fake-indexeddb's queued work (setImmediate) and the promise chains after it run */
async function idle(): Promise<void> {
  for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
}

async function opened(name: string): Promise<{ doc: Y.Doc; p: SyncPersistence; errors: unknown[] }> {
  const doc = new Y.Doc();
  const errors: unknown[] = [];
  const p = indexedDbPersistence(name);
  await p.open(doc, (err) => errors.push(err));
  await idle();
  return { doc, p, errors };
}

/** advances the fake clock by `ms` and lets the write it starts run */
async function advance(ms: number): Promise<void> {
  vi.advanceTimersByTime(ms);
  await idle();
}

it('the wait doubles while the whole-document write fails; one timer for a run of failures', async () => {
  const name = 'idb-timers-backoff';
  const a = await opened(name);
  failing = name;
  a.doc.getArray<string>('m').push(['x']);
  a.doc.getArray<string>('m').push(['y']);
  a.doc.getArray<string>('m').push(['z']);
  await idle();
  expect(attempts).toBe(3);
  expect(vi.getTimerCount()).toBe(1);
  for (const wait of [1_000, 2_000, 4_000, 8_000]) {
    const before = attempts;
    await advance(wait - 1);
    expect(attempts).toBe(before);
    await advance(1);
    expect(attempts).toBe(before + 1);
    expect(vi.getTimerCount()).toBe(1);
  }
  expect(a.errors).toHaveLength(1);
  failing = '';
  await advance(16_000);
  expect(vi.getTimerCount()).toBe(0);
  await a.p.close();
});

it('no retry after doc.destroy() or close()', async () => {
  for (const how of ['destroy', 'close'] as const) {
    const name = `idb-timers-${how}`;
    const a = await opened(name);
    failing = name;
    a.doc.getArray<string>('m').push(['x']);
    await idle();
    expect(attempts).toBe(1);
    expect(vi.getTimerCount()).toBe(1);
    if (how === 'destroy') a.doc.destroy();
    else {
      const closing = a.p.close();
      await idle();
      await closing;
    }
    await idle();
    expect(vi.getTimerCount()).toBe(0);
    const after = attempts;
    await advance(120_000);
    expect(attempts).toBe(after);
    expect(vi.getTimerCount()).toBe(0);
    failing = '';
    attempts = 0;
    if (how === 'destroy') await a.p.close();
  }
});
