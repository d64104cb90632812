/**
 * A snapshot's stamp: what the cold-load check (stored-bytes.ts) found when compaction wrote the
 * snapshot (relay/compaction.ts), so that loading it again need not read its 2 MB again. It is
 * stored beside the snapshot only (DocStore.compact, types.ts): append() has no way to store
 * one, so nothing a client sends is ever taken on a stamp. A stamp is used only when
 *  - its digest (SHA-256 of the stamp and the snapshot's bytes) matches: bytes changed on disk
 *    are read and checked in full, as an unstamped snapshot is;
 *  - it was made under the limits in force now (those the snapshot is checked against);
 * and otherwise ignored. It holds the snapshot's layout (where each client section lies, for
 * the byte merge), the deepest type level it holds, and whether every id its items refer to is
 * inside it (if not, a log entry could complete its pending structs, and the load checks all).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import * as Y from 'yjs';
import { checkDepth, UpdateRefused } from '../update-check.js';
import type { UpdateLimits } from '../update-limits.js';
import { UpdateReader, type UpdateLayout } from '../update-reader.js';
import { snapshotLimits } from './merge.js';

const VERSION = 1;
const DIGEST_BYTES = 32;
/** A stamp larger than this share of its snapshot is not written (many tiny client sections): storage stays near the document's size. */
const MAX_STAMP_SHARE = 1 / 16;

export interface SnapshotStamp {
  /** where the snapshot's client sections and delete set lie */
  layout: UpdateLayout;
  /** the deepest level of a type in the snapshot, at least 1 (root types) */
  level: number;
  /** every id its items refer to lies inside it (no structs waiting for another entry) */
  closed: boolean;
}

/** The limits the stamp was checked against, as text (only those the snapshot is checked against: persistence/merge.ts). */
function limitsKey(limits: UpdateLimits): string {
  const open = snapshotLimits(limits);
  return Object.entries(open)
    .filter(([, v]) => Number.isFinite(v))
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

function digest(body: Uint8Array, snapshot: Uint8Array): Uint8Array {
  return createHash('sha256').update(body).update(snapshot).digest();
}

/**
 * The document the depth check reads ids outside the snapshot from: always empty (checkDepth only
 * reads it), made once rather than per compaction (a Y.Doc draws a random id).
 */
const EMPTY_DOC = new Y.Doc();

/**
 * Checks the snapshot as a cold load would (the bounded reader, then the depth of its types) and
 * returns its stamp, or null when it does not pass (it is then stored unstamped, and every load
 * checks it and sets it aside as today) or the stamp would be large.
 */
export function stampSnapshot(snapshot: Uint8Array, limits: UpdateLimits): Uint8Array | null {
  const layout: UpdateLayout = { sections: [], deleteSetAt: 0 };
  let level: number;
  let closed = true;
  try {
    const { items } = new UpdateReader(snapshot, snapshotLimits(limits), undefined, layout).read();
    const covered = sectionsByClient(layout);
    level = checkDepth(EMPTY_DOC, items, limits.maxDepth, (client, clock) => {
      const range = covered.get(client);
      if (!range || clock < range[0] || clock >= range[1]) closed = false;
      return 0; // as the check against an empty document answers
    });
  } catch (err) {
    if (err instanceof UpdateRefused) return null;
    throw err;
  }
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, VERSION);
  encoding.writeVarString(e, limitsKey(limits));
  encoding.writeVarUint(e, Math.max(1, level));
  encoding.writeVarUint(e, closed ? 1 : 0);
  encoding.writeVarUint(e, layout.deleteSetAt);
  encoding.writeVarUint(e, layout.sections.length);
  for (const n of layout.sections) encoding.writeVarUint(e, n);
  const body = encoding.toUint8Array(e);
  if (body.length + DIGEST_BYTES > Math.max(256, snapshot.length * MAX_STAMP_SHARE)) return null;
  const stamp = new Uint8Array(body.length + DIGEST_BYTES);
  stamp.set(body);
  stamp.set(digest(body, snapshot), body.length);
  return stamp;
}

/** Per client, the clocks its sections cover without a gap ([first, end)); a section with Skip structs covers nothing. */
function sectionsByClient(layout: UpdateLayout): Map<number, [number, number]> {
  const out = new Map<number, [number, number]>();
  const s = layout.sections;
  for (let i = 0; i < s.length; i += 7) {
    if ((s[i + 6] as number) > 0) continue;
    const client = s[i] as number;
    const first = s[i + 1] as number;
    const end = first + (s[i + 2] as number);
    const known = out.get(client);
    // Yjs writes one section per client; should there be more, only a contiguous run counts.
    if (!known) out.set(client, [first, end]);
    else if (first === known[1]) known[1] = end;
  }
  return out;
}

/** The stamp, when it is intact, belongs to these bytes and was made under these limits; null otherwise (check it all). */
export function readStamp(snapshot: Uint8Array, stamp: Uint8Array, limits: UpdateLimits): SnapshotStamp | null {
  if (stamp.length <= DIGEST_BYTES) return null;
  const body = stamp.subarray(0, stamp.length - DIGEST_BYTES);
  if (!timingSafeEqual(digest(body, snapshot), stamp.subarray(stamp.length - DIGEST_BYTES))) return null;
  try {
    const d = decoding.createDecoder(body);
    if (decoding.readVarUint(d) !== VERSION) return null;
    if (decoding.readVarString(d) !== limitsKey(limits)) return null;
    const level = decoding.readVarUint(d);
    const closed = decoding.readVarUint(d) === 1;
    const deleteSetAt = decoding.readVarUint(d);
    const n = decoding.readVarUint(d);
    if (n % 7 !== 0 || n > body.length) return null;
    const sections: number[] = new Array<number>(n);
    for (let i = 0; i < n; i++) sections[i] = decoding.readVarUint(d);
    if (level > limits.maxDepth || deleteSetAt > snapshot.length) return null;
    return { layout: { sections, deleteSetAt }, level, closed };
  } catch {
    return null;
  }
}
