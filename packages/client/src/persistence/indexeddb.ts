/**
 * Browsers: the document in IndexedDB through y-indexeddb (which stores every update and trims
 * its log itself); meta values in y-indexeddb's custom store, each written after the updates before it.
 */
import type * as Y from 'yjs';
import { IndexeddbPersistence } from 'y-indexeddb';
import type { SyncPersistence } from './types.js';

/** y-indexeddb's object stores (its updatesStoreName and customStoreName) */
const UPDATES_STORE = 'updates';
const CUSTOM_STORE = 'custom';

/** `name`: the IndexedDB database (one per document, e.g. the room name). */
export function indexedDbPersistence(name: string): SyncPersistence {
  let idb: IndexeddbPersistence | undefined;
  const opened = (): IndexeddbPersistence => {
    if (!idb) throw new Error('indexedDbPersistence: not opened (pass it to SyncProvider as `persistence`)');
    return idb;
  };
  return {
    async open(doc: Y.Doc) {
      if (idb) throw new Error('indexedDbPersistence: open() called twice (one persistence per document)');
      idb = new IndexeddbPersistence(name, doc);
      await idb.whenSynced;
    },
    async getMeta(key) {
      const value: unknown = await opened().get(key);
      return value instanceof ArrayBuffer ? new Uint8Array(value) : undefined;
    },
    async setMeta(key, value) {
      // A meta value describes the document as stored (sync-provider.ts, sealed/progress.ts), so it
      // must not commit before the updates written ahead of it. IndexedDB orders read-write
      // transactions only when their scopes overlap: y-indexeddb's own set() spans the custom store
      // alone, so this transaction spans the updates store too, and so commits after every update
      // y-indexeddb queued before it. The custom store takes ArrayBuffers: a copy of these bytes.
      const db = opened().db;
      if (!db) throw new Error('indexedDbPersistence: the database is closed');
      const tx = db.transaction([UPDATES_STORE, CUSTOM_STORE], 'readwrite');
      tx.objectStore(CUSTOM_STORE).put(value.slice().buffer, key);
      await new Promise<void>((resolve, reject) => {
        tx.oncomplete = () => resolve();
        tx.onerror = () => reject(tx.error ?? new Error('indexedDbPersistence: meta write failed'));
        tx.onabort = () => reject(tx.error ?? new Error('indexedDbPersistence: meta write aborted'));
      });
    },
    async close() {
      await idb?.destroy();
    },
  };
}
