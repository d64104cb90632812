/** WebSocket framing of relay output: byte fixtures, and a round trip through ws's own receiver. */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { COPY_LIMIT, encodeBinaryFrames, frameHeader } from '../src/relay/ws-frames.js';

// ws's Receiver from the copy the server uses: what a real client's parser makes of our bytes.
const require = createRequire(import.meta.url);
const { Receiver } = require('ws') as { Receiver: new (opts: { isServer: boolean; maxPayload: number }) => NodeJS.WritableStream & {
  on(e: 'message', f: (data: Buffer, isBinary: boolean) => void): void;
  on(e: 'error', f: (err: Error) => void): void;
} };

function parse(chunks: Uint8Array[]): Buffer[] {
  const receiver = new Receiver({ isServer: false, maxPayload: 0 });
  const out: Buffer[] = [];
  receiver.on('message', (data, isBinary) => {
    expect(isBinary).toBe(true);
    out.push(Buffer.from(data));
  });
  receiver.on('error', (err) => {
    throw err;
  });
  for (const c of chunks) receiver.write(Buffer.from(c));
  return out;
}

describe('relay ws frames', () => {
  it.each([
    [0, [0x82, 0]],
    [125, [0x82, 125]],
    [126, [0x82, 126, 0, 126]],
    [65535, [0x82, 126, 0xff, 0xff]],
    [65536, [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]],
  ])('header for %d bytes', (length, bytes) => {
    expect([...frameHeader(length)]).toEqual(bytes);
  });

  it('packs small messages into one buffer, in order', () => {
    const messages = [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array(200).fill(7)];
    const chunks = encodeBinaryFrames(messages);
    expect(chunks).toHaveLength(1);
    expect([...(chunks[0] as Uint8Array).subarray(0, 7)]).toEqual([0x82, 3, 1, 2, 3, 0x82, 0]);
    expect(parse(chunks).map((b) => [...b])).toEqual(messages.map((m) => [...m]));
  });

  it('passes large messages by reference between packed runs', () => {
    const big = new Uint8Array(COPY_LIMIT + 1).fill(9);
    const messages = [new Uint8Array([1]), big, new Uint8Array([2]), new Uint8Array([3])];
    const chunks = encodeBinaryFrames(messages);
    expect(chunks).toHaveLength(4); // [1] | header | big | [2][3]
    expect(chunks[2]).toBe(big);
    expect(parse(chunks).map((b) => b.length)).toEqual([1, COPY_LIMIT + 1, 1, 1]);
  });
});
