/** Turns a stored snapshot plus its log into one update, garbage-collected through a scratch Y.Doc. */
import * as Y from 'yjs';
import type { StoredRoom } from './types.js';

/** Applies the stored state to `doc` in one transaction. Throws if an entry does not apply. */
export function applyStoredRoom(doc: Y.Doc, stored: StoredRoom, origin: unknown): void {
  Y.transact(
    doc,
    () => {
      if (stored.snapshot) Y.applyUpdate(doc, stored.snapshot, origin);
      for (const update of stored.updates) Y.applyUpdate(doc, update, origin);
    },
    origin,
  );
}

export function mergeStoredRoom(stored: StoredRoom): Uint8Array {
  const doc = new Y.Doc({ gc: true });
  try {
    applyStoredRoom(doc, stored, 'storage');
    return Y.encodeStateAsUpdate(doc);
  } finally {
    doc.destroy();
  }
}
