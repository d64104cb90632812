/**
 * indexedDbPersistence when the browser closes its connection for good (Node, fake-indexeddb's
 * forceCloseDatabase fires `close` as a browser does when storage is cleared; another connection's
 * deleteDatabase fires `versionchange`; fake setTimeout, fake-indexeddb's setImmediate left real):
 * the database is opened again after the retry's wait, the whole document and the meta values
 * are written on the new connection, the loss is reported once, and nothing is attempted after
 * destroy or close(). Before, every write threw InvalidStateError and the retry failed every
 * minute for ever: what was typed after the loss was not stored.
 */
import 'fake-indexeddb/auto';
import { forceCloseDatabase } from 'fake-indexeddb';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it, vi } from 'vitest';
import { idle, opened, push, reloaded } from './helpers/idb-session.js';

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
beforeAll(() => process.on('unhandledRejection', onUnhandled));
afterAll(() => process.off('unhandledRejection', onUnhandled));

/** every connection opened, and those closed (by their owner or forced) */
const connections: IDBDatabase[] = [];
const closed = new WeakSet<IDBDatabase>();
/** opens of database `refused.name` fail (refused) or never answer (hang), counted */
let refused = { name: '', how: 'fails' as 'fails' | 'hangs', attempts: 0 };
const realOpen = indexedDB.open.bind(indexedDB);
indexedDB.open = (name: string, version?: number): IDBOpenDBRequest => {
  if (name === refused.name) {
    refused.attempts++;
    // a version of 0 throws TypeError (lib0's openDB rejects); a plain object never answers
    return refused.how === 'fails' ? realOpen(name, 0) : ({} as IDBOpenDBRequest);
  }
  const request = realOpen(name, version);
  request.addEventListener('success', () => connections.push(request.result));
  return request;
};
const realClose = IDBDatabase.prototype.close;
IDBDatabase.prototype.close = function close(this: IDBDatabase): void {
  closed.add(this);
  realClose.call(this);
};

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  unhandled.splice(0);
  refused = { name: '', how: 'fails', attempts: 0 };
});
afterEach(() => {
  refused = { name: '', how: 'fails', attempts: 0 };
  vi.useRealTimers();
});

/** lets fake-indexeddb's queued work (setImmediate) and the promise chains after it run */
/** advances the fake clock by `ms` and lets what it starts run */
async function advance(ms: number): Promise<void> {
  vi.advanceTimersByTime(ms);
  await idle();
}

/** the one connection to `name` still open (the persistence's own) */
function live(name: string): IDBDatabase {
  const open = connections.filter((db) => db.name === name && !closed.has(db));
  expect(open).toHaveLength(1);
  return open[0] as IDBDatabase;
}

/** as a browser does when the user clears the site's storage: the connection fires `close` */
function browserCloses(name: string): void {
  const db = live(name);
  closed.add(db);
  (forceCloseDatabase as unknown as (db: IDBDatabase) => void)(db);
}

it('after the browser closes the connection, edits typed after it and meta values are stored on a new one; reported once', async () => {
  const name = 'idb-reopen-close';
  const a = await opened(name);
  push(a.doc, 'before');
  await a.p.setMeta('k', new Uint8Array([1]));
  await idle();

  browserCloses(name);
  await idle();
  push(a.doc, 'after 1');
  push(a.doc, 'after 2');
  await a.p.setMeta('k', new Uint8Array([2]));
  expect([...((await a.p.getMeta('k')) ?? [])]).toEqual([2]);
  await advance(1_000);

  expect(await reloaded(name)).toEqual({ texts: ['after 1', 'after 2', 'before'], meta: [2], errors: [] });
  expect(a.errors).toHaveLength(1);
  expect(a.errors[0]).toBe(`IndexedDB "${name}": connection lost (the browser closed the connection); reopening it and writing the whole document again`);

  // the new connection stores as the first did
  push(a.doc, 'after reopen');
  await a.p.setMeta('k', new Uint8Array([3]));
  await idle();
  expect(await reloaded(name)).toEqual({ texts: ['after 1', 'after 2', 'after reopen', 'before'], meta: [3], errors: [] });
  expect(a.errors).toHaveLength(1);
  await a.p.close();
  expect(vi.getTimerCount()).toBe(0);
  expect(unhandled).toEqual([]);
});

it('a connection closed without an event (writes throw InvalidStateError) is opened again the same way', async () => {
  const name = 'idb-reopen-invalid-state';
  const a = await opened(name);
  push(a.doc, 'before');
  await idle();
  // closed with no `close` event (as a connection Safari dropped): the next transaction throws InvalidStateError
  live(name).close();
  push(a.doc, 'after');
  await idle();
  expect(a.errors).toHaveLength(1);
  expect(a.errors[0]).toContain(`IndexedDB "${name}": connection lost (InvalidStateError`);
  await advance(1_000);
  expect(await reloaded(name)).toEqual({ texts: ['after', 'before'], meta: undefined, errors: [] });
  expect(a.errors).toHaveLength(1);
  await a.p.close();
  expect(unhandled).toEqual([]);
});

it('another tab deletes the database: this one closes, reports once, and creates it again with the whole document and the meta values it read', async () => {
  const name = 'idb-reopen-deleted';
  const earlier = await opened(name);
  await earlier.p.setMeta('k', new Uint8Array([1]));
  await earlier.p.close();
  const a = await opened(name);
  // read, as the provider reads its meta values at start, and not set in this session
  expect([...((await a.p.getMeta('k')) ?? [])]).toEqual([1]);
  push(a.doc, 'before');
  await idle();

  // not blocked: the persistence closes its connection on `versionchange`
  await new Promise<void>((resolve, reject) => {
    const request = indexedDB.deleteDatabase(name);
    request.onsuccess = () => resolve();
    request.onerror = () => reject(new Error(String(request.error)));
    request.onblocked = () => reject(new Error('delete blocked'));
  });
  expect(a.errors).toEqual([`IndexedDB "${name}": connection lost (another tab deleted the database); reopening it and writing the whole document again`]);
  push(a.doc, 'after');
  await advance(1_000);
  expect(await reloaded(name)).toEqual({ texts: ['after', 'before'], meta: [1], errors: [] });
  expect(a.errors).toHaveLength(1);
  await a.p.close();
  expect(unhandled).toEqual([]);
});

it('close() right after the loss opens the database once more and stores what was typed', async () => {
  const name = 'idb-reopen-at-close';
  const a = await opened(name);
  browserCloses(name);
  await idle();
  push(a.doc, 'typed just before the app quit');
  const closing = a.p.close();
  await idle();
  await closing;
  expect(vi.getTimerCount()).toBe(0);
  expect(await reloaded(name)).toEqual({ texts: ['typed just before the app quit'], meta: undefined, errors: [] });
  expect(a.errors).toHaveLength(1);
});

it('close() while the database is being opened again waits for that open and stores what was typed', async () => {
  const name = 'idb-reopen-close-while-opening';
  const a = await opened(name);
  browserCloses(name);
  await idle();
  push(a.doc, 'typed while it reopened');
  vi.advanceTimersByTime(1_000); // the open starts; close() comes before it answers
  const closing = a.p.close();
  await idle();
  await closing;
  expect(vi.getTimerCount()).toBe(0);
  expect(await reloaded(name)).toEqual({ texts: ['typed while it reopened'], meta: undefined, errors: [] });
  expect(a.errors).toHaveLength(1);
  expect(unhandled).toEqual([]);
});

it('while the database does not open again the wait doubles, reported once; nothing is attempted after destroy or close()', async () => {
  for (const how of ['destroy', 'close'] as const) {
    const name = `idb-reopen-refused-${how}`;
    const a = await opened(name);
    browserCloses(name);
    refused = { name, how: 'fails', attempts: 0 };
    await idle();
    push(a.doc, 'x');
    expect(vi.getTimerCount()).toBe(1);
    for (const [wait, attempts] of [[1_000, 1], [2_000, 2], [4_000, 3], [8_000, 4]] as const) {
      await advance(wait - 1);
      expect(refused.attempts).toBe(attempts - 1);
      await advance(1);
      expect(refused.attempts).toBe(attempts);
      expect(vi.getTimerCount()).toBe(1);
    }
    expect(a.errors).toHaveLength(1);
    if (how === 'destroy') a.doc.destroy();
    else {
      const closing = a.p.close();
      await idle();
      await closing;
    }
    await idle();
    expect(vi.getTimerCount()).toBe(0);
    const after = refused.attempts;
    await advance(120_000);
    expect(refused.attempts).toBe(after);
    if (how === 'destroy') await a.p.close();
  }
  expect(unhandled).toEqual([]);
});

it('an open that never answers is given up after openTimeoutMs, and destroy leaves no timer while one is in flight', async () => {
  const name = 'idb-reopen-hangs';
  const a = await opened(name);
  browserCloses(name);
  refused = { name, how: 'hangs', attempts: 0 };
  await idle();
  await advance(1_000);
  expect(refused.attempts).toBe(1);
  // the open's own bound (openTimeoutMs, 10 s), then the next wait (2 s)
  await advance(10_000);
  await advance(2_000);
  expect(refused.attempts).toBe(2);
  expect(vi.getTimerCount()).toBe(1);
  a.doc.destroy();
  await idle();
  expect(vi.getTimerCount()).toBe(0);
  await advance(120_000);
  expect(refused.attempts).toBe(2);
  await a.p.close();
  expect(a.errors).toHaveLength(1);
  expect(unhandled).toEqual([]);
});
