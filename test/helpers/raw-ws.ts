/**
 * WebSocket at the byte level, for tests that send what no WebSocket library would: a TCP
 * socket that did the upgrade handshake by hand, and a frame builder with every bit settable.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { withTimeout } from './timeout.js';

export interface RawUpgrade {
  socket: Socket;
  /** the HTTP status line's code */
  status: number;
  /** bytes received after the handshake so far */
  received(): Buffer;
  /** resolves when the server has ended the TCP connection */
  ended: Promise<void>;
}

/**
 * Opens a TCP connection and sends an upgrade request for `path`; resolves with the answer's
 * status. `frames` go in the same TCP write as the request (they reach the server while it admits).
 */
export async function rawUpgrade(port: number, path: string, opts: { localAddress?: string; headers?: string; frames?: Buffer[] } = {}): Promise<RawUpgrade> {
  const socket = connect({ port, host: '127.0.0.1', ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
  socket.on('error', () => undefined);
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  let buf = Buffer.alloc(0);
  let headerEnd = -1;
  const headed = new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (headerEnd < 0 && (headerEnd = buf.indexOf('\r\n\r\n')) >= 0) resolve();
    });
    socket.once('close', () => reject(new Error('closed before the handshake answer')));
  });
  await withTimeout(once(socket, 'connect'), 5000, 'tcp connect');
  const headers = opts.headers ?? `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n`;
  socket.write(Buffer.concat([Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${headers}\r\n`), ...(opts.frames ?? [])]));
  await withTimeout(headed, 5000, `handshake answer for ${path}`);
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(buf.toString('latin1'))?.[1] ?? 0);
  return { socket, status, received: () => buf.subarray(headerEnd + 4), ended };
}

export interface FrameBits {
  fin?: boolean;
  /** the three RSV bits as a number 0-7 */
  rsv?: number;
  /** clients must mask; false sends an unmasked frame */
  mask?: boolean;
  /** announce this payload length instead of the real one */
  announcedLength?: number;
}

/** One WebSocket frame as a client would send it (masked unless told otherwise). */
export function frame(opcode: number, payload: Uint8Array | string, bits: FrameBits = {}): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload);
  const length = bits.announcedLength ?? body.length;
  const mask = bits.mask ?? true;
  const head: number[] = [((bits.fin ?? true) ? 0x80 : 0) | ((bits.rsv ?? 0) << 4) | opcode];
  const m = mask ? 0x80 : 0;
  if (length < 126) head.push(m | length);
  else if (length < 65536) head.push(m | 126, length >> 8, length & 0xff);
  else {
    const ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(BigInt(length));
    head.push(m | 127, ...ext);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), body]);
  const key = randomBytes(4);
  const masked = Buffer.from(body.map((b, i) => b ^ (key[i % 4] as number)));
  return Buffer.concat([Buffer.from(head), key, masked]);
}

/** The close code of the first close frame (opcode 8) the server sent, or null. */
export function closeCodeIn(received: Buffer): number | null {
  let at = 0;
  while (at + 2 <= received.length) {
    const opcode = (received[at] as number) & 0x0f;
    let len = (received[at + 1] as number) & 0x7f;
    let start = at + 2;
    if (len === 126) {
      len = received.readUInt16BE(at + 2);
      start += 2;
    } else if (len === 127) {
      len = Number(received.readBigUInt64BE(at + 2));
      start += 8;
    }
    if (opcode === 8) return len >= 2 && start + 2 <= received.length ? received.readUInt16BE(start) : null;
    at = start + len;
  }
  return null;
}
