/**
 * Browsers: the document in IndexedDB through y-indexeddb (which stores every update and trims
 * its log itself); meta values in y-indexeddb's custom store.
 */
import type * as Y from 'yjs';
import { IndexeddbPersistence } from 'y-indexeddb';
import type { SyncPersistence } from './types.js';

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
      // y-indexeddb's custom store takes ArrayBuffers: a copy of exactly these bytes.
      await opened().set(key, value.slice().buffer);
    },
    async close() {
      await idb?.destroy();
    },
  };
}
