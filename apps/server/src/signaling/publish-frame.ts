/**
 * The WebSocket text frame (RFC 6455 §5.2: FIN, opcode 1, no mask) that every subscriber of a
 * topic receives for one publish, built once per publish: the same Buffer is written to every
 * receiver's TCP socket (signaling/connection.ts), with no per-receiver framing.
 *
 * The payload is the publish as received with `"clients":N` added. Usually that is the received
 * bytes themselves with `,"clients":N` spliced before the closing brace: no re-serialization. The
 * spliced text parses to the value the server parsed, plus `clients`, and keeps the sender's
 * spelling of numbers: -0 and out-of-range numbers (1e400, parsed as Infinity) reach receivers as
 * sent, where JSON.stringify({ ...fields, clients }) writes 0 and null. Otherwise the two agree
 * (apps/server/test/signaling-publish-frame-fuzz.test.ts).
 * When splicing could differ from that, or from what the server decided on, the publish is
 * re-serialized (writePublish) as before:
 * - the bytes are not valid UTF-8 (a binary frame: the decode replaced what was invalid);
 * - the message has its own top-level `clients` (the splice would duplicate the key);
 * - `"topic"` occurs more than once, or some `\u` escape could spell a key: a parser that keeps
 *   the first of duplicate keys could read another topic than the one the server checked;
 * - `"type"` occurs more than once and the message does not open with `"type":"publish"` (for the
 *   same reason; y-webrtc's messages open with it, and their nested objects have a `type` too);
 * - more `{` and `[` bytes than SPLICE_MAX_BRACKETS: nesting deep enough that re-serializing
 *   might throw (the `unserializable` refusal) is decided by re-serializing, as before.
 *
 * Other duplicate top-level keys are spliced as received: the server reads only `type` and
 * `topic` (signaling/handlers.ts) and sets `clients`; past the cases above, `topic` and `clients`
 * occur once and the first and last top-level `type` are both "publish", so a parser keeping
 * either reads what the server read. Each receiver resolves the other duplicates as it would
 * the sender's bytes; JSON.parse (stock y-webrtc, and the server) keeps the last, and a parser
 * keeping the first reads a value the sender could have sent alone.
 */
import { isUtf8 } from 'node:buffer';
import { writePublish, type PublishFields } from '@sync-suite/shared';

/** Above this many `{`/`[` bytes the message is re-serialized (which throws RangeError when too deep). */
export const SPLICE_MAX_BRACKETS = 64;

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const TOPIC_KEY = Buffer.from('"topic"');
const TYPE_KEY = Buffer.from('"type"');
const PUBLISH = Buffer.from('"publish"');
const UNICODE_ESCAPE = Buffer.from('\\u');

function headerLength(length: number): number {
  return length < 126 ? 2 : length < 65536 ? 4 : 10;
}

function writeTextHeader(target: Buffer, length: number): number {
  target[0] = 0x81; // FIN + text
  if (length < 126) {
    target[1] = length;
    return 2;
  }
  if (length < 65536) {
    target[1] = 126;
    target.writeUInt16BE(length, 2);
    return 4;
  }
  target[1] = 127;
  target.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
  target.writeUInt32BE(length >>> 0, 6);
  return 10;
}

/** `payload` (UTF-8 JSON) as one text frame in one Buffer. */
export function textFrame(payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(headerLength(payload.length) + payload.length);
  frame.set(payload, writeTextHeader(frame, payload.length));
  return frame;
}

/** The payload of a frame made here (what goes to other instances, unframed). */
export function framePayload(frame: Buffer): Buffer {
  const second = frame[1] as number;
  return frame.subarray(second < 126 ? 2 : second === 126 ? 4 : 10);
}

/** How many times `byte` occurs in `bytes`, counting no further than `max + 1`. */
function countUpTo(bytes: Buffer, byte: number, max: number): number {
  let n = 0;
  for (let at = bytes.indexOf(byte); at !== -1 && n <= max; at = bytes.indexOf(byte, at + 1)) n++;
  return n;
}

/** Index of the closing brace of the received object, or -1 (trailing JSON whitespace skipped). */
function closingBrace(bytes: Buffer): number {
  let end = bytes.length - 1;
  for (;;) {
    const b = bytes[end];
    if (b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09) end--;
    else return b === CLOSE_BRACE ? end : -1;
  }
}

/** Index of the first byte at or after `at` that is not JSON whitespace. */
function skipWhitespace(bytes: Buffer, at: number): number {
  for (let b = bytes[at]; b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09; b = bytes[at]) at++;
  return at;
}

/** Whether the message's first member is `"type":"publish"` (as JSON.stringify writes y-webrtc's messages). */
function opensWithPublish(bytes: Buffer): boolean {
  let at = skipWhitespace(bytes, 0);
  if (bytes[at] !== OPEN_BRACE) return false;
  at = skipWhitespace(bytes, at + 1);
  if (!bytes.subarray(at, at + TYPE_KEY.length).equals(TYPE_KEY)) return false;
  at = skipWhitespace(bytes, at + TYPE_KEY.length);
  if (bytes[at] !== 0x3a) return false; // :
  at = skipWhitespace(bytes, at + 1);
  return bytes.subarray(at, at + PUBLISH.length).equals(PUBLISH);
}

/** Whether the received bytes may be forwarded with `clients` spliced in (see the file comment). */
function spliceable(fields: PublishFields, received: Buffer): boolean {
  if (Object.hasOwn(fields, 'clients')) return false;
  const topicAt = received.indexOf(TOPIC_KEY);
  if (topicAt === -1 || received.indexOf(TOPIC_KEY, topicAt + 1) !== -1) return false;
  if (received.indexOf(UNICODE_ESCAPE) !== -1) return false;
  // JSON.parse (the server) read the last "type" as publish; a parser keeping the first must too.
  if (!opensWithPublish(received)) {
    const typeAt = received.indexOf(TYPE_KEY);
    if (received.indexOf(TYPE_KEY, typeAt + 1) !== -1) return false;
  }
  const braces = countUpTo(received, OPEN_BRACE, SPLICE_MAX_BRACKETS);
  if (braces + countUpTo(received, OPEN_BRACKET, SPLICE_MAX_BRACKETS - braces) > SPLICE_MAX_BRACKETS) return false;
  return isUtf8(received);
}

/**
 * The frame for a publish whose decoded fields are `fields` and whose received bytes are
 * `received`, with `clients` set. Throws RangeError when the message cannot be re-serialized.
 */
export function publishFrame(fields: PublishFields, received: Buffer, clients: number): Buffer {
  const end = spliceable(fields, received) ? closingBrace(received) : -1;
  if (end === -1) return textFrame(writePublish(fields, clients));
  const suffix = `,"clients":${clients}}`;
  const length = end + suffix.length;
  const frame = Buffer.allocUnsafe(headerLength(length) + length);
  const at = writeTextHeader(frame, length);
  received.copy(frame, at, 0, end);
  frame.write(suffix, at + end, 'latin1');
  return frame;
}
