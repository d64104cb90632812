/**
 * REDIS_URL with STORAGE=postgres, several in-process servers on the real Redis and PostgreSQL:
 * signaling topics and relay rooms span instances; an instance skips its own messages; a room
 * loading on one instance misses nothing that another committed meanwhile.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { testRedisUrl } from '../../../test/helpers/test-env.js';
import pino from 'pino';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import * as encoding from 'lib0/encoding';
import * as Y from 'yjs';
import { createServerMetrics } from '@sync-suite/shared/node';
import { readRelayMessage } from '@sync-suite/shared';
import { RedisLink } from '../src/fanout/redis-link.js';
import { redisKeys } from '../src/fanout/redis-keys.js';
import { RedisRoomFanout } from '../src/fanout/redis-room-fanout.js';
import { BusKind, readBusFrame } from '../src/fanout/bus-frame.js';
import { REMOTE_ORIGIN } from '../src/relay/room.js';
import type { RemoteHandler } from '../src/relay/fanout.js';
import { PostgresStore } from '../src/relay/persistence/postgres.js';
import type { StoredRoom } from '../src/relay/persistence/types.js';
import { RoomRegistry } from '../src/relay/room-registry.js';
import { startServers, type TestServer } from '../../../test/helpers/server.js';
import { docUntil, stockProvider, synced, textOf, until, type StockProvider } from '../../../test/fixtures/relay-clients.js';
import { RawClient, metricValue } from './signaling-client.js';
import { PG_URL, urlWithSchema, schemaForThisFile } from './postgres-helpers.js';

const REDIS_URL = testRedisUrl();
const schema = schemaForThisFile('redis');
const prefix = `test-${randomBytes(5).toString('hex')}:`;
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function cluster(n: number, env: Record<string, string> = {}): Promise<TestServer[]> {
  const servers = await startServers(n, { STORAGE: 'postgres', DATABASE_URL: urlWithSchema(schema), REDIS_URL, REDIS_PREFIX: prefix, ROOM_IDLE_MS: '200', ...env });
  for (const s of servers) cleanup.push(() => s.close());
  return servers;
}

async function signal(server: TestServer): Promise<RawClient> {
  const c = await RawClient.open(`${server.wsUrl}/signal`);
  cleanup.push(() => c.close());
  return c;
}

function relayClient(server: TestServer, room: string): { doc: Y.Doc; p: StockProvider } {
  const doc = new Y.Doc();
  const p = stockProvider(3, server.wsUrl, room, doc);
  cleanup.push(() => {
    p.destroy();
    doc.destroy();
  });
  return { doc, p };
}

/** Every relay frame published on Redis under this file's prefix from now on, as a watcher receives it. */
async function relayBusFrames(): Promise<Buffer[]> {
  const watcher = new Redis(REDIS_URL, { lazyConnect: true });
  cleanup.push(() => watcher.disconnect());
  await watcher.connect();
  const frames: Buffer[] = [];
  watcher.on('pmessageBuffer', (_pattern: Buffer, _channel: Buffer, message: Buffer) => frames.push(message));
  await watcher.psubscribe(`${prefix}relay:*`);
  return frames;
}

const room = (): string => `acme-conversation-${randomBytes(6).toString('hex')}`;

/** Two instances (cluster's env and `env`), and a synced relay client on each in one new room. */
async function twoInstancesOneRoom(env: Record<string, string> = {}) {
  const [a, b] = (await cluster(2, env)) as [TestServer, TestServer];
  const name = room();
  const onA = relayClient(a, name);
  const onB = relayClient(b, name);
  await Promise.all([synced(onA.p), synced(onB.p)]);
  return { a, b, name, onA, onB };
}

describe('signaling across instances', () => {
  it('peers of one topic on three instances hear each other, and clients counts all of them', async () => {
    const servers = await cluster(3);
    const topic = room();
    const clients = await Promise.all(servers.map(signal));
    for (const c of clients) {
      c.send({ type: 'subscribe', topics: [topic] });
      await c.roundTrip();
    }
    // Counts travel through Redis: publish again on each echo until every instance is counted.
    const [a, b, c] = clients as [RawClient, RawClient, RawClient];
    let n = 0;
    const echo = async (): Promise<Record<string, unknown>> => {
      const from = a.frames.length;
      a.send({ type: 'publish', topic, data: { n: ++n } });
      return a.find(from, (m) => m['type'] === 'publish' && (m['data'] as { n: number }).n === n);
    };
    let seen = await echo();
    for (let i = 0; i < 200 && seen['clients'] !== 3; i++) seen = await echo();
    expect(seen['clients']).toBe(3);
    const atB = await b.find(0, (m) => m['type'] === 'publish' && (m['data'] as { n: number }).n === n);
    const atC = await c.find(0, (m) => m['type'] === 'publish' && (m['data'] as { n: number }).n === n);
    expect(atB).toEqual(seen);
    expect(atC).toEqual(seen);
    // A peer leaving one instance is no longer counted elsewhere.
    await c.close();
    for (let i = 0; i < 200 && seen['clients'] !== 2; i++) seen = await echo();
    expect(seen['clients']).toBe(2);
    expect(await metricValue(servers[0] as TestServer, 'redisMessages', { direction: 'publish' })).toBeGreaterThan(0);
    expect(await metricValue(servers[1] as TestServer, 'redisMessages', { direction: 'receive' })).toBeGreaterThan(0);
  });

  it('MAX_PEERS_PER_ROOM counts subscribers on every instance', async () => {
    const [a, b] = await cluster(2, { MAX_PEERS_PER_ROOM: '2' });
    const topic = room();
    const first = await signal(a as TestServer);
    const second = await signal(b as TestServer);
    for (const c of [first, second]) {
      c.send({ type: 'subscribe', topics: [topic] });
      await c.roundTrip();
    }
    // Wait until A has heard of B's subscriber (publish echo carries the count).
    let clients = 0;
    for (let i = 0; i < 200 && clients !== 2; i++) {
      const from = first.frames.length;
      first.send({ type: 'publish', topic, i });
      clients = (await first.find(from, (m) => m['type'] === 'publish' && m['i'] === i))['clients'] as number;
    }
    const third = await signal(a as TestServer);
    third.send({ type: 'subscribe', topics: [topic] });
    expect((await third.closedWithin()).code).toBe(4409);
  });
});

describe('relay across instances', () => {
  it('stock clients on three instances converge, with awareness', async () => {
    const servers = await cluster(3);
    const name = room();
    const clients = servers.map((s) => relayClient(s, name));
    await Promise.all(clients.map((c) => synced(c.p)));
    clients.forEach((c, i) => c.doc.getText('text').insert(0, `[${i}]`));
    for (const c of clients) await docUntil(c.doc, () => textOf(c.doc).length === 9, 10_000, 'all three writes');
    const texts = new Set(clients.map((c) => textOf(c.doc)));
    expect(texts.size).toBe(1);
    (clients[0] as { p: StockProvider }).p.awareness.setLocalStateField('user', 'alice');
    const far = (clients[2] as { p: StockProvider }).p.awareness;
    await until(far as never, 'change', () => [...far.getStates().values()].some((s) => s['user'] === 'alice'), 10_000, 'awareness across instances');
  });

  it('an instance does not re-apply its own updates from Redis', async () => {
    const { a, name, onA, onB } = await twoInstancesOneRoom();
    const roomA = a.app.relayRooms.rooms.get(name);
    expect(roomA).toBeDefined();
    let remoteAtA = 0;
    roomA?.doc.on('beforeTransaction', (tr: Y.Transaction) => {
      if (tr.origin === REMOTE_ORIGIN) remoteAtA++;
    });
    for (let i = 0; i < 5; i++) onA.doc.getText('text').insert(0, 'a');
    await docUntil(onB.doc, () => textOf(onB.doc) === 'aaaaa', 10_000, 'writes from A at B');
    // B's write reaches A through Redis after A's own messages (one channel, publish order).
    onB.doc.getText('text').insert(0, 'b');
    await docUntil(onA.doc, () => textOf(onA.doc) === 'baaaaa', 10_000, 'write from B at A');
    expect(remoteAtA).toBe(1);
  });

  it('a room loading on one instance misses nothing another instance commits meanwhile', async () => {
    const [a] = await cluster(1);
    const name = room();
    const writer = relayClient(a as TestServer, name);
    await synced(writer.p);
    writer.doc.getText('text').insert(0, 'before;');

    // Instance B: a registry whose storage read is held back after reading.
    const gate = new Gate();
    const b = await manualInstance(gate);
    const peer = { id: 'peer', frames: [] as Uint8Array[], send(m: Uint8Array) { this.frames.push(m); }, close() {} };
    const joined = b.registry.join(name, peer);
    await gate.reached;
    // A commits more while B holds a stale read; B must pick it up from the channel.
    writer.doc.getText('text').insert(7, 'during');
    // Open the gate once B has heard 'during' over Redis (A publishes after committing): B holds
    // it back until the room is loaded, then applies it. Storage holding it is not enough: the
    // delivery can come later, and the room would show only what B read ('before;' may not have
    // been committed yet when B read; a cold room's document is built later).
    const writerClock = Y.getState(writer.doc.store, writer.doc.clientID);
    await until(b.heard, 'update', () => heardThrough(b.heard.updates, writer.doc.clientID) >= writerClock, 10_000, "'during' at instance B");
    gate.open();
    const joinedRoom = await joined;
    expect(joinedRoom.doc.getText('text').toString()).toBe('before;during');
    const stepOnes = peer.frames.map((f) => readRelayMessage(f)).filter((m) => m.ok && m.message.type === 'sync-step1');
    expect(stepOnes).toHaveLength(1); // it joined once, after the load
  });
});

describe('large commits across instances', () => {
  /** Two updates, each within the limits of one update, in one commit window: their merge is not. */
  function twoLargeUpdates(doc: Y.Doc, chars: number): void {
    doc.getText('text').insert(0, 'a'.repeat(chars));
    doc.getText('text').insert(0, 'b'.repeat(chars));
  }

  it('two large updates committed together reach the other instance, and so does a later small edit by the same writer', async () => {
    // Each update is within RELAY_MAX_UPDATE_CONTENT_BYTES; the two merged are over it.
    const { b, name, onA, onB } = await twoInstancesOneRoom({ RELAY_MAX_UPDATE_CONTENT_BYTES: '600000', PERSIST_FLUSH_MS: '400' });
    twoLargeUpdates(onA.doc, 400_000);
    await docUntil(onB.doc, () => textOf(onB.doc).length === 800_000, 15_000, 'both large updates at B');
    onA.doc.getText('text').insert(0, 'hello');
    await docUntil(onB.doc, () => textOf(onB.doc).startsWith('hello'), 10_000, 'the later small edit at B');
    expect(textOf(onB.doc)).toBe(textOf(onA.doc));
    // A client joining B now gets all of it from B's room.
    const late = relayClient(b, name);
    await synced(late.p);
    await docUntil(late.doc, () => textOf(late.doc).length === 800_005, 10_000, 'everything for a fresh client on B');
    expect(await metricValue(b, 'quarantinedUpdates', { source: 'remote' })).toBe(0);
    expect(b.logs.filter((l) => String(l['msg']).includes('another instance'))).toEqual([]);
  });

  it('no relay message on Redis is larger than REDIS_MAX_RELAY_MESSAGE_BYTES, and the content still arrives', async () => {
    const max = 65_536;
    const frames = await relayBusFrames(); // from before the instances start: every frame they publish
    const { onA, onB } = await twoInstancesOneRoom({ REDIS_MAX_RELAY_MESSAGE_BYTES: String(max), PERSIST_FLUSH_MS: '400' });
    // Updates over the bound, then many small ones whose merge would be over it.
    twoLargeUpdates(onA.doc, 300_000);
    await docUntil(onB.doc, () => textOf(onB.doc).length === 600_000, 15_000, 'the large updates at B');
    for (let i = 0; i < 40; i++) onA.doc.getText('text').insert(0, String(i % 10).repeat(4000));
    await docUntil(onB.doc, () => textOf(onB.doc).length === 760_000, 15_000, 'the small updates at B');
    onA.doc.getText('text').insert(0, 'hello');
    await docUntil(onB.doc, () => textOf(onB.doc).startsWith('hello'), 10_000, 'a later small edit at B');
    expect(textOf(onB.doc)).toBe(textOf(onA.doc));
    const kinds = frames.map((f) => {
      const read = readBusFrame(f);
      return read.ok ? read.frame.kind : -1;
    });
    expect(frames.length).toBeGreaterThan(0);
    expect(Math.max(...frames.map((f) => f.length))).toBeLessThanOrEqual(max);
    expect(kinds).toContain(BusKind.RelayReload); // the large ones: read from storage
    expect(kinds.filter((k) => k === BusKind.RelayUpdate).length).toBeGreaterThan(2); // the small ones: in batches
  });
});

describe('presence across instances', () => {
  it('an awareness message over REDIS_MAX_RELAY_MESSAGE_BYTES goes out in messages within it (one entry per client id), and arrives', async () => {
    const max = 8192;
    // presence limits within the bound (the config refuses a bound below them)
    const [a, b] = await cluster(2, { REDIS_MAX_RELAY_MESSAGE_BYTES: String(max), RELAY_MAX_AWARENESS_BYTES: '4096', SEALED_MAX_PRESENCE_BYTES: '4096' });
    const frames = await relayBusFrames();
    const name = room();
    const onB = relayClient(b as TestServer, name);
    await synced(onB.p);
    // One client id repeated 40 times in one message (each state within RELAY_MAX_AWARENESS_BYTES): 120 KB.
    const raw = new WebSocket(`${(a as TestServer).wsUrl}/relay/${name}`);
    cleanup.push(() => raw.close());
    await new Promise((resolve, reject) => raw.once('open', resolve).once('error', reject));
    const states = encoding.createEncoder();
    encoding.writeVarUint(states, 40);
    for (let n = 0; n < 40; n++) {
      encoding.writeVarUint(states, 4242);
      encoding.writeVarUint(states, n + 1);
      encoding.writeVarString(states, JSON.stringify({ n, pad: 'x'.repeat(3000) }));
    }
    const message = encoding.createEncoder();
    encoding.writeVarUint(message, 1); // awareness
    encoding.writeVarUint8Array(message, encoding.toUint8Array(states));
    raw.send(encoding.toUint8Array(message));
    const far = onB.p.awareness;
    await until(far as never, 'change', () => far.getStates().get(4242)?.['n'] === 39, 10_000, 'the last state of the repeated client id at B');
    expect(frames.length).toBeGreaterThan(0);
    expect(Math.max(...frames.map((f) => f.length))).toBeLessThanOrEqual(max);
  });
});

class Gate extends EventEmitter {
  private opened = false;
  readonly reached: Promise<void>;
  private reach: () => void = () => undefined;
  constructor() {
    super();
    this.reached = new Promise((resolve) => (this.reach = resolve));
  }
  async pass(): Promise<void> {
    this.reach();
    if (!this.opened) await new Promise((resolve) => this.once('open', resolve));
  }
  open(): void {
    this.opened = true;
    this.emit('open');
  }
}

/** The updates an instance heard from the others over Redis, in order; 'update' on each. */
class Heard extends EventEmitter {
  readonly updates: Uint8Array[] = [];
}

/** How far the client's updates reach (its clock) in what was heard. */
function heardThrough(updates: readonly Uint8Array[], client: number): number {
  return Math.max(0, ...updates.map((u) => Y.parseUpdateMeta(u).to.get(client) ?? 0));
}

/**
 * A second instance built by hand: its store reads, then waits at the gate before answering;
 * `heard` records each update message its room handlers receive from Redis.
 */
async function manualInstance(gate: Gate): Promise<{ registry: RoomRegistry; heard: Heard }> {
  const metrics = createServerMetrics();
  const log = pino({ level: 'silent' });
  const link = new RedisLink({ url: REDIS_URL, metrics, log });
  await link.connect();
  cleanup.push(() => link.close());
  class GatedStore extends PostgresStore {
    override async load(r: string): Promise<StoredRoom> {
      const stored = await super.load(r);
      await gate.pass();
      return stored;
    }
  }
  const store = new GatedStore(PG_URL, { schema });
  const heard = new Heard();
  class WatchedFanout extends RedisRoomFanout {
    override subscribe(r: string, handler: RemoteHandler): Promise<void> {
      return super.subscribe(r, (event) => {
        handler(event);
        const m = event.kind === 'message' || event.kind === 'update' ? readRelayMessage(event.payload) : null;
        if (m?.ok && m.message.type === 'update') {
          heard.updates.push(m.message.update);
          heard.emit('update');
        }
      });
    }
  }
  const fanout = new WatchedFanout({ link, keys: redisKeys(prefix), log, maxMessageBytes: 1 << 20 });
  await store.init();
  const registry = new RoomRegistry({ store, fanout, metrics, log, flushMs: 50, idleMs: 60_000, compactAfter: 500, maxPeersPerRoom: 50 });
  cleanup.push(async () => {
    await registry.close();
    await store.close();
  });
  return { registry, heard };
}
