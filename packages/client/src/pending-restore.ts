/**
 * The pending count across restarts, without depending on when its last write landed: when
 * nothing is pending, the provider stores a snapshot of the document (state vector and
 * deletions); at the next start, a stored document that differs from it holds a change nobody
 * confirmed (or one that arrived from elsewhere after the snapshot: counted too, which errs on
 * the safe side and is confirmed at the first sync).
 */
import * as Y from 'yjs';

export function confirmedSnapshot(doc: Y.Doc): Uint8Array {
  return Y.encodeSnapshot(Y.snapshot(doc));
}

/** 1 when `doc` holds anything not in the stored snapshot (or there is none), else 0. */
export function unconfirmedSince(doc: Y.Doc, stored: Uint8Array | undefined): number {
  if (doc.store.clients.size === 0) return 0;
  if (!stored) return 1;
  try {
    return Y.equalSnapshots(Y.decodeSnapshot(stored), Y.snapshot(doc)) ? 0 : 1;
  } catch {
    return 1;
  }
}
