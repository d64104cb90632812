/** A document with indexedDbPersistence on fake-indexeddb, for the persistence tests (fake timers or real). */
import * as Y from 'yjs';
import { indexedDbPersistence } from '../../src/persistence/indexeddb.js';
import type { SyncPersistence } from '../../src/persistence/types.js';

/** lets fake-indexeddb's queued requests (setImmediate) and their promise chains settle */
export async function idle(): Promise<void> {
  for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
}

/** a fresh document with the persistence `name` opened on it, and the errors it reports */
export async function opened(name: string): Promise<{ doc: Y.Doc; p: SyncPersistence; errors: string[] }> {
  const doc = new Y.Doc();
  const errors: string[] = [];
  const p = indexedDbPersistence(name);
  await p.open(doc, (err) => errors.push(err instanceof Error ? err.message : String(err)));
  await idle();
  return { doc, p, errors };
}

export const push = (doc: Y.Doc, text: string): void => doc.getArray<string>('m').push([text]);
export const texts = (doc: Y.Doc): string[] => doc.getArray<string>('m').toArray().sort();

/** what a reload now would find (another instance still open: what a kill -9 now would leave); meta key 'k' */
export async function reloaded(name: string): Promise<{ texts: string[]; meta: number[] | undefined; errors: string[] }> {
  const b = await opened(name);
  const meta = await b.p.getMeta('k');
  const found = { texts: texts(b.doc), meta: meta && [...meta], errors: b.errors };
  await b.p.close();
  return found;
}
