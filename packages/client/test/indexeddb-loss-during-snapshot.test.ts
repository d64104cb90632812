/**
 * indexedDbPersistence when another tab deletes or upgrades the database while a whole-document
 * write (the first snapshot after the load) is in flight on this tab's connection (Node,
 * fake-indexeddb, fake setTimeout). That write still commits on the closing connection; it must not
 * count as storing the document whole: before, it ended the run of failures, which cancelled the
 * reopen, and with no connection every later edit was dropped, close() included (the reload found
 * only what was stored before), and a meta value set then was reported as a second failure.
 */
import 'fake-indexeddb/auto';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it, vi } from 'vitest';
import { idle, opened, push, reloaded } from './helpers/idb-session.js';

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
beforeAll(() => process.on('unhandledRejection', onUnhandled));
afterAll(() => process.off('unhandledRejection', onUnhandled));

/** runs once, right after the first add() to database `name` (the first snapshot's, in these tests) */
let onFirstAdd: { name: string; run: (tx: IDBTransaction) => void } | undefined;
const realAdd = IDBObjectStore.prototype.add;
IDBObjectStore.prototype.add = function add(this: IDBObjectStore, ...args: Parameters<IDBObjectStore['add']>): IDBRequest<IDBValidKey> {
  const hook = onFirstAdd;
  const request = realAdd.apply(this, args);
  if (hook && this.transaction.db.name === hook.name) {
    onFirstAdd = undefined;
    hook.run(this.transaction);
  }
  return request;
};

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  unhandled.splice(0);
  onFirstAdd = undefined;
});
afterEach(() => {
  onFirstAdd = undefined;
  vi.useRealTimers();
});

/** lets fake-indexeddb's queued work (setImmediate) and the promise chains after it run */
async function advance(ms: number): Promise<void> {
  vi.advanceTimersByTime(ms);
  await idle();
}

async function seed(name: string, text: string): Promise<void> {
  const s = await opened(name);
  push(s.doc, text);
  await s.p.close();
}

/** another tab: deletes the database, or opens it at the next version (an upgrade) and closes it */
function otherTab(name: string, what: 'delete' | 'upgrade', tx: IDBTransaction): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = what === 'delete' ? indexedDB.deleteDatabase(name) : indexedDB.open(name, tx.db.version + 1);
    request.onsuccess = () => {
      if (what === 'upgrade') (request.result as IDBDatabase).close();
      resolve(what);
    };
    request.onerror = () => reject(new Error(String(request.error)));
    request.onblocked = () => reject(new Error(`${what} blocked`));
  });
}

for (const what of ['delete', 'upgrade'] as const) {
  it(`another tab's ${what} during the first snapshot write: the database is opened again and later edits are stored, before and at close()`, async () => {
    const name = `idb-loss-during-snapshot-${what}`;
    await seed(name, 'stored earlier');
    let other: Promise<string> | undefined;
    onFirstAdd = { name, run: (tx) => void (other = otherTab(name, what, tx)) };
    const a = await opened(name);
    expect(await other).toBe(what);
    expect(a.errors).toHaveLength(1);
    expect(a.errors[0]).toContain(`IndexedDB "${name}": connection lost (another tab`);
    push(a.doc, 'typed after it');
    // the reopen, after the retry's wait (1 s)
    await advance(1_000);
    expect(await reloaded(name)).toEqual({ texts: ['stored earlier', 'typed after it'], meta: undefined, errors: [] });
    push(a.doc, 'typed on the new connection');
    await idle();
    const closing = a.p.close();
    await idle();
    await closing;
    expect(await reloaded(name)).toEqual({ texts: ['stored earlier', 'typed after it', 'typed on the new connection'], meta: undefined, errors: [] });
    expect(a.errors).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
    expect(unhandled).toEqual([]);
  });
}

it('a meta value set after that loss is held and written with the document on the new connection; the loss is reported once', async () => {
  const name = 'idb-loss-during-snapshot-meta';
  await seed(name, 'stored earlier');
  let other: Promise<string> | undefined;
  onFirstAdd = { name, run: (tx) => void (other = otherTab(name, 'delete', tx)) };
  const a = await opened(name);
  await other;
  push(a.doc, 'typed after the delete');
  await a.p.setMeta('k', new Uint8Array([7]));
  await idle();
  expect(a.errors).toHaveLength(1);
  await advance(1_000);
  expect(await reloaded(name)).toEqual({ texts: ['stored earlier', 'typed after the delete'], meta: [7], errors: [] });
  expect(a.errors).toHaveLength(1);
  await a.p.close();
  expect(unhandled).toEqual([]);
});
