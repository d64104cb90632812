/**
 * A /relay socket whose reading is held while it is admitted (frames queued past
 * RELAY_MAX_MESSAGE_BYTES: relay/connection.ts enqueue, ws/read-throttle.ts hold) and is then
 * refused: the close handshake still reads the client's close frame. Before, reading stayed
 * paused once the server had sent its close frame, so the client's answer sat unread until ws's
 * close timeout destroyed the socket (ws then parses what was buffered, so the close code alone
 * does not tell: the socket's paused state does).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import type { WebSocket } from 'ws';
import { frame, rawUpgrade } from '../../../test/helpers/raw-ws.js';
import { startServer, testToken, TEST_SECRET, type TestServer } from '../../../test/helpers/server.js';
import { withTimeout } from '../../../test/helpers/timeout.js';

let server: TestServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

/** resolves once `bytes()` holds a WebSocket close frame from the server (opcode 8, unmasked) */
async function closeFrameFrom(socket: NodeJS.EventEmitter, bytes: () => Buffer): Promise<void> {
  const seen = () => bytes().includes(0x88);
  if (seen()) return;
  await withTimeout(
    new Promise<void>((resolve) => {
      const check = (): void => {
        if (!seen()) return;
        socket.off('data', check);
        resolve();
      };
      socket.on('data', check);
    }),
    5000,
    "the server's close frame",
  );
}

describe('relay: a socket held while admitted, then refused', () => {
  for (const variant of ['room not covered (4403)', 'bad signature (4401)'] as const) {
    it(`${variant}: the server reads the client's close frame`, async () => {
      server = await startServer({ AUTH_SECRET: TEST_SECRET, RELAY_MAX_MESSAGE_BYTES: '1000' });
      const good = await testToken('u', ['acme-conversation-x']);
      const token = variant.startsWith('room') ? await testToken('u', ['acme-conversation-other']) : `${good.slice(0, -4)}AAAA`;
      // two 900-byte frames in the upgrade's TCP write: 1800 queued bytes > 1000 while admitting, so reading is held
      const frames = [frame(2, new Uint8Array(900)), frame(2, new Uint8Array(900))];
      const c = await rawUpgrade(server.port, `/relay/acme-conversation-x?token=${encodeURIComponent(token)}`, { frames });
      expect(c.status).toBe(101);
      const ws = [...server.app.sync.admission.sockets].at(-1) as WebSocket;
      const closed = once(ws, 'close') as Promise<[number, Buffer]>;
      await closeFrameFrom(c.socket, c.received);
      expect(ws.readyState).toBe(ws.CLOSING);
      expect(ws.isPaused).toBe(false);
      c.socket.write(frame(8, Buffer.from([0x03, 0xe8]))); // 1000, as any client answers
      const [code] = await withTimeout(closed, 10_000, 'server socket close');
      expect(code).toBe(1000);
      c.socket.destroy();
    });
  }
});
