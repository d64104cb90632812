/**
 * Relay flow control: frames that arrive while a room loads wait for the load and are answered
 * from the loaded document; a receiver that stops reading is dropped (slow_consumer) while the
 * room and its other connections carry on.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { WebSocket as ServerSocket } from 'ws';
import * as Y from 'yjs';
import { encodeRelayMessage, writeRelaySyncStep1, writeRelayUpdate } from '@sync-suite/shared';
import type { StoredRoom } from '../src/relay/persistence/types.js';
import { serverPerTest, type TestServer } from '../../../test/helpers/server.js';
import { withTimeout } from '../../../test/helpers/timeout.js';
import { joinedRawClient, metric, RawClient } from '../../../test/fixtures/relay-clients.js';
import { captureUpdate } from '../../../test/helpers/capture-update.js';

const ROOM = 'acme-conversation-flow';
const scope = serverPerTest();
afterEach(() => scope.close());

const textUpdate = (text: string, clientID: number): Uint8Array => {
  const d = new Y.Doc();
  d.clientID = clientID;
  d.getText('text').insert(0, text);
  return Y.encodeStateAsUpdate(d);
};

/** Holds the real engine's load() open until release(); entered resolves when a load starts. */
function holdLoads(s: TestServer): { entered: Promise<string>; release: () => void } {
  const store = s.app.relayRooms.store;
  if (!store) throw new Error('relay registry not found');
  const load = store.load.bind(store);
  let enter: (room: string) => void = () => undefined;
  let release: () => void = () => undefined;
  const entered = new Promise<string>((r) => (enter = r));
  const released = new Promise<void>((r) => (release = r));
  store.load = async (room: string): Promise<StoredRoom> => {
    enter(room);
    await released;
    return load(room);
  };
  return { entered, release };
}

/** The server side of the only relay socket open now. */
function onlyServerSocket(s: TestServer): ServerSocket {
  const sockets = [...s.app.sync.admission.sockets];
  expect(sockets).toHaveLength(1);
  return sockets[0] as ServerSocket;
}

describe('relay: frames sent while the room loads', () => {
  it('are queued, then answered from the loaded document, in order', async () => {
    const server = await scope.start();
    const registry = server.app.relayRooms;
    await registry?.store.append([{ room: ROOM, updates: [textUpdate('stored before', 1)] }]);
    const gate = holdLoads(server);

    // Frames are sent the moment the socket opens, while the server is still loading the room.
    const client = RawClient.start(`${server.wsUrl}/relay/${ROOM}`);
    scope.track(client);
    const fresh = textUpdate('sent during load', 2);
    client.ws.once('open', () => {
      client.send(encodeRelayMessage((e) => writeRelaySyncStep1(e, Y.encodeStateVector(new Y.Doc()))));
      client.send(encodeRelayMessage((e) => writeRelayUpdate(e, fresh)));
    });

    expect(await withTimeout(gate.entered, 5000, 'room load')).toBe(ROOM);
    // The load started within the upgrade's own turn; the frames can only be read after it.
    const serverSide = onlyServerSocket(server);
    let arrived = 0;
    const both = new Promise<void>((resolve) => serverSide.on('message', () => ++arrived === 2 && resolve()));
    await withTimeout(both, 5000, 'both frames at the server');
    // Nothing is answered before the load: no step 1, and above all no step 2 from an empty document.
    expect(client.messages).toEqual([]);
    expect(registry?.rooms.has(ROOM)).toBe(false);

    gate.release();
    await client.next((m) => m.type === 'sync-step1', 5000, 'the room\'s step 1');
    const whole = await client.handled();
    const types = client.messages.map((m) => m.type);
    // Answered in order: the step 2 (from the stored bytes: relay/room.ts), then the room's own
    // step 1, which goes out once its document is built: here when the queued update needs it.
    // The update is not sent back to its sender.
    expect(types).toEqual(['sync-step2', 'sync-step1', 'sync-step2']);
    // The first step 2 carries what storage held; the queued update was applied.
    const step2 = client.messages[0] as { update: Uint8Array };
    const fromStep2 = new Y.Doc();
    Y.applyUpdate(fromStep2, step2.update);
    expect(fromStep2.getText('text').toString()).toBe('stored before');
    const fromWhole = new Y.Doc();
    Y.applyUpdate(fromWhole, whole);
    expect(fromWhole.getText('text').toString()).toContain('sent during load');
    const room = registry?.rooms.get(ROOM);
    expect(room?.doc.getText('text').toString()).toMatch(/^(stored before|sent during load){2}$/);
    expect(await metric(server.url, 'sync_relay_updates_total')).toBe(1);
  });
});

describe('relay: a client that keeps sending while the room loads', () => {
  it('stops being read past one message of queued bytes, then is read again and loses nothing', async () => {
    const MAX = 65_536;
    const server = await scope.start({ RELAY_MAX_MESSAGE_BYTES: String(MAX), MAX_MESSAGES_PER_SECOND: '100000' });
    const gate = holdLoads(server);
    const client = RawClient.start(`${server.wsUrl}/relay/${ROOM}`);
    scope.track(client);
    const doc = new Y.Doc();
    const COUNT = 40; // 40 updates of 20 kB: 12 x RELAY_MAX_MESSAGE_BYTES
    client.ws.once('open', () => {
      for (let i = 0; i < COUNT; i++) {
        const update = captureUpdate(doc, () => doc.getText('text').insert(0, String(i % 10).repeat(20_000)));
        client.send(encodeRelayMessage((e) => writeRelayUpdate(e, update)));
      }
    });
    await withTimeout(gate.entered, 5000, 'room load');
    const serverSide = onlyServerSocket(server);
    let arrived = 0;
    serverSide.on('message', () => arrived++);
    await vi.waitFor(() => expect(serverSide.isPaused).toBe(true), { timeout: 5000, interval: 20 });
    // Reading stopped: what ws had already read came in the same turn (one socket read, at most 64 kB
    // past the bound); the rest waits in TCP. Without the bound all 40 frames would be queued.
    expect(arrived).toBeLessThan(12);
    gate.release();
    await vi.waitFor(() => expect(server.app.relayRooms.rooms.get(ROOM)?.doc.getText('text').length).toBe(COUNT * 20_000), { timeout: 10_000, interval: 50 });
    expect(serverSide.isPaused).toBe(false);
    expect(doc.getText('text').toString()).toBe(server.app.relayRooms.rooms.get(ROOM)?.doc.getText('text').toString());
  });
});

describe('relay: a receiver that stops reading', () => {
  it('is terminated and counted as slow_consumer; the room and the writer carry on', async () => {
    // Bound: max(2 x RELAY_MAX_MESSAGE_BYTES, 16 MiB) unsent bytes per receiver.
    const server = await scope.start({ RELAY_MAX_MESSAGE_BYTES: '131072', MAX_MESSAGES_PER_SECOND: '100000' });
    const slow = await RawClient.connect(`${server.wsUrl}/relay/${ROOM}`);
    scope.track(slow);
    await slow.next((m) => m.type === 'sync-step1');
    const slowServerSide = onlyServerSocket(server);
    const slowClosed = once(slowServerSide, 'close');
    // Stop reading: the server's kernel buffers fill, then its unsent bytes grow.
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();

    const writer = await joinedRawClient(scope, `/relay/${ROOM}`);
    const reader = await joinedRawClient(scope, `/relay/${ROOM}`);
    const doc = new Y.Doc();
    // A well-behaved writer: 10 updates of 60 kB, then it waits until a reading member heard them. 40 MB in all.
    const ROUNDS = 70;
    const PER_ROUND = 10;
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < PER_ROUND; i++) {
        const update = captureUpdate(doc, () => doc.getText('text').insert(0, String(i).repeat(60_000)));
        writer.send(encodeRelayMessage((e) => writeRelayUpdate(e, update)));
      }
      await reader.updatesHeard((round + 1) * PER_ROUND, 10_000, `updates of round ${round}`);
    }
    await withTimeout(slowClosed, 20_000, 'slow receiver terminated');
    expect(await metric(server.url, 'sync_rejected_messages_total', { endpoint: 'relay', reason: 'slow_consumer' })).toBe(1);

    // The reader heard every update, the writer is still open, and the room holds all of them.
    expect([writer.closeCode, reader.closeCode]).toEqual([null, null]);
    expect(server.app.relayRooms.rooms.get(ROOM)?.doc.getText('text').length).toBe(ROUNDS * PER_ROUND * 60_000);
    expect(await metric(server.url, 'sync_relay_connections')).toBe(2);
  });
});
