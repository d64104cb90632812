/**
 * Payloads of the sealed-room frames between instances (inside fanout/bus-frame.ts frames).
 * Pure: no I/O. Envelopes stay opaque here too.
 *   entries  := varUint(firstSeq) • varUint(n) • n × varUint8Array(envelope)
 *   presence := varUint(peer) • varUint8Array(envelope)
 *   peerLeft := varUint(peer)
 *   check    := empty | varUint(lastSeq)
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import type { SealedEntry } from './store/types.js';

export function writeEntriesPayload(firstSeq: number, envelopes: readonly Uint8Array[]): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, firstSeq);
  encoding.writeVarUint(e, envelopes.length);
  for (const env of envelopes) encoding.writeVarUint8Array(e, env);
  return encoding.toUint8Array(e);
}

/** an entries payload's bytes besides its envelopes: firstSeq (a seq below 2^53 takes 8) and n (5) */
const ENTRIES_HEADER_BYTES = 13;
/** an envelope's length prefix (a varUint below 2^35) */
const ENVELOPE_PREFIX_BYTES = 5;

/**
 * A commit's entries as entries payloads of at most `maxBytes` each, in seq order. `complete` is
 * false when an envelope does not fit alone: it and those after it are in no payload (the
 * caller announces the commit's last seq instead, and the others read them from storage).
 */
export function entriesPayloads(firstSeq: number, envelopes: readonly Uint8Array[], maxBytes: number): { payloads: Uint8Array[]; complete: boolean } {
  const payloads: Uint8Array[] = [];
  let start = 0;
  let bytes = ENTRIES_HEADER_BYTES;
  for (let i = 0; i < envelopes.length; i++) {
    const size = (envelopes[i] as Uint8Array).length + ENVELOPE_PREFIX_BYTES;
    if (ENTRIES_HEADER_BYTES + size > maxBytes) {
      if (i > start) payloads.push(writeEntriesPayload(firstSeq + start, envelopes.slice(start, i)));
      return { payloads, complete: false };
    }
    if (bytes + size > maxBytes) {
      payloads.push(writeEntriesPayload(firstSeq + start, envelopes.slice(start, i)));
      start = i;
      bytes = ENTRIES_HEADER_BYTES;
    }
    bytes += size;
  }
  if (envelopes.length > start) payloads.push(writeEntriesPayload(firstSeq + start, envelopes.slice(start)));
  return { payloads, complete: true };
}

export function writeCheckPayload(lastSeq: number): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, lastSeq);
  return encoding.toUint8Array(e);
}

/** The seq every entry up to which is committed; Infinity for an empty check (read anyway); null when malformed. */
export function readCheckPayload(payload: Uint8Array): number | null {
  return payload.length === 0 ? Number.POSITIVE_INFINITY : guarded(payload, (d) => decoding.readVarUint(d));
}

export function writePresencePayload(peer: number, envelope: Uint8Array): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, peer);
  encoding.writeVarUint8Array(e, envelope);
  return encoding.toUint8Array(e);
}

export function writePeerPayload(peer: number): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, peer);
  return encoding.toUint8Array(e);
}

/** null when the payload is malformed */
export function readEntriesPayload(payload: Uint8Array): SealedEntry[] | null {
  return guarded(payload, (d) => {
    const first = decoding.readVarUint(d);
    const n = decoding.readVarUint(d);
    const out: SealedEntry[] = [];
    for (let i = 0; i < n; i++) out.push({ seq: first + i, envelope: decoding.readVarUint8Array(d) });
    return out;
  });
}

export function readPresencePayload(payload: Uint8Array): { peer: number; envelope: Uint8Array } | null {
  return guarded(payload, (d) => ({ peer: decoding.readVarUint(d), envelope: decoding.readVarUint8Array(d) }));
}

export function readPeerPayload(payload: Uint8Array): number | null {
  return guarded(payload, (d) => decoding.readVarUint(d));
}

function guarded<T>(payload: Uint8Array, read: (d: decoding.Decoder) => T): T | null {
  try {
    const d = decoding.createDecoder(payload);
    const value = read(d);
    return decoding.hasContent(d) ? null : value;
  } catch {
    return null;
  }
}
