/**
 * Entries a device could not apply, carried inside its snapshots (docs/PROTOCOL-sealed.md,
 * "Carried envelopes"). A snapshot covers a prefix of the log and the server deletes what it
 * covers, so before this a device never covered an entry it could not open: one envelope stored
 * under a key id no device holds (any write-scope token can store one) stopped every snapshot
 * before it, and the log grew until the room's quota closed it (4507). Now the snapshot covers past
 * such an entry and carries it, byte for byte, in its encrypted plaintext: a device that holds its
 * key (one given the key of a later rotation) opens it when it loads the snapshot. What no device
 * opens is dropped by a bounded policy (CarryLimits), so junk costs a bounded number of bytes and
 * never stops compaction.
 *
 * A carrying snapshot is envelope kind 4 (CarryingSnapshot, envelope.ts), with this plaintext:
 *   varUint(1) • varUint8Array(Y.encodeStateAsUpdate(doc)) • varUint(n) • n × (varUint(seq) • varUint8Array(envelope))
 * A snapshot that carries nothing is kind 2 as before (a Yjs update), which every client reads.
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';

const FORMAT = 1;

export interface CarryLimits {
  /** at most this many envelopes carried (the oldest, lowest seq, dropped first) */
  maxEnvelopes: number;
  /** at most this many envelope bytes carried (the oldest dropped first) */
  maxBytes: number;
  /** an envelope stored at seq s is dropped from snapshots covering more than s + maxAgeSeqs */
  maxAgeSeqs: number;
}

/** docs/PROTOCOL-sealed.md, "Carried envelopes": 64 envelopes, 256 KiB, 10,000 seqs (20 compactions at the server's default SEALED_SNAPSHOT_AFTER) */
export const DEFAULT_CARRY_LIMITS: CarryLimits = { maxEnvelopes: 64, maxBytes: 256 * 1024, maxAgeSeqs: 10_000 };

export interface CarriedEnvelope {
  seq: number;
  envelope: Uint8Array;
}

/** The app's `sealed.carry` over the defaults; a value that is not a non-negative safe integer throws TypeError. */
export function carryLimits(given: Partial<CarryLimits> | undefined): CarryLimits {
  const out = { ...DEFAULT_CARRY_LIMITS };
  for (const name of ['maxEnvelopes', 'maxBytes', 'maxAgeSeqs'] as const) {
    const v = given?.[name];
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`sealed.carry.${name} must be a non-negative integer`);
    out[name] = v;
  }
  return out;
}

export function encodeCarryingSnapshot(doc: Uint8Array, carried: readonly CarriedEnvelope[]): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, FORMAT);
  encoding.writeVarUint8Array(e, doc);
  encoding.writeVarUint(e, carried.length);
  for (const c of carried) {
    encoding.writeVarUint(e, c.seq);
    encoding.writeVarUint8Array(e, c.envelope);
  }
  return encoding.toUint8Array(e);
}

/**
 * Hostile input (any key holder seals it): undefined when it does not decode. Records naming seq 0
 * or a seq past `covers` (the snapshot cannot stand for those) are left out; a seq named twice keeps
 * its last record. Its size is bounded by the frame that brought it.
 */
export function decodeCarryingSnapshot(plaintext: Uint8Array, covers: number): { doc: Uint8Array; carried: CarriedEnvelope[] } | undefined {
  try {
    const d = decoding.createDecoder(plaintext);
    if (decoding.readVarUint(d) !== FORMAT) return undefined;
    const doc = decoding.readVarUint8Array(d);
    const n = decoding.readVarUint(d);
    const bySeq = new Map<number, Uint8Array>();
    for (let i = 0; i < n; i++) {
      const seq = decoding.readVarUint(d);
      const envelope = decoding.readVarUint8Array(d);
      if (seq >= 1 && seq <= covers && Number.isSafeInteger(seq)) bySeq.set(seq, envelope);
    }
    if (decoding.hasContent(d)) return undefined;
    return { doc, carried: [...bySeq].map(([seq, envelope]) => ({ seq, envelope })) };
  } catch {
    return undefined;
  }
}

/** What this device carries: entries it could not apply, by seq, within CarryLimits. */
export class CarriedEnvelopes {
  private readonly bySeq = new Map<number, Uint8Array>();
  private bytes = 0;

  constructor(private readonly limits: CarryLimits) {}

  get size(): number {
    return this.bySeq.size;
  }

  /** the lowest seq carried (the cursor stored stays below it, so a restart reads it again) */
  get lowest(): number | undefined {
    let low: number | undefined;
    for (const seq of this.bySeq.keys()) if (low === undefined || seq < low) low = seq;
    return low;
  }

  /**
   * Carries `envelope` (stored at `seq`); past the bounds the oldest go. One larger than maxBytes
   * never fits: it is not carried, and drops nothing (else one such envelope from a writer without
   * the key pushed out every older one, e.g. an honest entry under a later rotation's key).
   */
  add(seq: number, envelope: Uint8Array): void {
    if (envelope.byteLength > this.limits.maxBytes) return;
    this.delete(seq);
    this.bySeq.set(seq, Uint8Array.from(envelope));
    this.bytes += envelope.byteLength;
    while (this.bySeq.size > 0 && (this.bySeq.size > this.limits.maxEnvelopes || this.bytes > this.limits.maxBytes)) this.dropOldest();
  }

  /** A snapshot up to `covers` opened: it stands for those up to it (what it carries is added back by the caller). */
  forgetUpTo(covers: number): void {
    for (const seq of [...this.bySeq.keys()]) if (seq <= covers) this.delete(seq);
  }

  /** What a snapshot covering `covers` carries, oldest first; those past maxAgeSeqs are dropped for good. */
  forSnapshot(covers: number): CarriedEnvelope[] {
    for (const seq of [...this.bySeq.keys()]) if (seq + this.limits.maxAgeSeqs < covers) this.delete(seq);
    return [...this.bySeq]
      .filter(([seq]) => seq <= covers)
      .sort((a, b) => a[0] - b[0])
      .map(([seq, envelope]) => ({ seq, envelope }));
  }

  /** The log these seqs counted in is gone (a room that starts again, or storage lost): nothing of it is carried. */
  clear(): void {
    this.bySeq.clear();
    this.bytes = 0;
  }

  /** Dropped for good (the snapshot carrying it would not fit the frame limit). */
  delete(seq: number): void {
    const had = this.bySeq.get(seq);
    if (!had) return;
    this.bySeq.delete(seq);
    this.bytes -= had.byteLength;
  }

  private dropOldest(): void {
    const low = this.lowest;
    if (low !== undefined) this.delete(low);
  }
}
