/**
 * Payloads of the sealed-room frames between instances (inside fanout/bus-frame.ts frames).
 * Pure: no I/O. Envelopes stay opaque here too.
 *   entries  := varUint(firstSeq) • varUint(n) • n × varUint8Array(envelope)
 *   presence := varUint(peer) • varUint8Array(envelope)
 *   peerLeft := varUint(peer)
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
