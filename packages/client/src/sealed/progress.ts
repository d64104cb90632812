/**
 * What a sealed room keeps in the persistence's meta table (`sync-suite:sealed`), so that a
 * restarted device neither reads the whole log again nor seals its whole document again:
 *
 * - `cursor`: the last seq this device applied (its hello asks only for what follows);
 * - `held`: a state vector of what the server is known to hold of this document (what it
 *   sent, and what it acked). At start the outbox gets the document's difference from it:
 *   edits made offline, or sent but never acked, are sealed again; nothing else is.
 *
 * - `generation`: the room's generation the cursor counts in (docs/PROTOCOL-sealed.md,
 *   "Generation"), named in hello: a room deleted meanwhile has another, and the server closes
 *   4410 instead of serving entries after a cursor from the deleted log.
 *
 * All in one value, written after the document updates it covers (the persistence writes in
 * order), so they never claim more than the stored document holds. The generation is a trailing
 * field of version 1 (absent: unknown), so a value written before it still reads, and an older
 * client reading a newer value ignores it (its decoder stops after `held`); the persistence
 * interfaces store the value as opaque bytes and did not change.
 *
 * An entry applied while the document waits on updates it lacks is not stored (Yjs emits no
 * update for what waits): the cursor stored stays below it until nothing waits
 * (progress-tracker.ts). The stored document may still hold less than the value claims: a store written before
 * persistence/update-log.ts held meta back after a failed write, or one that lost an entry. When
 * the load reported an error, or the document it gave has unresolved dependencies (an update
 * whose predecessor is missing), the device reads the room from seq 0 again (resumeFrom).
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import type * as Y from 'yjs';

export const SEALED_META = 'sync-suite:sealed';

export interface SealedProgress {
  cursor: number;
  held: Uint8Array;
  /** the room's generation the cursor counts in; 0 or absent: unknown (welcomed by a server before generations, or never) */
  generation?: number;
}

export function encodeProgress(p: SealedProgress): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, 1); // version
  encoding.writeVarUint(e, p.cursor);
  encoding.writeVarUint8Array(e, p.held);
  if (p.generation) encoding.writeVarUint(e, p.generation);
  return encoding.toUint8Array(e);
}

/** undefined for nothing stored or a value this version cannot read (then the device starts over) */
export function decodeProgress(value: Uint8Array | undefined): SealedProgress | undefined {
  if (!value) return undefined;
  try {
    const d = decoding.createDecoder(value);
    if (decoding.readVarUint(d) !== 1) return undefined;
    const cursor = decoding.readVarUint(d);
    const held = decoding.readVarUint8Array(d);
    const generation = decoding.hasContent(d) ? decoding.readVarUint(d) : 0;
    return generation ? { cursor, held, generation } : { cursor, held };
  } catch {
    return undefined;
  }
}

/**
 * What the device resumes from: `stored`, except that the cursor is 0 when the stored document
 * may lack entries it claims (the load reported an error, or `doc` has updates waiting for ones it
 * lacks): reading the room again brings them back (Yjs updates are idempotent). What the server
 * holds and the generation stay (they describe the server, not this device).
 */
export function resumeFrom(stored: SealedProgress | undefined, doc: Y.Doc, loadFailed: boolean): SealedProgress | undefined {
  if (!stored) return undefined;
  const incomplete = loadFailed || doc.store.pendingStructs !== null || doc.store.pendingDs !== null;
  return incomplete ? { ...stored, cursor: 0 } : stored;
}
