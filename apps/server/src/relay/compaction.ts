/**
 * Compaction folds a room's stored log into its snapshot. It reads storage, not only memory, so
 * it is safe while other instances append to the same room: only the entries it read (up to
 * their highest sequence number) are replaced.
 *
 * Fast path: the room's live document usually holds everything storage holds already (it loaded
 * the snapshot and accepted the log). When it provably does — storage still has the snapshot the
 * room knows, and the live state contains every log entry read (structs and deletions) — the
 * snapshot is simply the live state, encoded once. Otherwise (another instance compacted or
 * appended something not yet seen here) the stored state is merged through a scratch document.
 *
 * The snapshot is stored with its stamp (persistence/snapshot-stamp.ts): the cold-load check run
 * here, so a cold load of it reads only the log after it.
 *
 * Entries set aside while merging (over the limits, or throwing: persistence/merge.ts) are not
 * lost: they are appended again after the snapshot in the transaction that stores it
 * (DocStore.compact's `keep`), so they stay in storage, apart, whatever stops the compaction
 * midway, and load once the limits allow them.
 */
import * as Y from 'yjs';
import { mergeStoredRoomChecked, snapshotLimits, type Quarantined } from './persistence/merge.js';
import { stampSnapshot } from './persistence/snapshot-stamp.js';
import { RELAY_FENCED, type DocStore, type StoredRoom } from './persistence/types.js';
import { DEFAULT_UPDATE_LIMITS, type UpdateLimits } from './update-limits.js';
import { UpdateReader, type UpdateCost } from './update-reader.js';

/** What compaction needs of a live room, captured synchronously (the doc may be freed after). */
export interface LiveState {
  /** Y.encodeStateAsUpdate of the live document */
  update: Uint8Array;
  /** the live document's state vector */
  stateVector: Map<number, number>;
  /** its delete set, when asked for (it walks every struct; most logs hold no deletion) */
  deleteSet: ReturnType<typeof Y.createDeleteSetFromStructStore> | null;
  /** sequence number of the stored snapshot the live document incorporates (0: none) */
  snapshotSeq: number;
  /** the room's generation the live document was loaded in (persistence/types.ts) */
  generation: number;
}

/** `withDeletions`: the stored log holds deletions, so containment needs the live delete set. */
export function captureLiveState(doc: Y.Doc, snapshotSeq: number, generation = 0, withDeletions = true): LiveState {
  return {
    update: Y.encodeStateAsUpdate(doc),
    stateVector: Y.decodeStateVector(Y.encodeStateVector(doc)),
    deleteSet: withDeletions ? Y.createDeleteSetFromStructStore(doc.store) : null,
    snapshotSeq,
    generation,
  };
}

export interface Compaction {
  /** log entries folded into the snapshot */
  folded: number;
  /** the snapshot's sequence number now (the highest entry folded) */
  throughSeq: number;
  /** whether the live state was used (fast path) */
  fromLive: boolean;
  /** entries set aside (kept in the log after the snapshot) */
  quarantined: Quarantined[];
  /** the size of the snapshot written (when one was) */
  snapshotBytes?: number;
  /**
   * set when storage is in another generation than the one named (nothing written): the live
   * state's, or the one just read (a purge came between): the room was deleted meanwhile
   */
  fenced?: number;
}

/** Returns how many log entries were folded into the snapshot (from storage alone). */
export async function compactRoom(store: DocStore, room: string): Promise<number> {
  return (await foldRoomLog(store, room)).folded;
}

/**
 * `live` is called after storage was read, so it captures the newest live state; it is told
 * whether the stored log holds deletions (the live delete set is built only then).
 */
export async function foldRoomLog(store: DocStore, room: string, live?: (withDeletions: boolean) => LiveState | null, limits: UpdateLimits = DEFAULT_UPDATE_LIMITS): Promise<Compaction> {
  const stored = await store.load(room);
  if (stored.updates.length === 0) return { folded: 0, throughSeq: stored.snapshotSeq, fromLive: false, quarantined: [] };
  const entries = live ? readEntries(stored.updates, limits) : null;
  const state = entries && live ? live(entries.some((e) => e !== null && e.deletes.length > 0)) : null;
  // The live document is of a room deleted since it loaded: nothing of it may reach the new room.
  if (state && state.generation !== stored.generation) return { folded: 0, throughSeq: stored.snapshotSeq, fromLive: false, quarantined: [], fenced: state.generation };
  const fromLive = state !== null && entries !== null && liveHoldsStored(state, stored, entries);
  const merged = fromLive ? { update: state.update, quarantined: [] } : mergeStoredRoomChecked(stored, limits);
  // Checked now, once, so that loading it does not read it all again (persistence/snapshot-stamp.ts).
  const aside = unique(merged.quarantined.map((q) => q.update));
  const snapshotBytes = merged.update.byteLength; // read before the snapshot's buffer moves to storage
  // Named: a purge after the read above must not see the deleted room's content written back.
  const refused = await store.compact(room, {
    snapshot: merged.update,
    handOver: true, // read by nothing after this call
    throughSeq: stored.lastSeq,
    stamp: stampSnapshot(merged.update, limits),
    keep: aside,
    generation: stored.generation,
  });
  if (refused === RELAY_FENCED) return { folded: 0, throughSeq: stored.snapshotSeq, fromLive, quarantined: [], fenced: stored.generation };
  return { folded: stored.updates.length, throughSeq: stored.lastSeq, fromLive, quarantined: merged.quarantined, snapshotBytes };
}

function unique(updates: Uint8Array[]): Uint8Array[] {
  const seen = new Set<string>();
  return updates.filter((u) => {
    const key = Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('base64');
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** What the bounded reader found in each stored entry, or null for one it refused. */
function readEntries(updates: readonly Uint8Array[], limits: UpdateLimits): Array<UpdateCost | null> {
  const bound = snapshotLimits(limits);
  return updates.map((update) => {
    try {
      return new UpdateReader(update, bound).read();
    } catch {
      return null;
    }
  });
}

function liveHoldsStored(state: LiveState, stored: StoredRoom, entries: ReadonlyArray<UpdateCost | null>): boolean {
  if (stored.snapshotSeq !== state.snapshotSeq) return false; // someone else's snapshot: unknown content
  // Entry by entry, from what the bounded reader found (Y.mergeUpdates of hundreds of small updates
  // costs more than the merge path; Y.decodeUpdate built every struct only to read its id).
  for (const entry of entries) if (entry === null || !containsUpdate(state, entry)) return false;
  return true;
}

/**
 * Every struct of the entry lies below the live state vector (each client section ends there:
 * its structs, and any Skip among them, lie before its end), and each of its deletions is live too.
 */
function containsUpdate(live: LiveState, entry: UpdateCost): boolean {
  for (const [client, end] of entry.ends) if ((live.stateVector.get(client) ?? 0) < end) return false;
  if (entry.deletes.length === 0) return true;
  if (!live.deleteSet) return false;
  for (const d of entry.deletes) if (!covers(live.deleteSet.clients.get(d.client) ?? [], d.clock, d.end)) return false;
  return true;
}

/** Whether the sorted, merged ranges cover [from, to) with one range (adjacent runs are merged). */
function covers(ranges: ReadonlyArray<{ clock: number; len: number }>, from: number, to: number): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const r = ranges[mid] as { clock: number; len: number };
    if (r.clock + r.len <= from) lo = mid + 1;
    else if (r.clock > from) hi = mid - 1;
    else return r.clock + r.len >= to;
  }
  return false;
}
