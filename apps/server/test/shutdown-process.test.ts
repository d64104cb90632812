/**
 * Graceful shutdown of a real server process: SIGTERM/SIGINT -> /readyz 503 naming the
 * shutdown while it drains, open WebSockets closed with 1012, exit 0.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { baseEnv, exitWithin, listeningPort, runEntry, type RunningProcess } from '../../../test/helpers/process.js';

let proc: RunningProcess | undefined;
let socket: Socket | undefined;
afterEach(async () => {
  socket?.destroy();
  await proc?.kill();
  proc = undefined;
  socket = undefined;
});

/**
 * A raw WebSocket on /signal that stops reading once open: the server's close frame then
 * waits unanswered, which holds the shutdown in its "sockets" phase (bounded by the
 * server's own 2 s terminate) long enough to watch /readyz during the drain.
 */
async function openStalledSocket(port: number): Promise<Socket> {
  const s = connect(port, '127.0.0.1');
  await once(s, 'connect');
  s.write(
    `GET /signal HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  const [head] = (await once(s, 'data')) as [Buffer];
  expect(head.toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);
  s.pause();
  return s;
}

/** Read what the server sent after the upgrade and return the close frame's status code. */
async function closeCodeFrom(s: Socket): Promise<number | undefined> {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.resume();
  await Promise.race([once(s, 'end'), once(s, 'close')]);
  const bytes = Buffer.concat(chunks);
  // Server frames are unmasked: opcode byte, length byte, then the 2-byte code.
  for (let i = 0; i + 3 < bytes.length; ) {
    const opcode = (bytes[i] as number) & 0x0f;
    const len = (bytes[i + 1] as number) & 0x7f;
    if (opcode === 0x8) return bytes.readUInt16BE(i + 2);
    i += 2 + len;
  }
  return undefined;
}

/** Ask /readyz back to back until it answers 503 or the server is gone. */
async function readyzDuringShutdown(port: number, deadline: number): Promise<{ status: number; body: unknown } | undefined> {
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2000) });
      const body: unknown = await res.json();
      if (res.status === 503) return { status: res.status, body };
    } catch {
      return undefined; // the listener closed before we saw a 503
    }
  }
  return undefined;
}

describe.each(['SIGTERM', 'SIGINT'] as const)('graceful shutdown on %s', (signal) => {
  it('answers /readyz 503 while draining, closes WebSockets with 1012 and exits 0', async () => {
    proc = runEntry('apps/server/src/main.ts', baseEnv({ HOST: '127.0.0.1', PORT: '0', STORAGE: 'memory', LOG_LEVEL: 'info' }));
    const port = await listeningPort(proc);
    const before = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(before.status).toBe(200);
    expect(await before.json()).toMatchObject({ status: 'ready' });
    socket = await openStalledSocket(port);

    proc.child.kill(signal);
    const seen = await readyzDuringShutdown(port, Date.now() + 10_000);
    // Other checks (storage, redis) may be listed too; the shutdown is what makes it 503.
    expect(seen).toEqual({ status: 503, body: { status: 'unavailable', checks: expect.objectContaining({ shutdown: 'shutting down' }) as unknown } });
    // Liveness is unaffected while the process still runs.
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);

    expect(await closeCodeFrom(socket)).toBe(1012);
    const exit = await exitWithin(proc, 15_000);
    expect(exit).toEqual({ code: 0, signal: null });
    const messages = proc.lines.map((l) => l['msg']);
    expect(messages).toContain('shutting down');
    expect(messages).toContain('stopped');
  });
});

describe('shutdown with nothing open', () => {
  it('exits 0 promptly and stops accepting connections', async () => {
    proc = runEntry('apps/server/src/main.ts', baseEnv({ HOST: '127.0.0.1', PORT: '0', STORAGE: 'memory' }));
    const port = await listeningPort(proc);
    proc.child.kill('SIGTERM');
    expect((await exitWithin(proc, 15_000)).code).toBe(0);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });
});
