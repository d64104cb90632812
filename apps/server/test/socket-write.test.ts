/**
 * ws/socket-write.ts on real loopback TCP sockets: a chunk goes to the handle when the stream
 * holds nothing, bytes the kernel did not take are counted until written, later writes (its own
 * and the stream's) stay behind them in order, and a destroyed socket leaves nothing counted.
 * End to end (the slow-consumer check that reads the count): relay-flow.test.ts.
 */
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { handleWritesAvailable, unsentDirectBytes, useHandleWrites, writeChunk } from '../src/ws/socket-write.js';

const open: Array<Server | Socket> = [];
afterEach(() => {
  for (const o of open.splice(0)) 'destroy' in o ? o.destroy() : o.close();
  useHandleWrites(true);
});

/** A connected pair: `writer` (the server's side, as ws holds it) and `reader`. */
async function pair(): Promise<{ writer: Socket; reader: Socket }> {
  const server = createServer();
  open.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const reader = connect(port, '127.0.0.1');
  const [writer] = await accepted;
  open.push(reader, writer);
  writer.setNoDelay(true);
  return { writer, reader };
}

/** Counts calls of the stream's write. */
function countStreamWrites(socket: Socket): { n: number } {
  const count = { n: 0 };
  const write = socket.write.bind(socket) as (chunk: Uint8Array) => boolean;
  socket.write = ((chunk: Uint8Array) => (count.n++, write(chunk))) as Socket['write'];
  return count;
}

/** Reads until `length` bytes have arrived. */
async function readBytes(reader: Socket, length: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  while (got < length) {
    const [chunk] = (await once(reader, 'data')) as [Buffer];
    chunks.push(chunk);
    got += chunk.length;
  }
  return Buffer.concat(chunks);
}

/** Chunk `i` of `size` bytes, each byte `i % 251`, so that any reordering shows. */
const chunkOf = (i: number, size: number): Buffer => Buffer.alloc(size, i % 251);

/** Node 20 has them; a Node without process.binding has not, and then only the stream is used. */
const expectHandle = typeof (process as { binding?: unknown }).binding === 'function';

it('finds the handle path on this Node', () => {
  expect(handleWritesAvailable()).toBe(expectHandle);
});

describe.runIf(expectHandle)('writeChunk', () => {
  it('writes to the handle when the stream holds nothing, and the stream still counts bytesWritten', async () => {
    const { writer, reader } = await pair();
    const stream = countStreamWrites(writer);
    const read = readBytes(reader, 6);
    writeChunk(writer, Buffer.from('abc'));
    writeChunk(writer, Buffer.from('def'));
    expect(stream.n).toBe(0);
    expect(String(await read)).toBe('abcdef');
    expect(writer.bytesWritten).toBe(6);
    expect(unsentDirectBytes(writer)).toBe(0);
  });

  it('goes through the stream when the stream holds something, or without the internals', async () => {
    const { writer, reader } = await pair();
    const stream = countStreamWrites(writer);
    const read = readBytes(reader, 4);
    writer.cork();
    writeChunk(writer, Buffer.from('a'));
    writer.uncork();
    expect(stream.n).toBe(1);
    useHandleWrites(false);
    writeChunk(writer, Buffer.from('bcd'));
    expect(stream.n).toBe(2);
    expect(String(await read)).toBe('abcd');
  });

  it('counts what the kernel did not take until it is written, keeping later writes behind it in order', async () => {
    const { writer, reader } = await pair();
    reader.pause();
    const size = 64 * 1024;
    let n = 0;
    // until a write is left to the handle: the reader does not read, so the kernel's buffers fill
    while (unsentDirectBytes(writer) === 0) {
      expect(n).toBeLessThan(500);
      writeChunk(writer, chunkOf(n++, size));
    }
    expect(unsentDirectBytes(writer)).toBe(size);
    const stream = countStreamWrites(writer);
    writeChunk(writer, chunkOf(n++, size)); // behind the pending one: through the stream
    writer.write(chunkOf(n++, size)); // as ws writes a control frame
    expect(stream.n).toBe(2);
    const all = readBytes(reader, n * size);
    reader.resume();
    const got = await all;
    for (let i = 0; i < n; i++) expect(got[i * size]).toBe(i % 251);
    expect(got.equals(Buffer.concat(Array.from({ length: n }, (_, i) => chunkOf(i, size))))).toBe(true);
    expect(unsentDirectBytes(writer)).toBe(0);
  });

  it('counts nothing for a socket destroyed with a write pending', async () => {
    const { writer, reader } = await pair();
    reader.pause();
    let n = 0;
    while (unsentDirectBytes(writer) === 0) {
      expect(n).toBeLessThan(500);
      writeChunk(writer, chunkOf(n++, 64 * 1024));
    }
    writer.destroy();
    await once(writer, 'close');
    expect(unsentDirectBytes(writer)).toBe(0);
  });
});
