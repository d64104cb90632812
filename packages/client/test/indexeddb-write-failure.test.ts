/**
 * indexedDbPersistence when a write fails mid-session (Node, fake-indexeddb, faults injected into
 * IDBObjectStore.add): the failed update and every later one are stored without the app doing
 * anything (the whole document written again after 1 s, doubling while that fails), a run of
 * failures is reported once, and meta values wait until the stored document holds what they
 * describe. Before, a write whose transaction aborted after its request succeeded (as a commit
 * over quota does) was lost silently, and after one that threw nothing more was stored.
 */
import 'fake-indexeddb/auto';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import * as Y from 'yjs';
import { indexedDbPersistence } from '../src/persistence/indexeddb.js';
import type { SyncPersistence } from '../src/persistence/types.js';

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
beforeAll(() => process.on('unhandledRejection', onUnhandled));
afterAll(() => process.off('unhandledRejection', onUnhandled));
beforeEach(() => void unhandled.splice(0));

/** how an injected fault shows: the request throws, or the transaction aborts after the request succeeded */
type Fault = 'throws' | 'aborts';
const realAdd = IDBObjectStore.prototype.add;
let faults = { db: '', left: 0, how: 'throws' as Fault };
afterEach(() => {
  faults = { db: '', left: 0, how: 'throws' };
});
IDBObjectStore.prototype.add = function add(this: IDBObjectStore, ...args: Parameters<IDBObjectStore['add']>): IDBRequest<IDBValidKey> {
  if (this.transaction.db.name !== faults.db || faults.left <= 0) return realAdd.apply(this, args);
  faults.left--;
  if (faults.how === 'throws') throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
  const req = realAdd.apply(this, args);
  req.addEventListener('success', () => this.transaction.abort());
  return req;
};

/** The next `n` adds to database `db` fail as `how` says. */
function failAdds(db: string, n: number, how: Fault): void {
  faults = { db, left: n, how };
}

async function rawDb(name: string): Promise<IDBDatabase> {
  return new Promise((done, fail) => {
    const r = indexedDB.open(name);
    r.onsuccess = () => done(r.result);
    r.onerror = () => fail(new Error(String(r.error)));
  });
}

/** The messages database `name` holds, as a restart would load them (read on a connection of its own). */
async function storedTexts(name: string): Promise<string[]> {
  const db = await rawDb(name);
  try {
    const updates = await new Promise<unknown[]>((done, fail) => {
      const r = db.transaction(['updates'], 'readonly').objectStore('updates').getAll();
      r.onsuccess = () => done(r.result);
      r.onerror = () => fail(new Error(String(r.error)));
    });
    const doc = new Y.Doc();
    for (const u of updates) Y.applyUpdate(doc, u as Uint8Array);
    return texts(doc);
  } finally {
    db.close();
  }
}

/** The meta value `key` as stored in database `name`. */
async function storedMeta(name: string, key: string): Promise<number[] | undefined> {
  const db = await rawDb(name);
  try {
    const value = await new Promise<unknown>((done, fail) => {
      const r = db.transaction(['custom'], 'readonly').objectStore('custom').get(key);
      r.onsuccess = () => done(r.result);
      r.onerror = () => fail(new Error(String(r.error)));
    });
    return value instanceof ArrayBuffer ? [...new Uint8Array(value)] : undefined;
  } finally {
    db.close();
  }
}

const texts = (doc: Y.Doc): string[] => doc.getArray<string>('m').toArray().sort();

/** Polls `check` (bounded): IndexedDB has no event for another connection's writes. */
async function waitFor(check: () => boolean | Promise<boolean>, what: () => string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function opened(name: string): Promise<{ doc: Y.Doc; p: SyncPersistence; errors: string[] }> {
  const doc = new Y.Doc();
  const errors: string[] = [];
  const p = indexedDbPersistence(name);
  await p.open(doc, (err) => errors.push(err instanceof Error ? err.message : String(err)));
  return { doc, p, errors };
}

const push = (doc: Y.Doc, text: string): void => doc.getArray<string>('m').push([text]);

for (const [how, why] of [
  ['throws', 'QuotaExceededError'],
  ['aborts', 'transaction aborted'],
] as const) {
  it(`one write that ${how === 'throws' ? 'throws (QuotaExceededError)' : 'aborts after its request succeeded'}: it and every later edit are stored while the app runs, reported once`, async () => {
    const name = `idb-fail-${how}`;
    const a = await opened(name);
    push(a.doc, 'before');
    await waitFor(async () => (await storedTexts(name)).length === 1, () => 'the first edit stored');

    failAdds(name, 1, how);
    push(a.doc, 'the failed write');
    push(a.doc, 'later 1');
    push(a.doc, 'later 2');
    const all = ['before', 'later 1', 'later 2', 'the failed write'];
    let seen: string[] = [];
    // without close(): what a kill -9 now would leave
    await waitFor(
      async () => (seen = await storedTexts(name)).length === all.length,
      () => `every edit stored while the app runs (stored ${JSON.stringify(seen)}, errors ${JSON.stringify(a.errors)})`,
    );
    expect(seen).toEqual(all);
    expect(a.errors).toHaveLength(1);
    expect(a.errors[0]).toContain(`IndexedDB "${name}": storing failed, retrying with the whole document`);
    expect(a.errors[0]).toContain(why);
    await a.p.close();

    const b = await opened(name);
    expect(texts(b.doc)).toEqual(all);
    expect(b.errors).toEqual([]);
    await b.p.close();
    expect(unhandled).toEqual([]);
  });
}

it('a run of failures (the first retry too) is reported once; meta values wait for the whole document; a later failure is a new run', async () => {
  const name = 'idb-fail-run';
  const a = await opened(name);
  await a.p.setMeta('k', new Uint8Array([1]));
  expect(await storedMeta(name, 'k')).toEqual([1]);

  // two edits and the retry after 1 s fail, the one after 2 s more succeeds
  failAdds(name, 3, 'aborts');
  push(a.doc, 'x');
  push(a.doc, 'y');
  await waitFor(() => a.errors.length > 0, () => 'the failure reported');
  await a.p.setMeta('k', new Uint8Array([2]));
  // held: the stored document lacks x and y, so the stored value stays the one before
  expect(await storedMeta(name, 'k')).toEqual([1]);
  expect([...((await a.p.getMeta('k')) ?? [])]).toEqual([2]);
  let meta: number[] | undefined;
  await waitFor(async () => (meta = await storedMeta(name, 'k'))?.[0] === 2, () => `the held meta value written (stored ${JSON.stringify(meta)}, faults left ${faults.left})`);
  expect(faults.left).toBe(0);
  expect(await storedTexts(name)).toEqual(['x', 'y']);
  expect(a.errors).toHaveLength(1);

  failAdds(name, 1, 'throws');
  push(a.doc, 'z');
  await waitFor(() => a.errors.length === 2, () => `a new run reported (errors ${JSON.stringify(a.errors)})`);
  await waitFor(async () => (await storedTexts(name)).length === 3, () => 'z stored');
  await a.p.close();
  expect(a.errors).toHaveLength(2);
  expect(unhandled).toEqual([]);
});

it('close() right after a failed write stores the whole document before the store closes', async () => {
  const name = 'idb-fail-close';
  const a = await opened(name);
  failAdds(name, 1, 'aborts');
  push(a.doc, 'typed just before the app quit');
  await a.p.close();
  expect(await storedTexts(name)).toEqual(['typed just before the app quit']);
  expect(a.errors).toHaveLength(1);
  expect(unhandled).toEqual([]);
});

it('edits typed before and while open() runs are stored when the first snapshot write after the load aborts', async () => {
  const name = 'idb-fail-open';
  const z = await opened(name);
  push(z.doc, 'old');
  await waitFor(async () => (await storedTexts(name)).length === 1, () => 'the first edit stored');
  await z.p.close();

  const doc = new Y.Doc();
  const errors: string[] = [];
  const p = indexedDbPersistence(name);
  push(doc, 'typed before open');
  failAdds(name, 1, 'aborts');
  const opening = p.open(doc, (err) => errors.push(err instanceof Error ? err.message : String(err)));
  push(doc, 'typed during open');
  await opening;
  push(doc, 'typed after open');
  const all = ['old', 'typed after open', 'typed before open', 'typed during open'];
  let seen: string[] = [];
  // without close(): what a kill -9 now would leave
  await waitFor(
    async () => (seen = await storedTexts(name)).length === all.length,
    () => `every edit stored while the app runs (stored ${JSON.stringify(seen)}, errors ${JSON.stringify(errors)}, faults left ${faults.left})`,
  );
  expect(seen).toEqual(all);
  expect(faults.left).toBe(0);
  expect(errors).toHaveLength(1);
  expect(errors[0]).toContain('transaction aborted');
  await p.close();
  expect(await storedTexts(name)).toEqual(all);
  expect(unhandled).toEqual([]);
});

it('a meta value set while an update write is in flight is stored only after that write commits, and not while it failed', async () => {
  const name = 'idb-fail-meta-inflight';
  const a = await opened(name);
  await a.p.setMeta('cur', new Uint8Array([1]));
  expect(await storedMeta(name, 'cur')).toEqual([1]);

  // the edit and the first retry fail; the cursor set right after the edit describes it
  failAdds(name, 2, 'aborts');
  push(a.doc, 'acked edit');
  await a.p.setMeta('cur', new Uint8Array([2]));
  expect([...((await a.p.getMeta('cur')) ?? [])]).toEqual([2]);
  await waitFor(() => a.errors.length > 0, () => 'the failure reported');
  expect(await storedMeta(name, 'cur')).toEqual([1]);
  // each time the cursor is seen stored, the edit it describes is stored too
  let meta: number[] | undefined;
  await waitFor(
    async () => {
      meta = await storedMeta(name, 'cur');
      if (meta?.[0] === 2) expect(await storedTexts(name)).toEqual(['acked edit']);
      return meta?.[0] === 2;
    },
    () => `the held cursor written (stored ${JSON.stringify(meta)}, faults left ${faults.left})`,
  );
  expect(faults.left).toBe(0);
  expect(a.errors).toHaveLength(1);
  await a.p.close();
  expect(unhandled).toEqual([]);
});

it('close() settles within openTimeoutMs when a write never answers, and says so', async () => {
  const name = 'idb-hang-close';
  const doc = new Y.Doc();
  const errors: string[] = [];
  const p = indexedDbPersistence(name, { openTimeoutMs: 300 });
  await p.open(doc, (err) => errors.push(err instanceof Error ? err.message : String(err)));
  await waitFor(async () => (await storedMeta(name, 'none')) === undefined, () => 'the store readable');
  const realTx = IDBDatabase.prototype.transaction;
  IDBDatabase.prototype.transaction = function transaction(this: IDBDatabase, ...args: Parameters<IDBDatabase['transaction']>) {
    if (this.name !== name) return realTx.apply(this, args);
    // a transaction whose requests never answer (an IndexedDB server that hangs)
    const tx = new EventTarget() as unknown as IDBTransaction;
    (tx as unknown as { objectStore: unknown }).objectStore = () => ({ add: () => ({}), put: () => ({}) });
    return tx;
  } as typeof realTx;
  try {
    push(doc, 'x');
    const outcome = await Promise.race([
      p.close().then(() => 'closed'),
      new Promise((r) => setTimeout(r, 5_000)).then(() => 'still pending after 5 s'),
    ]);
    expect(outcome).toBe('closed');
  } finally {
    IDBDatabase.prototype.transaction = realTx;
  }
  expect(errors).toHaveLength(1);
  expect(errors[0]).toContain(`IndexedDB "${name}": writes still unanswered after 300 ms at close`);
  expect(unhandled).toEqual([]);
});

it('an error listener that throws still gets the whole document written again, and its throw goes nowhere', async () => {
  const name = 'idb-fail-listener-throws';
  const doc = new Y.Doc();
  const p = indexedDbPersistence(name);
  let calls = 0;
  await p.open(doc, () => {
    calls++;
    throw new Error('the app listener broke');
  });
  // done once the writes in flight (the snapshot after the load) committed: x is not in that snapshot
  await p.setMeta('k', new Uint8Array([1]));
  failAdds(name, 1, 'aborts');
  push(doc, 'x');
  let seen: string[] = [];
  await waitFor(async () => (seen = await storedTexts(name)).length === 1, () => `x stored again (stored ${JSON.stringify(seen)}, calls ${calls})`, 5_000);
  expect(seen).toEqual(['x']);
  expect(calls).toBe(1);
  await p.close();
  expect(unhandled).toEqual([]);
});
