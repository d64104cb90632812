/**
 * Compaction folds a room's stored log into its snapshot. It works from storage, not from the
 * in-memory document, so it is safe while other instances append to the same room: only the
 * entries it read (up to their highest sequence number) are replaced.
 */
import { mergeStoredRoom } from './persistence/merge.js';
import type { DocStore } from './persistence/types.js';

/** Returns how many log entries were folded into the snapshot. */
export async function compactRoom(store: DocStore, room: string): Promise<number> {
  const stored = await store.load(room);
  if (stored.updates.length === 0) return 0;
  const snapshot = mergeStoredRoom(stored);
  await store.compact(room, snapshot, stored.lastSeq);
  return stored.updates.length;
}
