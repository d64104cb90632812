/**
 * Screens a Yjs v1 update from another device for numbers past 2^53 - 1 before Yjs sees it.
 *
 * lib0's readVarUint range-checks only after a continuation byte: 146 bytes 0x80 then 0x7f read as
 * Infinity, 7 x 0x80 then 0x10 as 2^53. Yjs keeps client ids, clocks and lengths as read and
 * encodes them again (the 'update' event of the very transaction applying them, pending structs,
 * state vectors, encodeStateAsUpdate), and lib0's writeVarUint(Infinity) never ends: the encoder
 * doubles its buffer until allocation fails, freezing the app. One small update from any member
 * would do that to every device. Refused here: any varuint that is not a safe integer or is longer
 * than 8 bytes, as the server's reader does (apps/server/src/relay/update-reader.ts), and an id
 * range (a struct, a deletion) ending past 2^53 - 1 (clock arithmetic past it is not exact). What
 * does not parse is refused too: Yjs would throw on it, after applying what came before.
 *
 * A single pass that builds nothing (a stack only for nested Any values); content is skipped, not
 * decoded. A string's length is bounded by its bytes, so struct ends are bounded from above.
 * Format: node_modules/yjs/src/utils/encoding.js (readClientsStructRefs, readDeleteSet),
 * node_modules/lib0/decoding.js (readAny).
 */
import * as decoding from 'lib0/decoding';
import { messageYjsSyncStep2, messageYjsUpdate } from 'y-protocols/sync';
import { RelayMessageType } from '@sync-suite/shared';

const MAX = Number.MAX_SAFE_INTEGER;

class Refused extends Error {}

/** Reads the whole update; throws Refused. Closures over `pos` rather than a class: they minify. */
function scan(buf: Uint8Array): void {
  let pos = 0;
  const byte = (): number => {
    if (pos >= buf.length) throw new Refused('it ends early');
    return buf[pos++] as number;
  };
  const skip = (n: number): void => {
    if (n > buf.length - pos) throw new Refused('it ends early');
    pos += n;
  };
  const uint = (): number => {
    let num = 0;
    let mult = 1;
    for (;;) {
      const b = byte();
      num += (b & 0x7f) * mult;
      if (b < 0x80) break;
      mult *= 128;
      if (mult > MAX) throw new Refused('a number past 2^53 - 1 (over 8 bytes)');
    }
    if (num > MAX) throw new Refused(`a number past 2^53 - 1 (${num})`);
    return num;
  };
  /** a varString or varUint8Array; returns its byte length */
  const bytes = (): number => {
    const n = uint();
    skip(n);
    return n;
  };
  /** an id an item refers to (origin, right origin, parent): never the item itself or a later item of its client (Yjs throws mid-apply) */
  const origin = (client: number, clock: number): void => {
    const c = uint();
    const k = uint();
    if (c === client && k >= clock) throw new Refused('an item refers to itself or a later item of its client');
  };
  /** lib0 readAny, without recursion (a hostile nesting must not overflow the stack here) */
  const any = (): void => {
    let left = 1;
    // enclosing levels: values left in each, negative for an object's entries (key first)
    let stack: number[] | undefined;
    let inObject = false;
    for (;;) {
      while (left === 0) {
        if (!stack || stack.length === 0) return;
        const outer = stack.pop() as number;
        inObject = outer < 0;
        left = Math.abs(outer);
      }
      left--;
      if (inObject) bytes();
      const type = byte();
      switch (type) {
        case 127: case 126: case 121: case 120:
          break;
        case 125:
          // a value, not an id: Infinity there is written back as a float
          while (byte() >= 0x80);
          break;
        case 124: skip(4); break;
        case 123: case 122: skip(8); break;
        case 119: case 116: bytes(); break;
        case 118: case 117: {
          const n = uint();
          (stack ??= []).push(inObject ? -left : left);
          left = n;
          inObject = type === 118;
          break;
        }
        default:
          throw new Refused(`an unknown value type ${type}`);
      }
    }
  };
  /** one struct; returns its length in clock units (an upper bound for strings) */
  const struct = (client: number, clock: number): number => {
    const info = byte();
    const ref = info & 0b11111;
    if (ref === 0 || ref === 10) return uint(); // GC, Skip
    if ((info & 0x80) !== 0) origin(client, clock); // origin
    if ((info & 0x40) !== 0) origin(client, clock); // right origin
    if ((info & 0xc0) === 0) {
      if (uint() === 1) bytes(); // root type name
      else origin(client, clock); // parent item
      if ((info & 0x20) !== 0) bytes(); // map key
    }
    // An item of length 0 (an empty Deleted, string, JSON or Any) makes Yjs throw in its
    // transaction's cleanup, which then never runs again: the document stops emitting updates
    // (nothing more is sent or stored), as apps/server/src/relay/update-reader.ts refuses too.
    const length = content(ref);
    if (length === 0) throw new Refused('an empty item');
    return length;
  };
  /** an item's content by its reference number; returns its length */
  const content = (ref: number): number => {
    switch (ref) {
      case 1: // Deleted
        return uint();
      case 2: { // JSON
        const n = uint();
        for (let i = 0; i < n; i++) bytes();
        return n;
      }
      case 3: // Binary
      case 5: // Embed
        bytes();
        return 1;
      case 4: // String: UTF-16 length at most its bytes
        return bytes();
      case 6: // Format
        bytes();
        bytes();
        return 1;
      case 7: { // Type
        const typeRef = uint();
        if (typeRef === 3 || typeRef === 5) bytes(); // XmlElement, XmlHook name
        return 1;
      }
      case 8: { // Any
        const n = uint();
        for (let i = 0; i < n; i++) any();
        return n;
      }
      case 9: // Doc: guid, options
        bytes();
        any();
        return 1;
      default:
        throw new Refused(`an unknown content type ${ref}`);
    }
  };

  const sections = uint();
  for (let s = 0; s < sections; s++) {
    const count = uint();
    const client = uint();
    let clock = uint();
    for (let i = 0; i < count; i++) {
      clock += struct(client, clock);
      if (clock > MAX) throw new Refused('a struct ending past clock 2^53 - 1');
    }
  }
  const clients = uint();
  for (let c = 0; c < clients; c++) {
    uint(); // client
    const ranges = uint();
    for (let r = 0; r < ranges; r++) {
      const from = uint();
      const len = uint();
      if (len === 0) throw new Refused('an empty deletion');
      if (from + len > MAX) throw new Refused('a deletion ending past clock 2^53 - 1');
    }
  }
}

/** Why a Yjs v1 update from another device must not be applied, or undefined when it may. */
export function updateRefusal(update: Uint8Array): string | undefined {
  try {
    scan(update);
    return undefined;
  } catch (err) {
    if (err instanceof Refused) return err.message;
    throw err;
  }
}

/**
 * For a whole y-websocket / y-webrtc message: when it is a sync step 2 or an update, why its
 * update must not be applied (undefined: it may, or it is no such message).
 */
export function syncMessageRefusal(message: unknown): string | undefined {
  if (!(message instanceof Uint8Array)) return undefined;
  let update: Uint8Array;
  try {
    const decoder = decoding.createDecoder(message);
    if (decoding.readVarUint(decoder) !== RelayMessageType.Sync) return undefined;
    const kind = decoding.readVarUint(decoder);
    if (kind !== messageYjsSyncStep2 && kind !== messageYjsUpdate) return undefined;
    update = decoding.readVarUint8Array(decoder);
  } catch {
    // broken framing: syncFrameFault says what (the relay path checks it first)
    return undefined;
  }
  return updateRefusal(update);
}

/**
 * For a whole y-websocket message: when it is a sync step 2 or an update whose framing is broken
 * (the update's length is cut short or runs past the frame, or bytes follow the update), what is
 * wrong; undefined otherwise. y-protocols reads these inside a try (node_modules/y-protocols/sync.js
 * readSyncStep2, readUpdate): it applies nothing, logs, and y-websocket still counts a step 2 as
 * the relay's sync. Our server never sends one: it refuses such frames from clients before
 * forwarding them (packages/shared/src/protocol/relay.ts readRelayMessage) and frames its own exactly.
 */
export function syncFrameFault(message: Uint8Array): string | undefined {
  const decoder = decoding.createDecoder(message);
  let kind: number;
  try {
    if (decoding.readVarUint(decoder) !== RelayMessageType.Sync) return undefined;
    kind = decoding.readVarUint(decoder);
  } catch {
    // no sync message type (the stock handler throws on it: the caller drops the frame)
    return undefined;
  }
  if (kind !== messageYjsSyncStep2 && kind !== messageYjsUpdate) return undefined;
  const what = kind === messageYjsSyncStep2 ? 'a sync step 2' : 'an update';
  let length: number;
  try {
    length = decoding.readVarUint(decoder);
  } catch {
    return `${what} whose update length is cut short or past 2^53 - 1`;
  }
  const after = message.length - decoder.pos;
  if (length > after) return `${what} whose update length (${length} bytes) runs past the end of the frame (${after} left)`;
  if (length < after) return `${what} where ${after - length} bytes follow the update`;
  return undefined;
}
