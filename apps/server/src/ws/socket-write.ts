/**
 * Writes a turn's output (ws/turn-output.ts) straight to the TCP handle under a socket when the
 * socket's stream holds nothing: net.Socket.write goes through the Writable machinery
 * (Socket._writeGeneric, a WriteWrap made per write, an afterWrite tick) around the same
 * handle.writeBuffer call. Every use of Node internals for it is in this file, detected once at
 * load; without them, or for any socket that is not a plain TCP socket with an empty stream, this
 * is socket.write.
 *
 * What the stream would have known stays true: bytes the kernel did not take at once (the handle
 * queues them, in order, ahead of anything written after, also through the stream) are counted
 * here until written (unsentDirectBytes: the slow-consumer checks add them), a failed write
 * destroys the socket with the error as the stream would, and the handle's own byte count keeps
 * socket.bytesWritten right. A socket with a timeout, corked or still connecting uses the stream.
 */
import type { Socket } from 'node:net';
import { getSystemErrorName } from 'node:util';

/** The socket as TurnQueue holds it (a stand-in in unit tests). */
export interface RawSocket {
  write(chunk: Uint8Array): boolean;
  cork(): void;
  uncork(): void;
  readonly destroyed: boolean;
}

interface WriteReq {
  oncomplete: (this: WriteReq, status: number) => void;
  async: boolean;
  bytes: number;
  /** held while the handle still writes it */
  buffer: Uint8Array | null;
  socket: Socket | null;
}

interface TcpHandle {
  writeBuffer(req: WriteReq, chunk: Uint8Array): number;
}

interface Internals {
  WriteWrap: new () => WriteReq;
  TCP: abstract new (...args: never[]) => TcpHandle;
  state: Int32Array;
  kBytesWritten: number;
  kLastWriteWasAsync: number;
}

/** Node's stream_wrap and tcp_wrap bindings, when this Node has them as expected; null: socket.write only. */
function detect(): Internals | null {
  try {
    const binding = (process as unknown as { binding(name: string): Record<string, unknown> }).binding;
    if (typeof binding !== 'function') return null;
    const stream = binding('stream_wrap');
    const tcp = binding('tcp_wrap');
    const { WriteWrap, streamBaseState, kBytesWritten, kLastWriteWasAsync } = stream;
    const TCP = tcp['TCP'];
    if (typeof WriteWrap !== 'function' || typeof TCP !== 'function' || !(streamBaseState instanceof Int32Array)) return null;
    if (typeof kBytesWritten !== 'number' || typeof kLastWriteWasAsync !== 'number') return null;
    if (typeof (TCP.prototype as Partial<TcpHandle>).writeBuffer !== 'function') return null;
    return { WriteWrap: WriteWrap as Internals['WriteWrap'], TCP: TCP as Internals['TCP'], state: streamBaseState, kBytesWritten, kLastWriteWasAsync };
  } catch {
    return null;
  }
}

let internals = detect();

/** A request object for the next write: the handle keeps one only when the write is left pending. */
let spare: WriteReq | null = null;

/** Bytes of direct writes the kernel has not taken yet, by socket; `pendingWrites` counts the writes (0: skip the map). */
const pending = new Map<Socket, number>();
let pendingWrites = 0;

interface StreamSocket extends Socket {
  _handle: unknown;
  readonly writableCorked: number;
}

/** Writes `chunk` to the socket: to its handle when nothing else is queued, else through its stream. */
export function writeChunk(socket: RawSocket, chunk: Uint8Array): void {
  const via = internals;
  const s = socket as StreamSocket;
  const handle = via && s._handle;
  if (
    !via ||
    !(handle instanceof via.TCP) ||
    s.writableLength !== 0 ||
    s.writableCorked !== 0 ||
    s.connecting ||
    s.timeout ||
    (pendingWrites !== 0 && pending.has(s))
  ) {
    socket.write(chunk);
    return;
  }
  const req = spare ?? new via.WriteWrap();
  spare = null;
  req.oncomplete = onComplete;
  req.socket = null;
  req.buffer = null;
  const err = (handle as TcpHandle).writeBuffer(req, chunk);
  if (err !== 0) {
    spare = req;
    s.destroy(writeError(err));
    return;
  }
  if (via.state[via.kLastWriteWasAsync] === 0) {
    spare = req; // written whole: the handle kept nothing of the request
    return;
  }
  req.async = true;
  req.bytes = via.state[via.kBytesWritten] ?? chunk.length;
  req.buffer = chunk;
  req.socket = s;
  pending.set(s, (pending.get(s) ?? 0) + chunk.length);
  pendingWrites++;
}

/** Bytes given to writeChunk that the kernel has not taken yet (0 when they all went at once). */
export function unsentDirectBytes(socket: RawSocket | undefined): number {
  return pendingWrites === 0 || !socket ? 0 : (pending.get(socket as Socket) ?? 0);
}

/** A pending write finished (status < 0: failed, or cancelled as the socket was destroyed). */
function onComplete(this: WriteReq, status: number): void {
  const socket = this.socket;
  const length = this.buffer?.length ?? 0;
  this.buffer = null;
  this.socket = null;
  if (!socket) return;
  pendingWrites--;
  const left = (pending.get(socket) ?? 0) - length;
  if (left > 0) pending.set(socket, left);
  else pending.delete(socket);
  if (status < 0 && !socket.destroyed) socket.destroy(writeError(status));
}

function writeError(errno: number): NodeJS.ErrnoException {
  let name = 'EIO';
  try {
    name = getSystemErrorName(errno);
  } catch {
    // not a system error number: keep EIO
  }
  return Object.assign(new Error(`write ${name}`), { errno, code: name, syscall: 'write' });
}

/** Tests: run without the internals (the fallback), or with them again. */
export function useHandleWrites(on: boolean): void {
  internals = on ? detect() : null;
}

/** Tests: whether the handle path is available on this Node. */
export function handleWritesAvailable(): boolean {
  return detect() !== null;
}
