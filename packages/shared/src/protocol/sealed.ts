/**
 * The sealed-room wire protocol (WS /sealed/<room>), as a pure codec. The server sees only
 * opaque envelopes (bytes it cannot open) and the sequence numbers it assigns to them; see
 * docs/PROTOCOL-sealed.md. readX turns one frame into a typed message or a typed error value;
 * writeX appends one message to an encoder the caller owns. No sockets, timers or logs.
 *
 *   client -> server
 *   hello     := 0 • varUint(cursor) [• varUint(generation)]   generation 0: unknown; absent: a client before generations
 *   update    := 1 • varUint(clientMsgId) • varUint8Array(envelope)
 *   snapshot  := 2 • varUint(covers) • varUint8Array(envelope)
 *   presence  := 3 • varUint8Array(envelope)
 *   snap-bad  := 4 • varUint(covers)   the room's snapshot covering `covers` did not open on this device
 *   server -> client
 *   welcome   := 16 • varUint(peer) • varUint(flags) [• varUint(generation) [• varUint(maxMessageBytes)]]
 *                flags bit 0: writable; bit 1: the server takes snap-bad; the rest only to a hello
 *                that had a generation (older clients read no more); maxMessageBytes: the server's
 *                RELAY_MAX_MESSAGE_BYTES
 *   snapshot  := 17 • varUint(covers) • varUint8Array(envelope)
 *   entry     := 18 • varUint(seq) • varUint8Array(envelope)
 *   caught-up := 19 • varUint(seq)
 *   ack       := 20 • varUint(clientMsgId) • varUint(seq)
 *   snap-req  := 21 • varUint(upTo)
 *   presence  := 22 • varUint(peer) • varUint8Array(envelope)
 *   peer-left := 23 • varUint(peer)
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';

export const SealedClientType = { Hello: 0, Update: 1, Snapshot: 2, Presence: 3, SnapshotBad: 4 } as const;
export const SealedServerType = { Welcome: 16, Snapshot: 17, Entry: 18, CaughtUp: 19, Ack: 20, SnapshotRequest: 21, Presence: 22, PeerLeft: 23 } as const;

export type SealedClientMessage =
  /** `generation`: the room generation the device's cursor belongs to (0: unknown); absent from clients before generations */
  | { type: 'hello'; cursor: number; generation?: number }
  | { type: 'update'; id: number; envelope: Uint8Array }
  | { type: 'snapshot'; covers: number; envelope: Uint8Array }
  | { type: 'presence'; envelope: Uint8Array }
  /** the stored snapshot covering `covers` did not open on this device (docs/PROTOCOL-sealed.md, "Refuting a snapshot") */
  | { type: 'snapshot-bad'; covers: number };

export type SealedServerMessage =
  /**
   * `generation`: the room's current generation (absent from servers before generations, and to
   * clients that sent none); `maxMessageBytes`: the largest frame the server takes (absent from
   * servers before it); `takesSnapshotBad`: the server takes `snapshot-bad` (older servers close
   * 4400 on it)
   */
  | { type: 'welcome'; peer: number; writable: boolean; generation?: number; maxMessageBytes?: number; takesSnapshotBad?: boolean }
  | { type: 'snapshot'; covers: number; envelope: Uint8Array }
  | { type: 'entry'; seq: number; envelope: Uint8Array }
  | { type: 'caught-up'; seq: number }
  | { type: 'ack'; id: number; seq: number }
  | { type: 'snapshot-request'; upTo: number }
  | { type: 'presence'; peer: number; envelope: Uint8Array }
  | { type: 'peer-left'; peer: number };

export type SealedDecodeErrorKind = 'empty' | 'truncated' | 'trailing_bytes' | 'unknown_type' | 'empty_envelope' | 'short_envelope' | 'out_of_range';

/**
 * The smallest envelope a client can seal (docs/PROTOCOL-sealed.md, "Envelope"): version and kind
 * (2) • keyId (4) • nonce (24) • Poly1305 tag (16), with an empty plaintext. The server refuses
 * a client's update, snapshot or presence envelope shorter than this: it cannot be one, and every
 * stored row costs far more than its bytes (SEALED_ROW_OVERHEAD_BYTES, apps/server). Server frames
 * are not held to it: rooms stored before this check may hold shorter entries, which devices
 * report as not opening.
 */
export const SEALED_ENVELOPE_MIN_BYTES = 46;

export interface SealedDecodeError {
  error: SealedDecodeErrorKind;
  detail: string;
}

export type SealedDecodeResult<M> = { ok: true; message: M } | { ok: false; error: SealedDecodeError };

const FLAG_WRITABLE = 1;
const FLAG_TAKES_SNAPSHOT_BAD = 2;

/** Decode one client frame (what the server reads). Never throws. */
export function readSealedClientMessage(frame: Uint8Array): SealedDecodeResult<SealedClientMessage> {
  return decodeWith(frame, readClientBody);
}

/** Decode one server frame (what a client reads). Never throws. */
export function readSealedServerMessage(frame: Uint8Array): SealedDecodeResult<SealedServerMessage> {
  return decodeWith(frame, readServerBody);
}

function decodeWith<M>(frame: Uint8Array, body: (d: decoding.Decoder) => M | SealedDecodeError): SealedDecodeResult<M> {
  if (frame.length === 0) return fail('empty', 'empty frame');
  const decoder = decoding.createDecoder(frame);
  let message: M | SealedDecodeError;
  try {
    message = body(decoder);
  } catch (err) {
    if (err instanceof OutOfRange) return fail('out_of_range', err.message);
    return fail('truncated', err instanceof Error ? err.message : String(err));
  }
  if (isError(message)) return { ok: false, error: message };
  if (decoding.hasContent(decoder)) return fail('trailing_bytes', `${frame.length - decoder.pos} bytes after the message`);
  return { ok: true, message };
}

class OutOfRange extends Error {}

/**
 * Every number of the protocol is a varUint up to 2^53 - 1 (docs/PROTOCOL-sealed.md, "Wire
 * format"). lib0 range-checks only some encodings: 146 continuation bytes and one more decode to
 * Infinity, which the server would echo in an ack and lib0's writeVarUint never ends on (a
 * hostile update froze the instance). Anything past 2^53 - 1 is malformed here, before any use.
 */
function readUint(d: decoding.Decoder): number {
  const n = decoding.readVarUint(d);
  if (!Number.isSafeInteger(n)) throw new OutOfRange('a number past 2^53 - 1');
  return n;
}

function readClientBody(d: decoding.Decoder): SealedClientMessage | SealedDecodeError {
  const type = readUint(d);
  switch (type) {
    case SealedClientType.Hello: {
      const cursor = readUint(d);
      // Optional trailing field: a hello from a client before generations ends after the cursor.
      return decoding.hasContent(d) ? { type: 'hello', cursor, generation: readUint(d) } : { type: 'hello', cursor };
    }
    case SealedClientType.Update: {
      const id = readUint(d);
      return withEnvelope(d, (envelope) => ({ type: 'update', id, envelope }), SEALED_ENVELOPE_MIN_BYTES);
    }
    case SealedClientType.Snapshot: {
      const covers = readUint(d);
      return withEnvelope(d, (envelope) => ({ type: 'snapshot', covers, envelope }), SEALED_ENVELOPE_MIN_BYTES);
    }
    case SealedClientType.Presence:
      return withEnvelope(d, (envelope) => ({ type: 'presence', envelope }), SEALED_ENVELOPE_MIN_BYTES);
    case SealedClientType.SnapshotBad:
      return { type: 'snapshot-bad', covers: readUint(d) };
    default:
      return { error: 'unknown_type', detail: `message type ${type}` };
  }
}

function readServerBody(d: decoding.Decoder): SealedServerMessage | SealedDecodeError {
  const type = readUint(d);
  switch (type) {
    case SealedServerType.Welcome: {
      const peer = readUint(d);
      const flags = readUint(d);
      const writable = (flags & FLAG_WRITABLE) !== 0;
      // Only a set bit is said, so a welcome without it decodes as before.
      const takes = (flags & FLAG_TAKES_SNAPSHOT_BAD) !== 0 ? { takesSnapshotBad: true } : {};
      // Optional trailing fields: a server before generations ends after the flags, one before
      // the size limit after the generation.
      if (!decoding.hasContent(d)) return { type: 'welcome', peer, writable, ...takes };
      const generation = readUint(d);
      return decoding.hasContent(d)
        ? { type: 'welcome', peer, writable, generation, maxMessageBytes: readUint(d), ...takes }
        : { type: 'welcome', peer, writable, generation, ...takes };
    }
    case SealedServerType.Snapshot: {
      const covers = readUint(d);
      return withEnvelope(d, (envelope) => ({ type: 'snapshot', covers, envelope }));
    }
    case SealedServerType.Entry: {
      const seq = readUint(d);
      return withEnvelope(d, (envelope) => ({ type: 'entry', seq, envelope }));
    }
    case SealedServerType.CaughtUp:
      return { type: 'caught-up', seq: readUint(d) };
    case SealedServerType.Ack: {
      const id = readUint(d);
      return { type: 'ack', id, seq: readUint(d) };
    }
    case SealedServerType.SnapshotRequest:
      return { type: 'snapshot-request', upTo: readUint(d) };
    case SealedServerType.Presence: {
      const peer = readUint(d);
      return withEnvelope(d, (envelope) => ({ type: 'presence', peer, envelope }));
    }
    case SealedServerType.PeerLeft:
      return { type: 'peer-left', peer: readUint(d) };
    default:
      return { error: 'unknown_type', detail: `message type ${type}` };
  }
}

function withEnvelope<M>(d: decoding.Decoder, make: (envelope: Uint8Array) => M, minBytes = 1): M | SealedDecodeError {
  const envelope = decoding.readVarUint8Array(d);
  if (envelope.length === 0) return { error: 'empty_envelope', detail: 'zero-length envelope' };
  if (envelope.length < minBytes) return { error: 'short_envelope', detail: `${envelope.length}-byte envelope, at least ${minBytes}` };
  return make(envelope);
}

// client -> server

/** `generation` undefined: the hello of a client before generations (tests of older peers); 0: unknown. */
export function writeSealedHello(e: encoding.Encoder, cursor: number, generation?: number): void {
  encoding.writeVarUint(e, SealedClientType.Hello);
  encoding.writeVarUint(e, cursor);
  if (generation !== undefined) encoding.writeVarUint(e, generation);
}

export function writeSealedUpdate(e: encoding.Encoder, id: number, envelope: Uint8Array): void {
  encoding.writeVarUint(e, SealedClientType.Update);
  encoding.writeVarUint(e, id);
  encoding.writeVarUint8Array(e, envelope);
}

export function writeSealedSnapshot(e: encoding.Encoder, covers: number, envelope: Uint8Array): void {
  encoding.writeVarUint(e, SealedClientType.Snapshot);
  encoding.writeVarUint(e, covers);
  encoding.writeVarUint8Array(e, envelope);
}

export function writeSealedPresence(e: encoding.Encoder, envelope: Uint8Array): void {
  encoding.writeVarUint(e, SealedClientType.Presence);
  encoding.writeVarUint8Array(e, envelope);
}

export function writeSealedSnapshotBad(e: encoding.Encoder, covers: number): void {
  encoding.writeVarUint(e, SealedClientType.SnapshotBad);
  encoding.writeVarUint(e, covers);
}

// server -> client

/**
 * `generation` undefined: the welcome a client before generations reads (its decoder refuses
 * trailing bytes), without `maxMessageBytes` either; `maxMessageBytes` goes only after a generation.
 */
export function writeSealedWelcome(e: encoding.Encoder, peer: number, writable: boolean, generation?: number, maxMessageBytes?: number, takesSnapshotBad = false): void {
  encoding.writeVarUint(e, SealedServerType.Welcome);
  encoding.writeVarUint(e, peer);
  encoding.writeVarUint(e, (writable ? FLAG_WRITABLE : 0) | (takesSnapshotBad ? FLAG_TAKES_SNAPSHOT_BAD : 0));
  if (generation === undefined) return;
  encoding.writeVarUint(e, generation);
  if (maxMessageBytes !== undefined) encoding.writeVarUint(e, maxMessageBytes);
}

export function writeSealedStoredSnapshot(e: encoding.Encoder, covers: number, envelope: Uint8Array): void {
  encoding.writeVarUint(e, SealedServerType.Snapshot);
  encoding.writeVarUint(e, covers);
  encoding.writeVarUint8Array(e, envelope);
}

export function writeSealedEntry(e: encoding.Encoder, seq: number, envelope: Uint8Array): void {
  encoding.writeVarUint(e, SealedServerType.Entry);
  encoding.writeVarUint(e, seq);
  encoding.writeVarUint8Array(e, envelope);
}

export function writeSealedCaughtUp(e: encoding.Encoder, seq: number): void {
  encoding.writeVarUint(e, SealedServerType.CaughtUp);
  encoding.writeVarUint(e, seq);
}

export function writeSealedAck(e: encoding.Encoder, id: number, seq: number): void {
  encoding.writeVarUint(e, SealedServerType.Ack);
  encoding.writeVarUint(e, id);
  encoding.writeVarUint(e, seq);
}

export function writeSealedSnapshotRequest(e: encoding.Encoder, upTo: number): void {
  encoding.writeVarUint(e, SealedServerType.SnapshotRequest);
  encoding.writeVarUint(e, upTo);
}

export function writeSealedPeerPresence(e: encoding.Encoder, peer: number, envelope: Uint8Array): void {
  encoding.writeVarUint(e, SealedServerType.Presence);
  encoding.writeVarUint(e, peer);
  encoding.writeVarUint8Array(e, envelope);
}

export function writeSealedPeerLeft(e: encoding.Encoder, peer: number): void {
  encoding.writeVarUint(e, SealedServerType.PeerLeft);
  encoding.writeVarUint(e, peer);
}

/** One message as bytes: encode once, send the same bytes to every receiver. */
export function encodeSealedMessage(write: (encoder: encoding.Encoder) => void): Uint8Array {
  const encoder = encoding.createEncoder();
  write(encoder);
  return encoding.toUint8Array(encoder);
}

function isError(value: unknown): value is SealedDecodeError {
  return typeof value === 'object' && value !== null && 'error' in value;
}

function fail(error: SealedDecodeErrorKind, detail: string): { ok: false; error: SealedDecodeError } {
  return { ok: false, error: { error, detail } };
}
