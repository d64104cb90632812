/**
 * Shutdown phases in-process: order, failure isolation, readiness during drain, 1012 to open
 * sockets, and what a socket was sent in the turn the sockets close goes out before the 1012
 * (on /sealed: a presence; an update is acknowledged and fanned out only after its commit; an
 * update read once the drain began is refused, and stored once when the device sends it again).
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { encodeRelayMessage, writeRelayUpdate } from '@sync-suite/shared';
import { Lifecycle } from '../src/lifecycle/shutdown.js';
import { SqliteSealedStore } from '../src/sealed/store/sqlite.js';
import { serverPerTest, type TestServer } from '../../../test/helpers/server.js';
import { withTimeout } from '../../../test/helpers/timeout.js';
import { connectRawClient } from '../../../test/fixtures/relay-clients.js';
import { fakeEnvelope, RawSealed } from '../../../test/fixtures/sealed-raw.js';
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
  /** Two /sealed clients of one room, both caught up. */
  async function sealedPair(): Promise<[RawSealed, RawSealed]> {
    const pair: RawSealed[] = [];
    for (let i = 0; i < 2; i++) {
      const c = await RawSealed.connect(scope.current.wsUrl, `/sealed/${ROOM}`);
      scope.track(c);
      c.hello(0);
      await c.next('caught-up');
      pair.push(c);
    }
    return pair as [RawSealed, RawSealed];
  }

  // Sealed output goes after the storage commit (sealed/registry.ts committed): of what a client
  // sends, only a presence is forwarded in the turn it is read (sealed/room.ts setPresence).
  it('/sealed: a presence forwarded in the turn the sockets close arrives before the 1012', async () => {
    const server = await scope.start();
    const [sender, receiver] = await sealedPair();
    const envelope = fakeEnvelope([1, 2, 3]);
    const sameTurn = await shutDownInTurnOfNextMessage(server, () => sender.presence(envelope));
    expect(sameTurn).toBe(true);
    const code = await receiver.closed(); // after every message the client read
    const presences = receiver.messages.filter((m) => m.type === 'presence').map((m) => (m as { envelope: Uint8Array }).envelope);
    expect({ code, presences }).toEqual({ code: 1012, presences: [envelope] });
  });

  // An update read before the shutdown but not yet committed (a long commit window): the drain
  // phase commits it (sealed/registry.ts drain), so its ack and its entry go out before the 1012,
  // never an ack for an entry that is then lost, nor an entry the sender is not told of.
  it('/sealed: an update accepted before the shutdown is committed, acknowledged and fanned out before the 1012', async () => {
    const server = await scope.start({ PERSIST_FLUSH_MS: '60000' });
    const [sender, receiver] = await sealedPair();
    const envelope = fakeEnvelope([4, 5, 6]);
    let read: () => void = () => undefined;
    const readByServer = new Promise<void>((resolve) => (read = resolve));
    for (const socket of server.app.sync.admission.sockets) socket.once('message', () => read());
    sender.update(41, envelope);
    await withTimeout(readByServer, 5000, 'the update at the server');
    expect(sender.messages.filter((m) => m.type === 'ack')).toEqual([]); // not committed yet: the window is open
    await server.close();
    const [senderCode, receiverCode] = await Promise.all([sender.closed(), receiver.closed()]);
    expect({
      senderCode,
      acks: sender.messages.filter((m) => m.type === 'ack'),
      receiverCode,
      entries: receiver.messages.filter((m) => m.type === 'entry'),
    }).toEqual({ senderCode: 1012, acks: [{ type: 'ack', id: 41, seq: 1 }], receiverCode: 1012, entries: [{ type: 'entry', seq: 1, envelope }] });
  });

  // An update read after the drain phase closed the commit queue (sealed/registry.ts drain):
  // nothing would commit it before the store is released, so it is refused (never held in the
  // closed queue, never acked); the device still holds it and sends it again after reconnecting
  // (PROTOCOL-sealed.md), and it is stored exactly once.
  it('/sealed: an update read during the drain is refused, not acked; sent again after a restart it is stored once', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sealed-late-'));
    try {
      const storage = { STORAGE: 'sqlite', DATA_DIR: dataDir };
      const server = await scope.start({ ...storage, PERSIST_FLUSH_MS: '600000' });
      const [sender, receiver] = await sealedPair();
      const envelope = fakeEnvelope([7, 8, 9]);
      let read: () => void = () => undefined;
      const readByServer = new Promise<void>((resolve) => (read = resolve));
      for (const socket of server.app.sync.admission.sockets) socket.once('message', () => read());
      const { lifecycle, metrics } = server.app.sync;
      const sealedRooms = server.app.sealedRooms;
      let heldAfterRead = -1;
      // Registered after the sealed drain hook, which has closed the queue by the time this runs.
      lifecycle.on('drain', async () => {
        sender.update(7, envelope);
        await withTimeout(readByServer, 5000, 'the late update at the server');
        heldAfterRead = sealedRooms.queue.size;
      });
      await server.close();
      const [senderCode, receiverCode] = await Promise.all([sender.closed(), receiver.closed()]);
      const refused = (await metrics.rejectedMessages.get()).values.find((v) => v.labels['reason'] === 'shutting_down')?.value ?? 0;
      expect({
        heldAfterRead,
        refused,
        senderCode,
        acks: sender.messages.filter((m) => m.type === 'ack'),
        receiverCode,
        entries: receiver.messages.filter((m) => m.type === 'entry'),
      }).toEqual({ heldAfterRead: 0, refused: 1, senderCode: 1012, acks: [], receiverCode: 1012, entries: [] });

      // Same storage: the device reconnects and sends its unacked update again (raw protocol).
      await scope.start(storage);
      const again = await RawSealed.connect(scope.current.wsUrl, `/sealed/${ROOM}`);
      scope.track(again);
      again.hello(0);
      expect(await again.next('caught-up')).toEqual({ type: 'caught-up', seq: 0 });
      again.update(1, envelope);
      expect(await again.next('ack')).toEqual({ type: 'ack', id: 1, seq: 1 });
      await scope.current.close();
      const store = new SqliteSealedStore(dataDir);
      await store.init();
      try {
        expect((await store.read(ROOM, 0)).entries).toEqual([{ seq: 1, envelope }]);
      } finally {
        await store.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
