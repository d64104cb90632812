/**
 * Each accessor of ws/ws-internals.ts against the installed ws and node, on a real server and
 * client on loopback: a ws upgrade that renames a private field fails here (the accessors
 * themselves read such a field as absent and carry on), and so does one that leaves the version
 * checked in the module's header behind the pin.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import {
  cachedPeerAddress,
  dropCachedPeerAddress,
  dropClearedTimer,
  framePayloadLimit,
  httpMessageOf,
  readQueue,
  setFramePayloadLimit,
  tcpSocket,
  timeoutSymbol,
} from '../src/ws/ws-internals.js';
import { serverPerTest, TEST_SECRET, testToken } from '../../../test/helpers/server.js';
import { withTimeout } from '../../../test/helpers/timeout.js';

const scope = serverPerTest();
afterEach(() => scope.close());

const require = createRequire(import.meta.url);

interface Seen {
  raw: Socket | undefined;
  response: unknown;
  responseSocket: unknown;
  peerCached: unknown;
  timerKey: symbol | undefined;
  timer: unknown;
  timerAfterDrop: unknown;
  peerAfterDrop: unknown;
  addressAfterDrop: string | undefined;
}

/** What the accessors read on the server's socket as it opens, before the route handler runs (it releases these). */
function inspect(ws: WebSocket): Seen {
  const raw = tcpSocket(ws);
  const seen: Partial<Seen> = { raw };
  if (!raw) return seen as Seen;
  seen.response = httpMessageOf(raw);
  seen.responseSocket = seen.response instanceof ServerResponse ? seen.response.socket : undefined;
  seen.peerCached = cachedPeerAddress(raw);
  seen.timerKey = timeoutSymbol(raw);
  const bag = raw as unknown as Record<symbol, unknown>;
  seen.timer = seen.timerKey && bag[seen.timerKey];
  dropClearedTimer(raw);
  seen.timerAfterDrop = seen.timerKey && bag[seen.timerKey];
  dropCachedPeerAddress(raw);
  seen.peerAfterDrop = cachedPeerAddress(raw);
  seen.addressAfterDrop = raw.remoteAddress;
  return seen as Seen;
}

describe('ws internals', () => {
  it('are checked against the pinned ws, the one the server runs on', () => {
    const pinned = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> }).dependencies.ws;
    const ours = (require('ws/package.json') as { version: string }).version;
    // The sockets come from @fastify/websocket's ws (its own copy in node_modules).
    const fromPlugin = createRequire(require.resolve('@fastify/websocket'));
    const theirs = (fromPlugin('ws/package.json') as { version: string }).version;
    const header = readFileSync(new URL('../src/ws/ws-internals.ts', import.meta.url), 'utf8');
    expect(ours).toBe(pinned);
    expect(theirs).toBe(pinned);
    expect(header).toContain(`Checked against ws ${pinned} `);
  });

  it('read and write the fields they name on a real socket', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
    let seen: Seen | undefined;
    const opened = once(server.app.websocketServer, 'connection') as Promise<[WebSocket, IncomingMessage]>;
    server.app.websocketServer.prependListener('connection', (ws: WebSocket) => (seen = inspect(ws)));
    const token = await testToken('u1', ['acme-conversation-*'], { ttlSeconds: 60 });
    const client = new WebSocket(`${server.wsUrl}/signal?token=${token}`);
    scope.track({ close: () => client.terminate() });
    const [ws] = await withTimeout(opened, 5000, 'server side open');
    await withTimeout(once(client, 'open'), 5000, 'client open');

    // _socket, and on it node's _httpMessage, timeout symbol and _peername
    expect(seen?.raw).toBeInstanceOf(Socket);
    expect(seen?.raw?.remotePort).toBe(tcpSocket(client)?.localPort);
    expect(seen?.response, '_httpMessage').toBeInstanceOf(ServerResponse);
    expect(seen?.responseSocket).toBe(seen?.raw);
    expect(seen?.timerKey, 'timeout symbol').toBeTypeOf('symbol');
    expect(seen?.timer, 'the cleared connection timer').toBeTruthy();
    expect(seen?.timerAfterDrop).toBeNull();
    expect(seen?.peerCached, '_peername').toEqual(expect.objectContaining({ address: '127.0.0.1' }));
    expect(seen?.peerAfterDrop).toBeUndefined();
    expect(seen?.addressAfterDrop).toBe('127.0.0.1');

    // _receiver._maxPayload: the route set the endpoint's limit; a lower one closes 1009 on a larger frame.
    expect(framePayloadLimit(ws)).toBe(server.config.SIGNALING_MAX_MESSAGE_BYTES);
    // _receiver._buffers: an array, emptied once what was read is parsed.
    const before = tcpSocket(ws)?.bytesRead ?? -1;
    client.send(JSON.stringify({ type: 'ping' }));
    await withTimeout(once(client, 'message'), 5000, 'pong');
    expect(tcpSocket(ws)?.bytesRead).toBeGreaterThan(before);
    expect(readQueue(ws)).toEqual([]);
    setFramePayloadLimit(ws, 16);
    expect(framePayloadLimit(ws)).toBe(16);
    client.send('x'.repeat(17));
    const [code] = (await withTimeout(once(client, 'close'), 5000, 'close')) as [number];
    expect(code).toBe(1009);
  });
});
