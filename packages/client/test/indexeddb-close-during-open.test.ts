/**
 * indexedDbPersistence closed while open() still runs (Node, fake-indexeddb): a provider destroyed
 * right after it was created, or an app quitting while the database opens. Edits typed before the
 * connection is there are in the document only, written by the snapshot at the end of the load
 * (README: "Edits made before or while the database opens are written in one snapshot right after
 * the load"), so close() waits for the open, then for that write. Before, close() cut the open
 * short and they were never written, with nothing reported.
 */
import 'fake-indexeddb/auto';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import * as Y from 'yjs';
import { indexedDbPersistence } from '../src/persistence/indexeddb.js';

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
beforeAll(() => process.on('unhandledRejection', onUnhandled));
afterAll(() => process.off('unhandledRejection', onUnhandled));
beforeEach(() => void unhandled.splice(0));

/** connections opened to each database, counted as they open */
const opens = new Map<string, number>();
/** resolves once the n-th connection to a database has opened */
const waiters: Array<{ name: string; n: number; resolve: () => void }> = [];
const realOpen = indexedDB.open.bind(indexedDB);
indexedDB.open = (name: string, version?: number): IDBOpenDBRequest => {
  const request = realOpen(name, version);
  request.addEventListener('success', () => {
    const n = (opens.get(name) ?? 0) + 1;
    opens.set(name, n);
    for (const w of waiters.filter((w) => w.name === name && w.n <= n)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  return request;
};

/** the n-th connection to `name` (counted from now) has opened, or a rejection after `ms` */
function connection(name: string, n: number, ms = 5_000): Promise<void> {
  const target = (opens.get(name) ?? 0) + n;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const opened = new Promise<void>((resolve) => waiters.push({ name, n: target, resolve }));
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`connection ${n} to ${name}: not opened after ${ms} ms`)), ms);
  });
  return Promise.race([opened, late]).finally(() => clearTimeout(timer));
}

const push = (doc: Y.Doc, text: string): void => doc.getArray<string>('m').push([text]);
const texts = (doc: Y.Doc): string[] => doc.getArray<string>('m').toArray().sort();

async function stored(name: string): Promise<{ texts: string[]; errors: string[] }> {
  const doc = new Y.Doc();
  const errors: string[] = [];
  const p = indexedDbPersistence(name);
  await p.open(doc, (err) => errors.push(String(err)));
  await p.close();
  return { texts: texts(doc), errors };
}

async function seed(name: string, text: string): Promise<void> {
  const doc = new Y.Doc();
  const p = indexedDbPersistence(name);
  await p.open(doc, () => undefined);
  push(doc, text);
  await p.close();
}

// the read (its own connection), then y-indexeddb's connection and load (the second one)
for (const when of ['while the stored updates are read', "while y-indexeddb's connection loads"] as const) {
  it(`close() ${when}: what was typed before and during open() is stored, with what was stored before`, async () => {
    const name = `idb-close-during-open-${when === 'while the stored updates are read' ? 'read' : 'load'}`;
    await seed(name, 'stored earlier');
    const doc = new Y.Doc();
    push(doc, 'typed before open()');
    const errors: string[] = [];
    const p = indexedDbPersistence(name);
    const opening = p.open(doc, (err) => errors.push(String(err)));
    push(doc, 'typed while it opened');
    if (when !== 'while the stored updates are read') await connection(name, 2);
    await p.close();
    await opening;
    expect(await stored(name)).toEqual({ texts: ['stored earlier', 'typed before open()', 'typed while it opened'], errors: [] });
    expect(texts(doc)).toEqual(['stored earlier', 'typed before open()', 'typed while it opened']);
    expect(errors).toEqual([]);
    expect(unhandled).toEqual([]);
  });
}

it('close() during open(): an edit typed once close() resolved is not stored (storing stopped)', async () => {
  const name = 'idb-close-during-open-after';
  const doc = new Y.Doc();
  const p = indexedDbPersistence(name);
  const opening = p.open(doc, () => undefined);
  push(doc, 'typed while it opened');
  await p.close();
  await opening;
  push(doc, 'typed after close()');
  expect((await stored(name)).texts).toEqual(['typed while it opened']);
  expect(unhandled).toEqual([]);
});
