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
import { UpdateReader } from './update-reader.js';

/** What compaction needs of a live room, captured synchronously (the doc may be freed after). */
export interface LiveState {
  /** Y.encodeStateAsUpdate of the live document */
  update: Uint8Array;
  /** Y.snapshot of the live document: its state vector and delete set */
  snapshot: Y.Snapshot;
  /** sequence number of the stored snapshot the live document incorporates (0: none) */
  snapshotSeq: number;
  /** the room's generation the live document was loaded in (persistence/types.ts) */
  generation: number;
}

export function captureLiveState(doc: Y.Doc, snapshotSeq: number, generation = 0): LiveState {
  return { update: Y.encodeStateAsUpdate(doc), snapshot: Y.snapshot(doc), snapshotSeq, generation };
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

/** `live` is called after storage was read, so it captures the newest live state. */
export async function foldRoomLog(store: DocStore, room: string, live?: () => LiveState | null, limits: UpdateLimits = DEFAULT_UPDATE_LIMITS): Promise<Compaction> {
  const stored = await store.load(room);
  if (stored.updates.length === 0) return { folded: 0, throughSeq: stored.snapshotSeq, fromLive: false, quarantined: [] };
  const state = live?.() ?? null;
  // The live document is of a room deleted since it loaded: nothing of it may reach the new room.
  if (state && state.generation !== stored.generation) return { folded: 0, throughSeq: stored.snapshotSeq, fromLive: false, quarantined: [], fenced: state.generation };
  const fromLive = state !== null && liveHoldsStored(state, stored, limits);
  const merged = fromLive ? { update: state.update, quarantined: [] } : mergeStoredRoomChecked(stored, limits);
  // Checked now, once, so that loading it does not read it all again (persistence/snapshot-stamp.ts).
  const aside = unique(merged.quarantined.map((q) => q.update));
  // Named: a purge after the read above must not see the deleted room's content written back.
  const refused = await store.compact(room, {
    snapshot: merged.update,
    throughSeq: stored.lastSeq,
    stamp: stampSnapshot(merged.update, limits),
    keep: aside,
    generation: stored.generation,
  });
  if (refused === RELAY_FENCED) return { folded: 0, throughSeq: stored.snapshotSeq, fromLive, quarantined: [], fenced: stored.generation };
  return { folded: stored.updates.length, throughSeq: stored.lastSeq, fromLive, quarantined: merged.quarantined };
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

function liveHoldsStored(state: LiveState, stored: StoredRoom, limits: UpdateLimits): boolean {
  if (stored.snapshotSeq !== state.snapshotSeq) return false; // someone else's snapshot: unknown content
  // Entry by entry (Y.mergeUpdates of hundreds of small updates costs more than the merge path).
  for (const update of stored.updates) if (!safeToDecode(update, limits) || !containsUpdate(state.snapshot, update)) return false;
  return true;
}

/** Y.decodeUpdate recurses on nested values: only entries the bounded reader accepts go near it. */
function safeToDecode(update: Uint8Array, limits: UpdateLimits): boolean {
  try {
    new UpdateReader(update, snapshotLimits(limits)).read();
    return true;
  } catch {
    return false;
  }
}

/** Every struct of `update` is below the live state vector, and each of its deletions is live too. */
function containsUpdate(live: Y.Snapshot, update: Uint8Array): boolean {
  const { structs, ds } = Y.decodeUpdate(update);
  for (const struct of structs) {
    if (struct instanceof Y.Skip) continue;
    if ((live.sv.get(struct.id.client) ?? 0) < struct.id.clock + struct.length) return false;
  }
  for (const [client, deletions] of ds.clients) {
    const liveDeletions = live.ds.clients.get(client) ?? [];
    for (const d of deletions) if (!covers(liveDeletions, d.clock, d.clock + d.len)) return false;
  }
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
