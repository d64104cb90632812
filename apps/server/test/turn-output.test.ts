/**
 * The turn sink (ws/turn-output.ts) on a stand-in socket: what it writes, in how many writes, and
 * that TurnFlush.flushNow() writes a turn's output before the end of the turn (the shutdown's
 * close frames follow it: app.ts). End to end: shutdown-phases.test.ts, signaling-fanout.test.ts.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { TurnFlush, TurnOutput } from '../src/ws/turn-output.js';
import { textFrame } from '../src/signaling/publish-frame.js';

const require = createRequire(import.meta.url);
const { Receiver } = require('ws') as { Receiver: new (opts: { isServer: boolean; maxPayload: number }) => NodeJS.WritableStream & {
  on(e: 'message', f: (data: Buffer, isBinary: boolean) => void): void;
  on(e: 'error', f: (err: Error) => void): void;
} };

/** A WebSocket as TurnOutput sees it: readyState, and the TCP socket ws keeps in `_socket`. */
function standIn(): { ws: WebSocket; writes: Uint8Array[]; sent: unknown[] } {
  const writes: Uint8Array[] = [];
  const sent: unknown[] = [];
  const tcp = { destroyed: false, write: (chunk: Uint8Array) => writes.push(chunk) > 0, cork: () => undefined, uncork: () => undefined };
  const ws = { OPEN: 1, readyState: 1, bufferedAmount: 0, _socket: tcp, send: (m: unknown) => sent.push(m) };
  return { ws: ws as unknown as WebSocket, writes, sent };
}

/** What a client's parser reads from the bytes: [binary?, text]. */
function parse(chunks: Uint8Array[]): Array<[boolean, string]> {
  const receiver = new Receiver({ isServer: false, maxPayload: 0 });
  const out: Array<[boolean, string]> = [];
  receiver.on('message', (data, isBinary) => out.push([isBinary, String(data)]));
  receiver.on('error', (err) => {
    throw err;
  });
  for (const c of chunks) receiver.write(Buffer.from(c));
  return out;
}

const text = (s: string): Buffer => textFrame(Buffer.from(s));
const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s));

describe('TurnOutput', () => {
  it('writes a turn of one prebuilt frame as that very Buffer, and holds nothing after', () => {
    const { ws, writes } = standIn();
    const out = new TurnOutput(ws, new TurnFlush());
    const frame = text('{"type":"publish"}');
    out.pushFrame(frame);
    expect(out.queuedBytes).toBe(frame.length);
    out.flushTurn();
    expect(writes).toEqual([frame]);
    expect(writes[0]).toBe(frame);
    expect({ pending: out.turnPending, bytes: out.queuedBytes }).toEqual({ pending: false, bytes: 0 });
  });

  it('writes messages and prebuilt frames given in one turn in one write, in order', () => {
    const { ws, writes } = standIn();
    const out = new TurnOutput(ws, new TurnFlush());
    out.push(bytes('m1'));
    out.pushFrame(text('f1'));
    out.push(bytes('m2'));
    out.pushFrame(text('f2'));
    out.flushTurn();
    expect(writes).toHaveLength(1);
    expect(out.queuedBytes).toBe(0);
    expect(parse(writes)).toEqual([
      [true, 'm1'],
      [false, 'f1'],
      [true, 'm2'],
      [false, 'f2'],
    ]);
  });

  it('counts the bytes that will be written once messages are framed among frames', () => {
    const { ws } = standIn();
    const out = new TurnOutput(ws, new TurnFlush());
    out.push(bytes('abc'));
    expect(out.queuedBytes).toBe(3);
    out.pushFrame(text('d'));
    expect(out.queuedBytes).toBe(2 + 3 + 2 + 1);
  });

  it('flushNow() writes the turn at once; the end of the turn then writes nothing more', async () => {
    const { ws, writes } = standIn();
    const turns = new TurnFlush();
    const out = new TurnOutput(ws, turns);
    out.push(bytes('before the close'));
    turns.flushNow();
    expect(parse(writes)).toEqual([[true, 'before the close']]);
    (ws as unknown as { readyState: number }).readyState = 2; // CLOSING: what ws.close() leaves
    out.push(bytes('after the close'));
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(writes).toHaveLength(1);
  });
});
