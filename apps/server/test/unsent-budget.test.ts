/**
 * MAX_UNSENT_BYTES_TOTAL: the instance's budget of unsent bytes across every connection
 * (ws/unsent-budget.ts). Receivers that stop reading (their TCP window closes) while a writer in
 * their room sends large updates each hold up to their own allowance unsent; with enough of them
 * the instance would hold that many times over. With the budget, the instance's unsent bytes stay
 * within it: the receivers holding the most are dropped as slow consumers, the writer and a
 * reading member carry on, and the budget's count is back to 0 once all is closed. What is
 * measured is `sync_unsent_bytes`, recounted at the scrape from each receiver's own unsent bytes
 * (ws's bufferedAmount and its turn's output) with a large message written by reference to many
 * receivers counted once, as it is held in memory once: the sum of every socket's bufferedAmount
 * counts it once per receiver, and may pass the budget while the memory held does not.
 * A large update to many readers that read is counted once, and none of them is dropped.
 */
import { once } from 'node:events';
import { afterEach, assert, describe, expect, it } from 'vitest';
import type { WebSocket as ServerSocket } from 'ws';
import * as Y from 'yjs';
import { encodeRelayMessage, writeRelayUpdate } from '@sync-suite/shared';
import { serverPerTest, type TestServer } from '../../../test/helpers/server.js';
import { withTimeout } from '../../../test/helpers/timeout.js';
import { joinedRawClient, metric, RawClient } from '../../../test/fixtures/relay-clients.js';
import { captureUpdate } from '../../../test/helpers/capture-update.js';
import { openRawClient } from './signaling-client.js';
import { fakeEnvelope, RawSealed } from '../../../test/fixtures/sealed-raw.js';

const ROOM = 'acme-conversation-unsent';
const BUDGET = 4 * 1024 * 1024;
const STALLED = 4;
const scope = serverPerTest();
afterEach(() => scope.close());

/**
 * What the instance holds unsent now, recounted (the scrape recounts every charged receiver
 * before reading): each receiver's own bytes, and each large message held by reference once.
 */
function unsentNow(server: TestServer): Promise<number> {
  return metric(server.url, 'sync_unsent_bytes');
}

/** Runs `open`, and returns the server side of the one socket it opened. */
async function serverSideOf<T>(server: TestServer, open: () => Promise<T>): Promise<[T, ServerSocket]> {
  const before = new Set(serverSockets(server));
  const opened = await open();
  const fresh = serverSockets(server).filter((ws) => !before.has(ws));
  expect(fresh).toHaveLength(1);
  return [opened, fresh[0] as ServerSocket];
}

/** The server side of each socket open now. */
function serverSockets(server: TestServer): ServerSocket[] {
  return [...server.app.sync.admission.sockets] as ServerSocket[];
}

/** The TCP socket under a client's WebSocket, to stop and resume reading. */
function tcpOf(c: RawClient): { pause(): void; resume(): void } {
  return (c.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
}

/** The instance's budget (ws/unsent-budget.ts). */
function budgetOf(server: TestServer): { bytes: number; sharedBytes: number; holding: number } {
  return (server.app.sync as unknown as { unsent: { bytes: number; sharedBytes: number; holding: number } }).unsent;
}

/** The budget's own running count (not recounted), as the instance keeps it. */
function counted(server: TestServer): number {
  return budgetOf(server).bytes;
}

/**
 * After one large message went to receivers that all read: none of them was dropped as a slow
 * consumer on `endpoint`, the message's holds ended once the kernel took it for every receiver
 * (no leak), and once every socket is closed the budget's count is 0.
 */
async function expectHeldOnceThenClosed(server: TestServer, endpoint: 'relay' | 'signal' | 'sealed', clients: Array<{ close(): unknown }>): Promise<void> {
  expect(await metric(server.url, 'sync_rejected_messages_total', { endpoint, reason: 'slow_consumer' })).toBe(0);
  const budget = budgetOf(server);
  for (let i = 0; i < 100 && budget.holding > 0; i++) await new Promise((r) => setTimeout(r, 20));
  expect([budget.sharedBytes, budget.holding]).toEqual([0, 0]);
  const open = serverSockets(server).map((ws) => once(ws, 'close'));
  for (const c of clients) await c.close();
  await withTimeout(Promise.all(open), 10_000, 'server sockets closed');
  expect(counted(server)).toBe(0);
}

describe('MAX_UNSENT_BYTES_TOTAL', () => {
  it('counts a large update sent by reference to many readers once: none of the readers that read is dropped', async () => {
    // 20 readers of one 1 MB update: 20 MB if each reader were charged the message, one 1 MB
    // bytes object in memory, written by reference to each (relay/ws-frames.ts, COPY_LIMIT).
    const READERS = 20;
    const server = await scope.start({ RELAY_MAX_MESSAGE_BYTES: String(1024 * 1024), MAX_UNSENT_BYTES_TOTAL: String(2 * 1024 * 1024) });
    const readers: RawClient[] = [];
    for (let i = 0; i < READERS; i++) readers.push(await joinedRawClient(scope, `/relay/${ROOM}`));
    const writer = await joinedRawClient(scope, `/relay/${ROOM}`);
    const doc = new Y.Doc();
    const update = captureUpdate(doc, () => doc.getText('text').insert(0, 'x'.repeat(1_000_000)));
    expect(update.length).toBeLessThan(1024 * 1024);
    writer.send(encodeRelayMessage((e) => writeRelayUpdate(e, update)));
    await Promise.all(readers.map((r, i) => r.updatesHeard(1, 10_000, `the update at reader ${i}`).catch(() => undefined)));
    expect(readers.map((r) => r.closeCode)).toEqual(readers.map(() => null));
    expect(readers.map((r) => r.messages.filter((m) => m.type === 'update').length)).toEqual(readers.map(() => 1));
    await expectHeldOnceThenClosed(server, 'relay', [writer, ...readers]);
  }, 60_000);

  it('counts a large /signal publish sent to many subscribers once: none of the subscribers that read is dropped', async () => {
    // 20 subscribers of one 120 kB publish: 2.4 MB if each were charged the frame, one prebuilt
    // frame in memory, written by reference to each (signaling/publish-frame.ts, ws/turn-output.ts).
    const SUBSCRIBERS = 20;
    const server = await scope.start({ SIGNALING_MAX_MESSAGE_BYTES: '131072', RELAY_MAX_MESSAGE_BYTES: '131072', MAX_UNSENT_BYTES_TOTAL: String(1024 * 1024) });
    const subscribers = [];
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const c = await openRawClient(scope);
      c.send({ type: 'subscribe', topics: [ROOM] });
      await c.roundTrip();
      subscribers.push(c);
    }
    const publisher = await openRawClient(scope);
    publisher.send({ type: 'publish', topic: ROOM, data: 'x'.repeat(120_000) });
    await Promise.all(subscribers.map((c, i) => c.find(0, (m) => m['type'] === 'publish', 10_000).catch(() => assert.fail(`the publish at subscriber ${i}`))));
    await expectHeldOnceThenClosed(server, 'signal', [publisher, ...subscribers]);
  }, 60_000);

  it('counts a large /sealed entry sent to many devices once: none of the devices that read is dropped', async () => {
    // 20 devices of one 1 MB envelope: 20 MB if each were charged the entry, one frame in memory
    // built once per entry (sealed/room.ts deliver), written by reference to each.
    const DEVICES = 20;
    const server = await scope.start({ RELAY_MAX_MESSAGE_BYTES: String(1100 * 1024), MAX_UNSENT_BYTES_TOTAL: String(2200 * 1024) });
    const join = async (): Promise<RawSealed> => {
      const c = await RawSealed.connect(server.wsUrl, `/sealed/${ROOM}`);
      c.hello(0);
      await c.next('caught-up');
      return c;
    };
    const devices: RawSealed[] = [];
    for (let i = 0; i < DEVICES; i++) devices.push(await join());
    const writer = await join();
    writer.update(1, fakeEnvelope([1], 1_000_000));
    await writer.next('ack', 0, 10_000);
    await Promise.all(devices.map((c, i) => c.next('entry', 0, 10_000).catch(() => assert.fail(`the entry at device ${i}`))));
    await expectHeldOnceThenClosed(server, 'sealed', [writer, ...devices]);
  }, 60_000);

  it('keeps the unsent bytes of the instance within the budget: stalled receivers are dropped, the room carries on, the count returns to 0', async () => {
    // Each receiver alone may hold max(2 x 128 KiB, 16 MiB) = 16 MiB: four of them, 64 MiB, far over the budget.
    const server = await scope.start({ RELAY_MAX_MESSAGE_BYTES: '131072', MAX_MESSAGES_PER_SECOND: '100000', MAX_UNSENT_BYTES_TOTAL: String(BUDGET) });
    const stalled: RawClient[] = [];
    const stalledServerSide: ServerSocket[] = [];
    for (let i = 0; i < STALLED; i++) {
      const before = new Set(serverSockets(server));
      const c = await RawClient.connect(`${server.wsUrl}/relay/${ROOM}`);
      scope.track(c);
      await c.next((m) => m.type === 'sync-step1');
      stalledServerSide.push(...serverSockets(server).filter((ws) => !before.has(ws)));
      // Stops reading: the kernel buffers fill, then the server's unsent bytes for it grow.
      tcpOf(c).pause();
      stalled.push(c);
    }
    expect(stalledServerSide).toHaveLength(STALLED);
    const stalledClosed = stalledServerSide.map((ws) => once(ws, 'close'));
    const writer = await joinedRawClient(scope, `/relay/${ROOM}`);
    const reader = await joinedRawClient(scope, `/relay/${ROOM}`);

    const doc = new Y.Doc();
    const dropped = (): boolean => stalledServerSide.every((ws) => ws.readyState === ws.CLOSED);
    // Rounds of 10 updates of 60 kB; after each (the reader heard it: the server sent it to every
    // member) the instance's unsent bytes are measured. Without the budget they pass it within a
    // few rounds (stopped there); with it, each stalled receiver is dropped in turn.
    let most = 0;
    const PER_ROUND = 10;
    let rounds = 0;
    for (; rounds < 150 && !dropped() && most <= BUDGET; rounds++) {
      for (let i = 0; i < PER_ROUND; i++) {
        const update = captureUpdate(doc, () => doc.getText('text').insert(0, String(i).repeat(60_000)));
        writer.send(encodeRelayMessage((e) => writeRelayUpdate(e, update)));
      }
      await reader.updatesHeard((rounds + 1) * PER_ROUND, 10_000, `updates of round ${rounds}`);
      most = Math.max(most, await unsentNow(server));
    }
    expect(most, `the instance's unsent bytes after ${rounds} rounds`).toBeLessThanOrEqual(BUDGET);
    await withTimeout(Promise.all(stalledClosed), 10_000, 'stalled receivers dropped');
    // Dropped as a slow consumer is: the socket cut (no close frame: 1006 once the client reads again), counted as such.
    for (const c of stalled) tcpOf(c).resume();
    expect(await Promise.all(stalled.map((c) => c.closed(10_000)))).toEqual(stalled.map(() => 1006));
    expect([writer.closeCode, reader.closeCode]).toEqual([null, null]);
    expect(server.app.relayRooms.rooms.get(ROOM)?.doc.getText('text').length).toBe(rounds * PER_ROUND * 60_000);

    // Everything closed: the budget's count returns to 0 (no leak, no double count). Read before
    // any scrape: a scrape of sync_unsent_bytes recounts, which would hide a close not released.
    const open = serverSockets(server).map((ws) => once(ws, 'close'));
    writer.close();
    reader.close();
    await withTimeout(Promise.all(open), 10_000, 'server sockets closed');
    expect(counted(server)).toBe(0);
    expect(await metric(server.url, 'sync_rejected_messages_total', { endpoint: 'relay', reason: 'slow_consumer' })).toBe(STALLED);
    expect(await metric(server.url, 'sync_unsent_bytes')).toBe(0);
  }, 60_000);

  it('is one budget for every endpoint: relay sends drop a stalled /signal receiver holding the most, below its own allowance', async () => {
    // A /signal receiver may hold 64 x 128 KiB = 8 MiB on its own; the instance, 4 MiB for all.
    const server = await scope.start({
      RELAY_MAX_MESSAGE_BYTES: '131072',
      SIGNALING_MAX_MESSAGE_BYTES: '131072',
      MAX_MESSAGES_PER_SECOND: '100000',
      MAX_UNSENT_BYTES_TOTAL: String(BUDGET),
    });
    const [signalStalled, signalServerSide] = await serverSideOf(server, () => openRawClient(scope));
    signalStalled.send({ type: 'subscribe', topics: [ROOM] });
    await signalStalled.roundTrip();
    (signalStalled.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const signalDropped = once(signalServerSide, 'close');
    const publisher = await openRawClient(scope);
    const frame = JSON.stringify({ type: 'publish', topic: ROOM, data: 'x'.repeat(120_000) });
    // Until the stalled /signal receiver holds half the budget (its kernel buffers full first).
    // Batches of 600 kB: the last one leaves it well under the whole budget.
    for (let batch = 0; batch < 200 && signalServerSide.bufferedAmount <= BUDGET / 2; batch++) {
      for (let i = 0; i < 5; i++) publisher.send(frame);
      await publisher.roundTrip();
    }
    expect(signalServerSide.bufferedAmount).toBeGreaterThan(BUDGET / 2);
    expect(signalServerSide.readyState).toBe(signalServerSide.OPEN);

    // A stalled relay receiver: the writer's updates take the instance over the budget.
    const [relayStalled, relayServerSide] = await serverSideOf(server, () => RawClient.connect(`${server.wsUrl}/relay/${ROOM}`));
    scope.track(relayStalled);
    await relayStalled.next((m) => m.type === 'sync-step1');
    tcpOf(relayStalled).pause();
    const relayDropped = once(relayServerSide, 'close');
    const writer = await joinedRawClient(scope, `/relay/${ROOM}`);
    const reader = await joinedRawClient(scope, `/relay/${ROOM}`);
    const doc = new Y.Doc();
    let most = 0;
    let signalFirst: boolean | null = null;
    const isClosed = (ws: ServerSocket): boolean => ws.readyState === ws.CLOSED;
    for (let round = 0; round < 150 && !isClosed(relayServerSide) && most <= BUDGET; round++) {
      for (let i = 0; i < 10; i++) {
        const update = captureUpdate(doc, () => doc.getText('text').insert(0, String(i).repeat(60_000)));
        writer.send(encodeRelayMessage((e) => writeRelayUpdate(e, update)));
      }
      await reader.updatesHeard((round + 1) * 10, 10_000, `updates of round ${round}`);
      most = Math.max(most, await unsentNow(server));
      if (signalFirst === null && isClosed(signalServerSide)) signalFirst = !isClosed(relayServerSide);
    }
    expect(most).toBeLessThanOrEqual(BUDGET);
    await withTimeout(Promise.all([signalDropped, relayDropped]), 10_000, 'both stalled receivers dropped');
    // The /signal receiver held the most when relay sends took the instance over: it went first.
    expect(signalFirst).toBe(true);
    expect(await metric(server.url, 'sync_rejected_messages_total', { endpoint: 'signal', reason: 'slow_consumer' })).toBe(1);
    expect(await metric(server.url, 'sync_rejected_messages_total', { endpoint: 'relay', reason: 'slow_consumer' })).toBe(1);
    expect([writer.closeCode, reader.closeCode]).toEqual([null, null]);

    const open = serverSockets(server).map((ws) => once(ws, 'close'));
    for (const c of [writer, reader]) c.close();
    for (const c of [publisher, signalStalled]) c.ws.terminate();
    await withTimeout(Promise.all(open), 10_000, 'server sockets closed');
    expect(counted(server)).toBe(0);
  }, 60_000);
});
