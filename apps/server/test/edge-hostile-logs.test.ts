/**
 * No client can make the server log at error level or print a stack trace: a battery of
 * malformed input at every layer (TCP, HTTP, upgrade, WebSocket framing, protocol), on
 * authenticated and unauthenticated sockets, with the server logging at debug. Secrets in
 * query parameters stay out of the log however they are spelled.
 */
import { once } from 'node:events';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { serverPerTest, TEST_SECRET, testToken } from '../../../test/helpers/server.js';
import { frame, rawUpgrade } from '../../../test/helpers/raw-ws.js';
import { withTimeout } from '../../../test/helpers/timeout.js';
import { metricValue } from './signaling-client.js';

const ROOM = 'acme-conversation-hostile';
const LEAK = 'do-not-log-this-value-4711';
const scope = serverPerTest();
afterEach(() => scope.close());

const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);

/** WebSocket frames no correct client sends. */
const BAD_FRAMES: Array<[string, Buffer]> = [
  ['RSV bits set', frame(1, '{"type":"ping"}', { rsv: 4 })],
  ['reserved opcode', frame(3, 'x')],
  ['unmasked client frame', frame(2, 'x', { mask: false })],
  ['invalid UTF-8 in a text frame', frame(1, Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))],
  ['close code 1005 on the wire', frame(8, u16(1005))],
  ['close code 999', frame(8, u16(999))],
  ['close reason with invalid UTF-8', frame(8, Buffer.concat([u16(1000), Buffer.from([0xc3, 0x28])]))],
  ['one-byte close payload', frame(8, Buffer.from([3]))],
  ['fragmented ping', frame(9, 'x', { fin: false })],
  ['continuation without a start', frame(0, 'x')],
  ['payload length above 2^53', Buffer.from([0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4])],
  ['frame over the endpoint limit', frame(2, '', { announcedLength: 50 * 1024 * 1024 })],
];

async function sendOnUpgrade(port: number, path: string, bytes: Buffer): Promise<void> {
  const u = await rawUpgrade(port, path);
  scope.track({ close: () => u.socket.destroy() });
  if (u.status !== 101) return;
  u.socket.write(bytes);
  await withTimeout(u.ended, 5000, `server to end ${path}`);
}

async function rawTcp(port: number, bytes: string | Buffer): Promise<string> {
  const socket = connect({ port, host: '127.0.0.1' });
  socket.on('error', () => undefined);
  scope.track({ close: () => socket.destroy() });
  await withTimeout(once(socket, 'connect'), 5000, 'connect');
  let answer = '';
  socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
  socket.write(bytes);
  await withTimeout(once(socket, 'close'), 5000, 'server to close a raw connection');
  return answer;
}

describe('hostile input and the log', () => {
  it('nothing a client sends logs at error level, with a stack trace, or with a secret', async () => {
    const server = await scope.start({
      AUTH_SECRET: TEST_SECRET,
      METRICS_TOKEN: 'metrics-token-123456',
      LOG_LEVEL: 'debug',
      HTTP_HEADERS_TIMEOUT_MS: '300',
      HTTP_REQUEST_TIMEOUT_MS: '600',
      SIGNALING_MAX_MESSAGE_BYTES: '4096',
      RELAY_MAX_MESSAGE_BYTES: '1048576',
    });
    const { port } = server;
    const token = await testToken('u1', [ROOM]);

    // TCP and HTTP
    await rawTcp(port, Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x0d, 0x0a, 0x0d, 0x0a])); // a TLS hello
    expect(await rawTcp(port, 'GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(await rawTcp(port, `GET /healthz?%74oken=${LEAK} HTTP/1.1\r\nHost: x\r\nX-Half: `)).toMatch(/^HTTP\/1\.1 408/);
    expect(await rawTcp(port, 'GET / HTTP/1.1\r\n' + `X-Big: ${'a'.repeat(20000)}\r\n`.repeat(4) + '\r\n')).toMatch(/^HTTP\/1\.1 431/);
    expect((await fetch(`${server.url}/turn-credentials`)).status).toBe(401);
    expect((await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(`${server.url}/nope?%74oken=${LEAK}&TOKEN=${LEAK}`)).status).toBe(404);
    expect((await fetch(`${server.url}/healthz`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' })).status).toBeGreaterThanOrEqual(400);

    // Upgrades the WebSocket server refuses
    const key = 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
    for (const headers of [`${key}Sec-WebSocket-Version: 99\r\n`, 'Sec-WebSocket-Version: 13\r\n', `${key}Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: a b,,\r\n`]) {
      const u = await rawUpgrade(port, '/signal', { headers });
      scope.track({ close: () => u.socket.destroy() });
      expect(u.status).toBe(400);
    }
    const notFound = await rawUpgrade(port, `/nope?%74oken=${LEAK}`);
    scope.track({ close: () => notFound.socket.destroy() });

    // Bad frames on unauthenticated and authenticated sockets of both endpoints
    const paths = ['/signal', `/signal?%74oken=${LEAK}`, `/signal?token=${token}`, `/relay/${ROOM}`, `/relay/${ROOM}?TOKEN=${LEAK}`, `/relay/${ROOM}?token=${token}`];
    for (const path of paths) for (const [, bytes] of BAD_FRAMES) await sendOnUpgrade(port, path, bytes);

    // Protocol garbage on authenticated sockets
    for (const text of ['{nope', 'null', '{"type":"subscribe","topics":"x"}', '\u0000'.repeat(10)]) {
      await sendOnUpgrade(port, `/signal?token=${token}`, frame(1, text));
    }
    for (const bytes of [[0, 9, 1, 2], [255, 255, 255, 255, 255, 255], [1, 200], [0, 0, 5, 1, 2]]) {
      await sendOnUpgrade(port, `/relay/${ROOM}?token=${token}`, frame(2, Buffer.from(bytes)));
    }

    expect(await metricValue(server, 'clientErrors')).toBeGreaterThan(20);
    const errors = server.logs.filter((l) => Number(l['level']) >= 50);
    expect(errors).toEqual([]);
    const withStack = server.logs.filter((l) => /\n\s+at /.test(JSON.stringify(l)) || /"stack"/.test(JSON.stringify(l)));
    expect(withStack).toEqual([]);
    expect(server.logs.filter((l) => JSON.stringify(l).includes(LEAK))).toEqual([]);
    expect(server.logs.filter((l) => JSON.stringify(l).includes(token))).toEqual([]);
    // the battery did reach the server: its debug lines are there
    expect(server.logs.some((l) => l['msg'] === 'websocket error')).toBe(true);
    expect(server.logs.some((l) => l['msg'] === 'http client error')).toBe(true);
  }, 120_000);
});
