/**
 * Applying a room's stored state (snapshot, then log) so that one bad entry cannot brick the
 * room: each entry is cost-checked against the document first, and one that is over the limits
 * or throws while applying is set aside (quarantined) while the rest loads.
 */
import * as Y from 'yjs';
import { checkUpdateCost, UpdateRefused } from '../update-check.js';
import { DEFAULT_UPDATE_LIMITS, type UpdateLimits } from '../update-limits.js';
import type { StoredContent } from './types.js';

/** A stored entry set aside; `index` -1 is the snapshot. */
export interface Quarantined {
  index: number;
  update: Uint8Array;
  /** the limit it passed, or `apply_failed` */
  reason: string;
}

/** An entry threw while being applied: the document is suspect, start again without it. */
export class StoredEntryFailed extends Error {
  constructor(
    readonly index: number,
    readonly failure: unknown,
  ) {
    super(`stored entry ${index} failed to apply`);
    this.name = 'StoredEntryFailed';
  }
}

/** How often a load starts again after an entry threw (each time without one more entry). */
const MAX_RESTARTS = 8;

/**
 * The snapshot is the server's own merge of entries each checked when accepted: it can hold far
 * more than one update may, so only the limits that guard the stack (depth, values, keys) apply.
 */
export function snapshotLimits(limits: UpdateLimits): UpdateLimits {
  const open = Number.POSITIVE_INFINITY;
  return { ...limits, maxStructs: open, maxDeleteRanges: open, maxDeleteClients: open, maxSubdocs: open, maxContentBytes: open, maxPendingBytes: open, maxPendingDeleteBytes: open };
}

/** The limits a stored entry is checked against: a snapshot's (see above), or a log entry's (they may wait for one another). */
export function storedEntryLimits(limits: UpdateLimits, isSnapshot: boolean): UpdateLimits {
  if (isSnapshot) return snapshotLimits(limits);
  return { ...limits, maxPendingBytes: Number.POSITIVE_INFINITY, maxPendingDeleteBytes: Number.POSITIVE_INFINITY };
}

/**
 * Applies the stored state to `doc` in one transaction; returns what was set aside. Throws
 * StoredEntryFailed. `stamped`: the snapshot's stamp was found intact (stored-bytes.ts), so it is
 * not checked again (it goes first, into an empty document, as it was checked).
 */
export function applyStoredRoom(doc: Y.Doc, stored: StoredContent, origin: unknown, limits: UpdateLimits, skip: ReadonlyMap<number, string> = new Map(), stamped = false): Quarantined[] {
  const quarantined: Quarantined[] = [];
  const entries: Array<[number, Uint8Array]> = stored.updates.map((u, i) => [i, u]);
  if (stored.snapshot) entries.unshift([-1, stored.snapshot]);
  Y.transact(
    doc,
    () => {
      for (const [index, update] of entries) {
        const skipped = skip.get(index);
        if (skipped !== undefined) {
          quarantined.push({ index, update, reason: skipped });
          continue;
        }
        try {
          if (!(stamped && index === -1)) checkUpdateCost(doc, update, storedEntryLimits(limits, index === -1));
        } catch (err) {
          if (!(err instanceof UpdateRefused)) throw err;
          quarantined.push({ index, update, reason: err.limit });
          continue;
        }
        try {
          Y.applyUpdate(doc, update, origin);
        } catch (err) {
          throw new StoredEntryFailed(index, err);
        }
      }
    },
    origin,
  );
  return quarantined;
}

/**
 * Loads the stored state into a fresh document from `create` (destroyed by `discard` when an
 * entry threw, then loaded again without that entry).
 */
export function loadStoredRoom<T>(stored: StoredContent, limits: UpdateLimits, create: () => T, docOf: (t: T) => Y.Doc, discard: (t: T) => void): { value: T; quarantined: Quarantined[] } {
  const skip = new Map<number, string>();
  for (let attempt = 0; ; attempt++) {
    const value = create();
    try {
      return { value, quarantined: applyStoredRoom(docOf(value), stored, 'storage', limits, skip) };
    } catch (err) {
      discard(value);
      if (!(err instanceof StoredEntryFailed) || attempt >= MAX_RESTARTS) throw err;
      skip.set(err.index, 'apply_failed');
    }
  }
}

/** The stored state merged into one update (garbage-collected through a scratch Y.Doc), without what is set aside. */
export function mergeStoredRoom(stored: StoredContent, limits: UpdateLimits = DEFAULT_UPDATE_LIMITS): Uint8Array {
  return mergeStoredRoomChecked(stored, limits).update;
}

/** mergeStoredRoom, and what was set aside. */
export function mergeStoredRoomChecked(stored: StoredContent, limits: UpdateLimits): { update: Uint8Array; quarantined: Quarantined[] } {
  const loaded = loadStoredRoom(stored, limits, () => new Y.Doc({ gc: true }), (d) => d, (d) => d.destroy());
  try {
    return { update: Y.encodeStateAsUpdate(loaded.value), quarantined: loaded.quarantined };
  } finally {
    loaded.value.destroy();
  }
}
