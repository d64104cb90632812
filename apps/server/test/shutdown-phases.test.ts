/**
 * Shutdown phases in-process: order, failure isolation, readiness during drain, 1012 to open
 * sockets, and what a socket was sent in the turn the sockets close goes out before the 1012.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { encodeRelayMessage, writeRelayUpdate } from '@sync-suite/shared';
import { Lifecycle } from '../src/lifecycle/shutdown.js';
import { serverPerTest, type TestServer } from '../../../test/helpers/server.js';
import { withTimeout } from '../../../test/helpers/timeout.js';
import { connectRawClient } from '../../../test/fixtures/relay-clients.js';
import { openRawClient, publishesReceived } from './signaling-client.js';

const scope = serverPerTest();
afterEach(() => scope.close());

describe('Lifecycle', () => {
  it('runs drain, sockets, release in order, once', async () => {
    const lifecycle = new Lifecycle();
    const order: string[] = [];
    lifecycle.on('release', () => void order.push('release'));
    lifecycle.on('sockets', () => void order.push('sockets'));
    lifecycle.on('drain', async () => {
      await Promise.resolve();
      order.push('drain');
    });
    const errors: unknown[] = [];
    const first = lifecycle.shutdown((_phase, err) => errors.push(err));
    const second = lifecycle.shutdown((_phase, err) => errors.push(err));
    expect(second).toBe(first);
    await first;
    expect(order).toEqual(['drain', 'sockets', 'release']);
    expect(errors).toEqual([]);
    expect(lifecycle.shuttingDown).toBe(true);
  });

  it('reports a failing hook (sync throw or rejection) and still runs the later phases', async () => {
    const lifecycle = new Lifecycle();
    const ran: string[] = [];
    lifecycle.on('drain', () => {
      throw new Error('sync failure');
    });
    lifecycle.on('drain', () => Promise.reject(new Error('async failure')));
    lifecycle.on('drain', () => void ran.push('other drain hook'));
    lifecycle.on('release', () => void ran.push('release'));
    const errors: Array<[string, string]> = [];
    await lifecycle.shutdown((phase, err) => errors.push([phase, (err as Error).message]));
    expect(errors).toEqual([
      ['drain', 'sync failure'],
      ['drain', 'async failure'],
    ]);
    expect(ran).toEqual(['other drain hook', 'release']);
  });
});

describe('server close()', () => {
  it('answers /readyz 503 during drain and closes WebSockets with 1012 after it', async () => {
    const server = await scope.start();
    const { app, url, wsUrl } = server;
    const ws = new WebSocket(`${wsUrl}/signal`);
    await once(ws, 'open');
    const closeCode = once(ws, 'close').then(([code]) => code as number);

    // Observe from inside the drain phase: sockets must still be open, readiness must be 503.
    let duringDrain: { status: number; body: unknown; socketOpen: boolean } | undefined;
    app.sync.lifecycle.on('drain', async () => {
      const res = await fetch(`${url}/readyz`);
      duringDrain = { status: res.status, body: await res.json(), socketOpen: ws.readyState === WebSocket.OPEN };
    });
    await server.close();
    expect(duringDrain).toEqual({
      status: 503,
      body: { status: 'unavailable', checks: expect.objectContaining({ shutdown: 'shutting down' }) as unknown },
      socketOpen: true,
    });
    expect(await closeCode).toBe(1012);
  });
});

/**
 * Shuts `server` down so that its sockets phase (1012 to every socket) runs in the very turn the
 * server reads the next message from a client, which `send` sends once the drain phase is under
 * way: the last drain hook waits for that message, and the phases after it run in that turn's
 * microtasks, before the turn's end-of-turn flush (ws/turn-output.ts). Resolves, once the server
 * is closed, with whether the sockets phase did run in that turn (checked, not assumed).
 */
async function shutDownInTurnOfNextMessage(server: TestServer, send: () => void): Promise<boolean> {
  const { lifecycle } = server.app.sync;
  let inTurn = false;
  let read: () => void = () => undefined;
  const readTurn = new Promise<void>((resolve) => (read = resolve));
  // Added after each connection's own 'message' listener: runs once the message is handled.
  for (const socket of server.app.sync.admission.sockets) {
    socket.once('message', () => {
      inTurn = true;
      setImmediate(() => (inTurn = false));
      read();
    });
  }
  lifecycle.on('drain', () => {
    send();
    return withTimeout(readTurn, 5000, 'the message at the server');
  });
  let sameTurn = false;
  lifecycle.on('sockets', () => void (sameTurn = inTurn)); // after app.ts's hook has closed every socket
  await server.close();
  return sameTurn;
}

describe('shutdown: output of the closing turn', () => {
  const ROOM = 'test-conversation-shutdown';

  it('/signal: a publish fanned out in the turn the sockets close arrives before the 1012', async () => {
    const server = await scope.start();
    const sender = await openRawClient(scope);
    const receiver = await openRawClient(scope);
    receiver.send({ type: 'subscribe', topics: [ROOM] });
    await receiver.roundTrip();
    const sameTurn = await shutDownInTurnOfNextMessage(server, () => sender.send({ type: 'publish', topic: ROOM, data: 'last words' }));
    expect(sameTurn).toBe(true);
    // 'close' comes after every message the client read: whatever it holds came before the close frame.
    const closed = await receiver.closedWithin();
    expect({ code: closed.code, publishes: publishesReceived(receiver).map((m) => m['data']) }).toEqual({ code: 1012, publishes: ['last words'] });
  });

  it('/relay: an update fanned out in the turn the sockets close arrives before the 1012', async () => {
    const server = await scope.start();
    const sender = await connectRawClient(scope, `/relay/${ROOM}`);
    const receiver = await connectRawClient(scope, `/relay/${ROOM}`);
    await sender.next((m) => m.type === 'sync-step1');
    await receiver.next((m) => m.type === 'sync-step1');
    const doc = new Y.Doc();
    doc.getText('text').insert(0, 'last words');
    const update = Y.encodeStateAsUpdate(doc);
    const sameTurn = await shutDownInTurnOfNextMessage(server, () => sender.send(encodeRelayMessage((e) => writeRelayUpdate(e, update))));
    expect(sameTurn).toBe(true);
    const code = await receiver.closed();
    const updates = receiver.messages.filter((m) => m.type === 'update') as Array<{ update: Uint8Array }>;
    const received = new Y.Doc();
    for (const u of updates) Y.applyUpdate(received, u.update);
    expect({ code, text: received.getText('text').toString() }).toEqual({ code: 1012, text: 'last words' });
  });
});
