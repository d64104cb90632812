/**
 * The network edge under hostile load: refused upgrades end at once and never lock real
 * clients out, the per-address budget of unauthenticated upgrades, HTTP timeouts on half-sent
 * requests, and /signal's frame limit applied by ws before a payload is buffered.
 */
import { once } from 'node:events';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { WebsocketProvider } from 'y-websocket';
import { serverPerTest, TEST_SECRET, testToken } from '../../../test/helpers/server.js';
import { closeCodeIn, frame, rawUpgrade, type RawUpgrade } from '../../../test/helpers/raw-ws.js';
import { withTimeout } from '../../../test/helpers/timeout.js';
import { docUntil, metric, synced, textOf } from '../../../test/fixtures/relay-clients.js';

const ROOM = 'acme-conversation-edge';
const scope = serverPerTest();
afterEach(() => scope.close());

/** A stock y-websocket client connecting from another loopback address than the attacker's. */
function clientFrom(localAddress: string, wsUrl: string, doc: Y.Doc, token: string): WebsocketProvider {
  class FromAddress extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { localAddress });
    }
  }
  return new WebsocketProvider(`${wsUrl}/relay`, ROOM, doc, {
    params: { token },
    WebSocketPolyfill: FromAddress as unknown as typeof globalThis.WebSocket,
    disableBc: true,
    maxBackoffTime: 500,
  });
}

describe('refused upgrades', () => {
  it('a burst of unauthenticated upgrades that never answer the close does not lock out real clients', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, MAX_CONNECTIONS: '20', MAX_UNAUTHENTICATED_UPGRADES_PER_MINUTE: '100' });
    // 300 upgrades without a token from 127.0.0.1; the attacker reads but never sends a close frame back.
    const attempts: Array<Promise<RawUpgrade>> = [];
    for (let i = 0; i < 300; i++) attempts.push(rawUpgrade(server.port, `/relay/${ROOM}`));

    // Meanwhile two real clients on 127.0.0.2 connect and sync.
    const token = await testToken('u1', [ROOM]);
    const [docA, docB] = [new Y.Doc(), new Y.Doc()];
    const [a, b] = [clientFrom('127.0.0.2', server.wsUrl, docA, token), clientFrom('127.0.0.2', server.wsUrl, docB, token)];
    scope.track(a, b, docA, docB);

    const answered = await Promise.all(attempts);
    for (const u of answered) scope.track({ close: () => u.socket.destroy() });
    const accepted = answered.filter((u) => u.status === 101);
    const limited = answered.filter((u) => u.status === 429);
    // The address's budget (plus what refills during the test) is all it gets; the rest never became WebSockets.
    expect(accepted.length).toBeGreaterThanOrEqual(100);
    expect(accepted.length).toBeLessThanOrEqual(110);
    expect(limited.length).toBe(300 - accepted.length);

    await Promise.all([synced(a), synced(b)]);
    docA.getText('text').insert(0, 'still served');
    await docUntil(docB, () => textOf(docB) === 'still served');

    // Every accepted attacker socket got 4401 and was cut off without waiting for its close frame.
    await withTimeout(Promise.all(accepted.map((u) => u.ended)), 5000, 'refused sockets to be ended');
    expect(accepted.map((u) => closeCodeIn(u.received())).filter((c) => c !== 4401)).toEqual([]);
    // The server side sees each close a moment after the client side: wait for those still closing.
    const closing = [...server.app.sync.admission.sockets].filter((ws) => ws.readyState !== ws.OPEN);
    await withTimeout(Promise.all(closing.map((ws) => once(ws, 'close'))), 5000, 'server-side closes');
    expect(server.app.sync.admission.sockets.size).toBe(2);
    expect(server.app.sync.admission.count).toBe(2);
    expect(await metric(server.url, 'sync_rejected_messages_total', { reason: 'too_many_connections' })).toBe(0);
    expect(await metric(server.url, 'sync_rejected_messages_total', { reason: 'too_many_upgrades' })).toBe(limited.length);
  });

  it('admitted clients give their upgrade back: an address with many valid clients is never limited', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, MAX_UNAUTHENTICATED_UPGRADES_PER_MINUTE: '5' });
    const token = await testToken('u1', [ROOM]);
    const clients: RawUpgrade[] = [];
    for (let i = 0; i < 20; i++) {
      const u = await rawUpgrade(server.port, `/relay/${ROOM}?token=${token}`);
      scope.track({ close: () => u.socket.destroy() });
      expect(u.status).toBe(101);
      clients.push(u);
      // wait until the server has verified the token (it then sends sync step 1)
      await withTimeout(
        new Promise<void>((resolve) => {
          const check = () => (u.received().length > 0 ? resolve() : u.socket.once('data', check));
          check();
        }),
        5000,
        'sync step 1',
      );
    }
    expect(server.app.sync.admission.count).toBe(20);
  });
});

describe('per-address budget behind a proxy', () => {
  it('with TRUST_PROXY, each X-Forwarded-For address has its own budget', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, TRUST_PROXY: 'true', MAX_UNAUTHENTICATED_UPGRADES_PER_MINUTE: '2' });
    const from = async (address: string): Promise<number> => {
      const headers = `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-Forwarded-For: ${address}\r\n`;
      const u = await rawUpgrade(server.port, `/relay/${ROOM}`, { headers });
      scope.track({ close: () => u.socket.destroy() });
      return u.status;
    };
    expect([await from('203.0.113.7'), await from('203.0.113.7'), await from('203.0.113.7')]).toEqual([101, 101, 429]);
    expect(await from('203.0.113.8')).toBe(101);
    // IPv6 addresses count per /64
    expect([await from('2001:db8:1:2::1'), await from('2001:db8:1:2:ffff::9'), await from('2001:db8:1:2::3')]).toEqual([101, 101, 429]);
    expect(await from('2001:db8:1:3::1')).toBe(101);
  });
});

describe('HTTP timeouts', () => {
  it('cuts off requests whose headers never finish, and leaves open WebSockets alone', async () => {
    const server = await scope.start({ HTTP_HEADERS_TIMEOUT_MS: '300', HTTP_REQUEST_TIMEOUT_MS: '600' });
    const ws = await rawUpgrade(server.port, '/signal');
    scope.track({ close: () => ws.socket.destroy() });
    expect(ws.status).toBe(101);
    // Two half-sent requests one after the other: by the time the second is cut off, the
    // WebSocket is older than HTTP_REQUEST_TIMEOUT_MS and Node's timeout check has run.
    for (let i = 0; i < 2; i++) {
      const socket = connect({ port: server.port, host: '127.0.0.1' });
      socket.on('error', () => undefined);
      scope.track({ close: () => socket.destroy() });
      await withTimeout(once(socket, 'connect'), 5000, 'connect');
      let answer = '';
      socket.on('data', (d: Buffer) => (answer += d.toString()));
      socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
      await withTimeout(once(socket, 'close'), 5000, 'the server to close a half-sent request');
      expect(answer).toMatch(/^HTTP\/1\.1 408/);
    }
    // A complete request still works, and so does the WebSocket.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    ws.socket.write(frame(1, '{"type":"ping"}'));
    await withTimeout(once(ws.socket, 'data'), 5000, 'pong');
    expect(ws.received().toString()).toContain('"pong"');
  });
});

describe('/signal frame limit', () => {
  it('closes 1009 on the length header of an oversized frame, before any payload arrives', async () => {
    const server = await scope.start({ SIGNALING_MAX_MESSAGE_BYTES: '1024' });
    const u = await rawUpgrade(server.port, '/signal');
    scope.track({ close: () => u.socket.destroy() });
    expect(u.status).toBe(101);
    // A text frame announcing 5 MiB (below RELAY_MAX_MESSAGE_BYTES, the WebSocket server's
    // own limit), of which nothing is sent: only ws's per-socket limit can refuse it now.
    u.socket.write(frame(1, '', { announcedLength: 5 * 1024 * 1024 }));
    await withTimeout(u.ended, 5000, 'the server to end the socket');
    expect(closeCodeIn(u.received())).toBe(1009);
    expect(await metric(server.url, 'sync_rejected_messages_total', { endpoint: 'signal', reason: 'too_big' })).toBe(1);
  });
});
