/**
 * WebSocket framing (RFC 6455 §5.2) of server-to-client binary messages, as a pure function:
 * FIN, opcode 2, no mask, no extension bits (the relay negotiates no permessage-deflate).
 * A relay connection writes what it was sent in one event-loop turn as one buffer, framed here,
 * instead of one ws.send() per message: that is one write per receiver per turn.
 */

/** Messages above this are written by reference (header, then the message) instead of copied. */
export const COPY_LIMIT = 16 * 1024;

function headerLength(length: number): number {
  return length < 126 ? 2 : length < 65536 ? 4 : 10;
}

function writeHeader(target: Buffer, offset: number, length: number): number {
  target[offset] = 0x82; // FIN + binary
  if (length < 126) {
    target[offset + 1] = length;
    return offset + 2;
  }
  if (length < 65536) {
    target[offset + 1] = 126;
    target.writeUInt16BE(length, offset + 2);
    return offset + 4;
  }
  target[offset + 1] = 127;
  target.writeUInt32BE(Math.floor(length / 2 ** 32), offset + 2);
  target.writeUInt32BE(length >>> 0, offset + 6);
  return offset + 10;
}

/** The header of one binary frame carrying `length` bytes. */
export function frameHeader(length: number): Buffer {
  const header = Buffer.allocUnsafe(headerLength(length));
  writeHeader(header, 0, length);
  return header;
}

/**
 * The messages as consecutive binary frames, in order: small ones packed into one buffer, large
 * ones (over COPY_LIMIT) as their header followed by the message itself, uncopied.
 */
export function encodeBinaryFrames(messages: readonly Uint8Array[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i <= messages.length; i++) {
    const message = messages[i];
    if (message !== undefined && message.length <= COPY_LIMIT) continue;
    if (i > start) chunks.push(packFrames(messages, start, i));
    if (message !== undefined) chunks.push(frameHeader(message.length), message);
    start = i + 1;
  }
  return chunks;
}

/** One message as one frame in one buffer (header and a copy of the message). */
export function frameOnce(message: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(headerLength(message.length) + message.length);
  out.set(message, writeHeader(out, 0, message.length));
  return out;
}

function packFrames(messages: readonly Uint8Array[], from: number, to: number): Buffer {
  let total = 0;
  for (let i = from; i < to; i++) {
    const length = (messages[i] as Uint8Array).length;
    total += headerLength(length) + length;
  }
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  for (let i = from; i < to; i++) {
    const message = messages[i] as Uint8Array;
    offset = writeHeader(out, offset, message.length);
    out.set(message, offset);
    offset += message.length;
  }
  return out;
}
