/**
 * The one liveness mechanism of /signal and /relay, on real sockets: a peer that answers pings
 * stays, one that does not is terminated after one missed interval, a frame received counts as
 * an answer (keepalive reads the socket's received bytes), and so does touch().
 */
import { once } from 'node:events';
import { connect as tcpConnect, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { Keepalive } from '../src/ws/keepalive.js';
import { withTimeout } from '../../../test/helpers/timeout.js';

const closers: Array<() => void> = [];
afterEach(() => {
  for (const close of closers.splice(0).reverse()) close();
});

async function setup(intervalMs: number) {
  const keepalive = new Keepalive(intervalMs);
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  closers.push(() => wss.close(), () => keepalive.stop());
  await once(wss, 'listening');
  const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  const connect = async (autoPong: boolean) => {
    const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
    const client = new WebSocket(url, { autoPong });
    closers.push(() => client.terminate());
    await once(client, 'open');
    const [server] = await accepted;
    return { client, server };
  };
  return { keepalive, connect, wss, port: (wss.address() as AddressInfo).port };
}

describe('Keepalive', () => {
  it('terminates a socket that misses its pong and keeps one that answers', async () => {
    const { keepalive, connect } = await setup(50);
    const live = await connect(true);
    const dead = await connect(false);
    keepalive.watch(live.server);
    keepalive.watch(dead.server);
    let pings = 0;
    live.client.on('ping', () => pings++);
    const [code] = (await withTimeout(once(dead.client, 'close'), 5000, 'dead socket closed')) as [number];
    expect(code).toBe(1006);
    expect(live.server.readyState).toBe(WebSocket.OPEN);
    expect(pings).toBeGreaterThanOrEqual(1);
  });

  it('counts a frame received as an answer, without a pong', async () => {
    const { keepalive, connect } = await setup(50);
    const talker = await connect(false);
    const silent = await connect(false);
    keepalive.watch(talker.server);
    keepalive.watch(silent.server);
    // The talker sends a frame on every ping and never answers one with a pong.
    talker.client.on('ping', () => talker.client.send('x'));
    await withTimeout(once(silent.client, 'close'), 5000, 'silent socket closed');
    await withTimeout(once(talker.client, 'ping'), 5000, 'ping');
    await withTimeout(once(talker.client, 'ping'), 5000, 'ping');
    expect(talker.server.readyState).toBe(WebSocket.OPEN);
  });

  it('counts touch() as an answer for that interval', async () => {
    const { keepalive, connect } = await setup(50);
    const busy = await connect(false);
    const silent = await connect(false);
    keepalive.watch(busy.server);
    keepalive.watch(silent.server);
    // The busy peer "sends" on every ping, never answering it with a pong.
    busy.client.on('ping', () => keepalive.touch(busy.server));
    keepalive.touch(busy.server);
    await withTimeout(once(silent.client, 'close'), 5000, 'silent socket closed');
    // Two more intervals: the busy one is still there.
    await withTimeout(once(busy.client, 'ping'), 5000, 'ping');
    await withTimeout(once(busy.client, 'ping'), 5000, 'ping');
    expect(busy.server.readyState).toBe(WebSocket.OPEN);
  });

  // The sweep trims each idle socket's read queue shortly after its pings (ws/keepalive.ts): a
  // frame whose first bytes were read before that and the rest after still arrives whole.
  it('a frame split across the read-queue trim arrives whole', async () => {
    const { keepalive, wss, port } = await setup(50);
    const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
    const raw = tcpConnect(port, '127.0.0.1');
    closers.push(() => raw.destroy());
    await once(raw, 'connect');
    raw.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    const [server] = await withTimeout(accepted, 5000, 'upgrade');
    keepalive.watch(server);
    const got = once(server, 'message') as Promise<[Buffer]>;
    // A masked text frame "hello"; its first three bytes now (header, one byte of the mask).
    const mask = [1, 2, 3, 4];
    const frame = Buffer.from([0x81, 0x85, ...mask, ...Buffer.from('hello').map((b, i) => b ^ (mask[i % 4] as number))]);
    raw.write(frame.subarray(0, 3));
    // Two pings (0x89 0x00; the 101 response has no 0x89 byte): the trim after the first has run.
    let pings = 0;
    const twoPings = new Promise<void>((resolve) =>
      raw.on('data', (chunk: Buffer) => {
        for (const b of chunk) if (b === 0x89) pings++;
        keepalive.touch(server); // this peer answers no ping
        if (pings >= 2) resolve();
      }),
    );
    await withTimeout(twoPings, 5000, 'two pings');
    raw.write(frame.subarray(3));
    const [data] = await withTimeout(got, 5000, 'message');
    expect(data.toString()).toBe('hello');
  });
});
