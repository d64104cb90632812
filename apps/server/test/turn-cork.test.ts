/** TurnCork: the frames sent to one socket in one turn leave together, in order, after the turn. */
import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { TurnCork } from '../src/ws/turn-cork.js';

let wss: WebSocketServer | undefined;
afterEach(async () => {
  for (const c of wss?.clients ?? []) c.terminate();
  await new Promise((r) => wss?.close(r));
  wss = undefined;
});

describe('TurnCork', () => {
  it('holds a turn of frames in the socket, then sends them all in order', async () => {
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(wss, 'listening');
    const serverSide = once(wss, 'connection') as Promise<[WebSocket]>;
    const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
    await once(client, 'open');
    const [ws] = await serverSide;
    const received: string[] = [];
    const all = new Promise<void>((done) => client.on('message', (d) => received.push(String(d)) === 3 && done()));

    const tcp = (ws as unknown as { _socket: Socket })._socket;
    const corks = new TurnCork();
    for (const text of ['a', 'b', 'c']) {
      corks.cork(ws);
      ws.send(text);
    }
    // Still in this turn: nothing has been written, the three frames wait in the socket.
    expect(tcp.writableCorked).toBe(1);
    expect(tcp.writableLength).toBeGreaterThan(0);
    await all;
    expect(received).toEqual(['a', 'b', 'c']);
    expect(tcp.writableCorked).toBe(0);
    client.terminate();
  });
});
