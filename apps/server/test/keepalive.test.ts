/**
 * The one liveness mechanism of /signal and /relay, on real sockets: a peer that answers pings
 * stays, one that does not is terminated after one missed interval, a frame received counts as
 * an answer (keepalive reads the socket's received bytes), and so does touch().
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
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
  return { keepalive, connect };
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
});
