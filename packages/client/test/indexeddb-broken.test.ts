/**
 * A broken IndexedDB does not stop the provider (Node, fake-indexeddb): a stored update that does
 * not apply is skipped and reported, the others load and the store keeps working; a database that
 * fails to open (Safari's "Connection to Indexed Database server lost", private modes) or never
 * answers (ours or y-indexeddb's own open) is reported once and the provider syncs through the
 * relay without it; a connection lost mid-session throws nothing into the app's edit, which still
 * reaches the relay, and is reported once; the edits are stored once it answers again (more in
 * indexeddb-write-failure.test.ts). No rejection is left unhandled.
 */
import 'fake-indexeddb/auto';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import * as Y from 'yjs';
import { WebsocketProvider } from 'y-websocket';
import { freePort } from '../../../test/helpers/process.js';
import { serverPerTest, TEST_SECRET, testToken, type TestServer } from '../../../test/helpers/server.js';
import { SyncProvider, type SyncProviderError } from '../src/index.js';
import { indexedDbPersistence } from '../src/persistence/indexeddb.js';
import type { SyncPersistence } from '../src/persistence/types.js';

// The ws that y-webrtc resolves (as test/fixtures/peer.ts does).
const WebSocket: unknown = createRequire(resolve('node_modules/y-webrtc/package.json'))('ws').WebSocket;
const scope = serverPerTest();
afterEach(() => scope.close());

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
beforeAll(() => process.on('unhandledRejection', onUnhandled));
afterAll(() => process.off('unhandledRejection', onUnhandled));
beforeEach(() => void unhandled.splice(0));

interface Device {
  p: SyncProvider;
  doc: Y.Doc;
  errors: SyncProviderError[];
}

/** A provider on the relay only (its signaling URL leads nowhere), as a device would run it. */
async function device(server: TestServer, room: string, persistence?: SyncPersistence): Promise<Device> {
  const doc = new Y.Doc();
  const errors: SyncProviderError[] = [];
  const p = new SyncProvider(doc, {
    serverUrl: server.url,
    room,
    getToken: () => testToken('dev', ['test-*']),
    signalingUrl: `ws://127.0.0.1:${await freePort()}/signal`,
    relayGraceMs: 0,
    WebSocket,
    ...(persistence ? { persistence } : {}),
  });
  p.on('error', (e) => errors.push(e));
  scope.track(p);
  return { p, doc, errors };
}

async function waitFor(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Another device: the stock y-websocket provider on the relay (a second SyncProvider in this process would share y-webrtc's room). */
async function other(server: TestServer, room: string): Promise<Y.Doc> {
  const doc = new Y.Doc();
  const ws = new WebsocketProvider(`${server.wsUrl}/relay`, room, doc, {
    WebSocketPolyfill: WebSocket as never,
    params: { token: await testToken('other', ['test-*']) },
  });
  scope.track(ws);
  return doc;
}

const texts = (doc: Y.Doc): string[] => doc.getArray<string>('m').toArray().sort();

/** Adds `values` to y-indexeddb's updates store of `dbName` as it would (creating the database as it does). */
async function storeRaw(dbName: string, values: Uint8Array[]): Promise<void> {
  const db: IDBDatabase = await new Promise((done, fail) => {
    const r = indexedDB.open(dbName);
    r.onupgradeneeded = () => {
      r.result.createObjectStore('updates', { autoIncrement: true });
      r.result.createObjectStore('custom');
    };
    r.onsuccess = () => done(r.result);
    r.onerror = () => fail(new Error(String(r.error)));
  });
  await new Promise<void>((done, fail) => {
    const tx = db.transaction(['updates'], 'readwrite');
    for (const value of values) tx.objectStore('updates').add(value);
    tx.oncomplete = () => done();
    tx.onerror = () => fail(new Error(String(tx.error)));
  });
  db.close();
}

/** How many entries y-indexeddb's updates store of `dbName` holds. */
async function countRaw(dbName: string): Promise<number> {
  const db: IDBDatabase = await new Promise((done, fail) => {
    const r = indexedDB.open(dbName);
    r.onsuccess = () => done(r.result);
    r.onerror = () => fail(new Error(String(r.error)));
  });
  try {
    return await new Promise<number>((done, fail) => {
      const r = db.transaction(['updates'], 'readonly').objectStore('updates').count();
      r.onsuccess = () => done(r.result);
      r.onerror = () => fail(new Error(String(r.error)));
    });
  } finally {
    db.close();
  }
}

/**
 * Makes indexedDB.open(dbName) return a request that `answer` drives, from its `from`-th call on
 * (1: every call); other names and earlier calls open as usual.
 */
function breakOpen(dbName: string, answer: (req: Record<string, unknown>) => void, from = 1): () => void {
  const realOpen = indexedDB.open.bind(indexedDB);
  const factory = indexedDB as unknown as { open: unknown };
  let calls = 0;
  factory.open = (name: string, version?: number) => {
    if (name !== dbName || ++calls < from) return realOpen(name, version);
    const req: Record<string, unknown> = {};
    answer(req);
    return req;
  };
  return () => {
    factory.open = realOpen;
  };
}

it('a stored update that does not apply is skipped and reported once; the rest loads and syncs, and the store keeps working', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
  const room = 'test-conversation-idb-torn';
  const earlier = new Y.Doc();
  const updates: Uint8Array[] = [];
  earlier.on('update', (u: Uint8Array) => updates.push(u));
  earlier.getArray<string>('m').push(['stored before']);
  earlier.getArray<string>('m').push(['stored after']);
  expect(updates).toHaveLength(2);
  await storeRaw('idb-torn', [updates[0]!, new Uint8Array([1, 2, 3]), updates[1]!]);

  const a = await device(server, room, indexedDbPersistence('idb-torn'));
  a.doc.getArray<string>('m').push(['typed while starting']);
  const b = await other(server, room);
  const all = ['stored after', 'stored before', 'typed while starting'];
  await waitFor(() => texts(b).length === 3, 'the other device to get every edit');
  expect(texts(b)).toEqual(all);
  expect(a.p.status).toBe('relay');
  expect(a.errors).toHaveLength(1);
  expect(a.errors[0]).toMatchObject({ source: 'persistence' });
  expect(a.errors[0]!.message).toContain('1 of 3 stored updates could not be applied and were skipped');
  expect(unhandled).toEqual([]);
  // The log is replaced by one snapshot after the skip (the edit typed meanwhile may follow it).
  await rawAtMost('idb-torn', 2);
  a.p.destroy();

  // The edit made while it loaded was stored: the store still works after a skipped update, and
  // the skipped one is gone (nothing to report).
  const reloaded = new Y.Doc();
  const errors: unknown[] = [];
  const again = indexedDbPersistence('idb-torn');
  await again.open(reloaded, (err) => errors.push(err));
  expect(texts(reloaded)).toEqual(all);
  expect(errors).toEqual([]);
  await again.close();
  expect(unhandled).toEqual([]);
});

/** Resolves once database `name` holds at most `n` raw entries (bounded; IndexedDB has no event for another connection's writes). */
async function rawAtMost(name: string, n: number, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while ((await countRaw(name)) > n) {
    if (Date.now() > end) throw new Error(`timed out waiting for "${name}" to hold at most ${n} entries (${await countRaw(name)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Safari's answer once its IndexedDB server process is gone. */
function serverLost(req: Record<string, unknown>): void {
  req['error'] = new DOMException('Connection to Indexed Database server lost. Refresh the page to try again', 'UnknownError');
  setTimeout(() => (req['onerror'] as ((e: unknown) => void) | undefined)?.({ target: req }), 10);
}

it('an IndexedDB that fails to open is reported once and the provider syncs through the relay', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
  const room = 'test-conversation-idb-lost';
  const restore = breakOpen('idb-lost', serverLost);
  try {
    const a = await device(server, room, indexedDbPersistence('idb-lost'));
    a.doc.getArray<string>('m').push(['typed on a browser whose IndexedDB is broken']);
    const b = await other(server, room);
    await waitFor(() => texts(b).length === 1, 'the other device to get the edit');
    expect(texts(b)).toEqual(['typed on a browser whose IndexedDB is broken']);
    await waitFor(() => a.p.status === 'relay', 'the broken device on the relay');
    expect(a.errors).toHaveLength(1);
    expect(a.errors[0]).toMatchObject({ source: 'persistence' });
    expect(a.errors[0]!.message).toContain('Connection to Indexed Database server lost');
    expect(unhandled).toEqual([]);
  } finally {
    restore();
  }
});

// Our read opens the database first (open 1), y-indexeddb after it (open 2): either may hang.
for (const [which, db, from] of [['that never answers', 'idb-hung', 1], ["whose second open (y-indexeddb's own, after the read did) never answers", 'idb-hung2', 2]] as const) {
  it(`an IndexedDB ${which} is given up after openTimeoutMs, reported once, and the provider syncs through the relay`, async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
    const room = `test-conversation-${db}`;
    const restore = breakOpen(db, () => undefined, from);
    try {
      const a = await device(server, room, indexedDbPersistence(db, { openTimeoutMs: 300 }));
      a.doc.getArray<string>('m').push([`typed while ${db} hangs`]);
      const b = await other(server, room);
      await waitFor(() => texts(b).length === 1, 'the other device to get the edit');
      expect(texts(b)).toEqual([`typed while ${db} hangs`]);
      expect(a.errors).toEqual([{ source: 'persistence', message: `IndexedDB "${db}" did not open and load within 300 ms` }]);
      expect(unhandled).toEqual([]);
    } finally {
      restore();
    }
  });
}

it('a skipped update is dropped right after the load (the log replaced by one snapshot): the store then loads with nothing to report', async () => {
  const earlier = new Y.Doc();
  earlier.getArray<string>('m').push(['stored']);
  await storeRaw('idb-trim', [Y.encodeStateAsUpdate(earlier), new Uint8Array([1, 2, 3]), Y.encodeStateAsUpdate(earlier)]);
  const doc = new Y.Doc();
  const errors: unknown[] = [];
  const first = indexedDbPersistence('idb-trim');
  await first.open(doc, (err) => errors.push(err));
  expect(errors).toHaveLength(1);
  await rawAtMost('idb-trim', 1);
  doc.getArray<string>('m').push(['after the load']);
  await first.close();

  const reloaded = new Y.Doc();
  const again = indexedDbPersistence('idb-trim');
  const errorsAgain: unknown[] = [];
  await again.open(reloaded, (err) => errorsAgain.push(err));
  expect(reloaded.getArray<string>('m').toArray()).toEqual(['stored', 'after the load']);
  expect(errorsAgain).toEqual([]);
  await again.close();
  expect(unhandled).toEqual([]);
});

it("y-indexeddb's own open failing just after the read succeeded rejects open() with no unhandled rejection, and close() settles", async () => {
  const restore = breakOpen('idb-second', serverLost, 2);
  try {
    const persistence = indexedDbPersistence('idb-second');
    await expect(persistence.open(new Y.Doc(), () => undefined)).rejects.toThrow('Connection to Indexed Database server lost');
    await persistence.close();
    // Node reports a rejection nobody handled once the microtasks after it have run: one turn.
    await new Promise((r) => setImmediate(r));
    expect(unhandled).toEqual([]);
  } finally {
    restore();
  }
});

/** `p`, or a rejection naming `what` when it has not settled within `ms` (a hang fails the test instead of stalling it). */
async function within<T>(p: Promise<T>, what: string, ms = 5_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

it("close() while y-indexeddb's own open hangs settles once the open is given up (openTimeoutMs), and the pending open() rejects", async () => {
  let asked!: () => void;
  const secondOpen = new Promise<void>((done) => (asked = done));
  const restore = breakOpen('idb-hung-close', () => asked(), 2);
  try {
    const persistence = indexedDbPersistence('idb-hung-close', { openTimeoutMs: 300 });
    const opening = persistence.open(new Y.Doc(), () => undefined);
    const opened = opening.then(() => 'resolved', (err: unknown) => String(err));
    await within(secondOpen, "y-indexeddb's open");
    // close() waits for the open (edits typed during it are written at its end): bounded by its timeout
    await within(persistence.close(), 'close()');
    expect(await within(opened, 'open()')).toBe('Error: IndexedDB "idb-hung-close" did not open and load within 300 ms');
    expect(unhandled).toEqual([]);
  } finally {
    restore();
  }
});

it('the connection to IndexedDB lost mid-session: the edit reaches the other device, nothing throws into the app, one persistence error; once it answers again every edit is stored', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
  const room = 'test-conversation-idb-drop';
  const a = await device(server, room, indexedDbPersistence('idb-drop'));
  const b = await other(server, room);
  a.doc.getArray<string>('m').push(['before the loss']);
  await waitFor(() => texts(b).length === 1, 'the other device to get the first edit');
  // Safari, once its IndexedDB server process is gone: every transaction() on the open connection throws.
  const proto = IDBDatabase.prototype as unknown as { transaction: unknown };
  const realTransaction = proto.transaction;
  proto.transaction = () => {
    throw new DOMException('The database connection is closing.', 'InvalidStateError');
  };
  try {
    expect(() => a.doc.getArray<string>('m').push(['after the loss'])).not.toThrow();
    await waitFor(() => texts(b).length === 2, 'the other device to get the edit made after the loss');
    expect(() => a.doc.getArray<string>('m').push(['again'])).not.toThrow();
    await waitFor(() => texts(b).length === 3, 'the other device to get the next edit');
    expect(texts(b)).toEqual(['after the loss', 'again', 'before the loss']);
    await waitFor(() => a.errors.length > 0, 'the persistence error');
    expect(a.errors).toHaveLength(1);
    expect(a.errors[0]).toMatchObject({ source: 'persistence' });
    expect(a.errors[0]!.message).toContain('The database connection is closing.');
  } finally {
    proto.transaction = realTransaction;
  }
  // The connection answers again: destroy() writes the whole document (the failed writes are
  // retried) before the store closes, so a restart has every edit.
  a.p.destroy();
  await a.p.whenClosed();
  const reloaded = new Y.Doc();
  const again = indexedDbPersistence('idb-drop');
  await again.open(reloaded, () => undefined);
  expect(texts(reloaded)).toEqual(['after the loss', 'again', 'before the loss']);
  await again.close();
  await new Promise((r) => setImmediate(r));
  expect(unhandled).toEqual([]);
});
