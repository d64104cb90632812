/** WS /sealed with a raw client: admission, catch-up from a cursor, acks after commit, presence, compaction, read scope, /relay refusing sealed types. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteSealedStore } from '../src/sealed/store/sqlite.js';
import type { SealedStore } from '../src/sealed/store/types.js';
import { serverPerTest, TEST_SECRET, testToken } from '../../../test/helpers/server.js';
import { fakeEnvelope, RawSealed } from '../../../test/fixtures/sealed-raw.js';
import { connectRawClient } from '../../../test/fixtures/relay-clients.js';
import { sealedRegistry } from '../src/routes/sealed/index.js';

const ROOM = 'acme-conversation-sealed1';
const scope = serverPerTest();
afterEach(() => scope.close());

const env = (n: number): Uint8Array => fakeEnvelope([n, 0xee, n]);

async function client(path: string): Promise<RawSealed> {
  const c = await RawSealed.connect(scope.current.wsUrl, path);
  scope.track(c);
  return c;
}

describe('sealed admission', () => {
  // The connection's logger is made on its first line (sealed/connection.ts): it still names the connection and its room.
  it('log lines of an admitted connection carry conn and room', async () => {
    const server = await scope.start({ LOG_LEVEL: 'debug' });
    const c = await client(`/sealed/${ROOM}`);
    c.update(1, env(1)); // before hello: refused 4400
    expect(await c.closed()).toBe(4400);
    const line = server.logs.find((l) => l['msg'] === 'closing sealed connection');
    expect(line?.['room']).toBe(ROOM);
    expect(line?.['conn']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('refuses like /relay: 4401 without a token, 4403 for another room, 4400 for a bad name or a first message that is not hello', async () => {
    await scope.start({ AUTH_SECRET: TEST_SECRET });
    expect(await (await client(`/sealed/${ROOM}`)).closed()).toBe(4401);
    const other = await testToken('u', ['acme-conversation-other']);
    expect(await (await client(`/sealed/${ROOM}?token=${other}`)).closed()).toBe(4403);
    expect(await (await client('/sealed/not-a-room')).closed()).toBe(4400);
    const t = await testToken('u', [ROOM]);
    const c = await client(`/sealed/${ROOM}?token=${t}`);
    c.update(1, env(1));
    expect(await c.closed()).toBe(4400);
  });

  it('/relay refuses a SEALED_ROOM_TYPES type with 4403 "room is sealed"; /sealed takes it', async () => {
    await scope.start({ SEALED_ROOM_TYPES: 'conversation' });
    const plain = await connectRawClient(scope, `/relay/${ROOM}`);
    const denied = (await plain.next((m) => m.type === 'auth')) as { reason: string };
    expect(denied.reason).toBe('room is sealed');
    expect(await plain.closed()).toBe(4403);
    const sealed = await client(`/sealed/${ROOM}`);
    sealed.hello(0);
    await sealed.next('caught-up');
  });
});

describe('sealed limits', () => {
  it('closes 1009 above the frame or presence size, 4429 past the abuse rate, 4409 when the room is full; metrics count connections', async () => {
    const server = await scope.start({ RELAY_MAX_MESSAGE_BYTES: '1000', SEALED_MAX_PRESENCE_BYTES: '100', MAX_MESSAGES_PER_SECOND: '20', RATE_LIMIT_ABUSE_FACTOR: '2', RATE_LIMIT_ABUSE_SECONDS: '1', MAX_PEERS_PER_ROOM: '1' });
    const big = await client(`/sealed/${ROOM}-big`);
    big.hello(0);
    await big.next('caught-up');
    big.update(1, new Uint8Array(1200));
    expect(await big.closed()).toBe(1009);
    const chatty = await client(`/sealed/${ROOM}-presence`);
    chatty.hello(0);
    await chatty.next('caught-up');
    chatty.presence(new Uint8Array(150));
    expect(await chatty.closed()).toBe(1009);
    const fast = await client(`/sealed/${ROOM}-fast`);
    fast.hello(0);
    await fast.next('caught-up');
    // Past the abuse threshold (2 x 20/s for 1 s) in one burst: frames already read still count.
    for (let i = 0; i < 100; i++) fast.presence(env(i));
    expect(await fast.closed()).toBe(4429);
    const first = await client(`/sealed/${ROOM}`);
    first.hello(0);
    await first.next('caught-up');
    const res = await server.app.inject({ url: '/metrics' });
    expect(res.body).toMatch(/^sync_sealed_connections 1$/m);
    const second = await client(`/sealed/${ROOM}`);
    second.hello(0);
    expect(await second.closed()).toBe(4409);
  });
});

describe('sealed flow', () => {
  it('acks after commit, fans out with seq, catches a device up from its cursor, and forwards presence and peer-left', async () => {
    const server = await scope.start({ PERSIST_FLUSH_MS: '20' });
    const a = await client(`/sealed/${ROOM}`);
    a.hello(0);
    const welcomeA = await a.next('welcome');
    expect(welcomeA.writable).toBe(true);
    expect(await a.next('caught-up')).toEqual({ type: 'caught-up', seq: 0 });
    a.update(7, env(1));
    a.update(8, env(2));
    expect(await a.next('ack')).toEqual({ type: 'ack', id: 7, seq: 1 });
    expect(a.messages.filter((m) => m.type === 'entry')).toEqual([]); // the sender gets acks, not its entries back

    const b = await client(`/sealed/${ROOM}`);
    b.hello(0);
    await b.next('caught-up');
    expect(b.messages.filter((m) => m.type === 'entry').map((m) => (m as { seq: number }).seq)).toEqual([1, 2]);
    a.presence(env(9));
    const p = await b.next('presence');
    expect(p).toEqual({ type: 'presence', peer: welcomeA.peer, envelope: env(9) });
    a.update(9, env(3));
    const mark = b.messages.length;
    const e3 = await b.next('entry', mark);
    expect(e3).toEqual({ type: 'entry', seq: 3, envelope: env(3) });

    // a device that comes back with cursor 2 gets only entry 3, and the presence of those online
    const c = await client(`/sealed/${ROOM}`);
    c.hello(2);
    await c.next('caught-up');
    expect(c.messages.filter((m) => m.type === 'entry').map((m) => (m as { seq: number }).seq)).toEqual([3]);
    await c.next('presence');
    a.close();
    expect(await b.next('peer-left')).toEqual({ type: 'peer-left', peer: welcomeA.peer });
    expect(sealedRegistry(server.app)?.rooms.get(ROOM)?.head).toBe(3);
  });

  it('past SEALED_SNAPSHOT_AFTER asks a writer for a snapshot; the snapshot replaces exactly the entries it covers', async () => {
    const server = await scope.start({ PERSIST_FLUSH_MS: '10', SEALED_SNAPSHOT_AFTER: '5' });
    const a = await client(`/sealed/${ROOM}`);
    a.hello(0);
    await a.next('caught-up');
    for (let i = 1; i <= 5; i++) a.update(i, env(i));
    const req = await a.next('snapshot-request');
    expect(req.upTo).toBeGreaterThanOrEqual(5);
    a.update(6, env(6));
    await a.next('ack', a.messages.findIndex((m) => m.type === 'ack' && m.id === 5) + 1);
    a.snapshot(4, env(100)); // covers less than the server holds: 5 and 6 must stay
    const store = sealedRegistry(server.app)?.store;
    for (let i = 0; i < 100 && (await store?.stats(ROOM))?.snapshotCovers !== 4; i++) await new Promise((r) => setTimeout(r, 20));
    const fresh = await client(`/sealed/${ROOM}`);
    fresh.hello(0);
    await fresh.next('caught-up');
    const got = fresh.messages.filter((m) => m.type === 'snapshot' || m.type === 'entry');
    expect(got).toEqual([
      { type: 'snapshot', covers: 4, envelope: env(100) },
      { type: 'entry', seq: 5, envelope: env(5) },
      { type: 'entry', seq: 6, envelope: env(6) },
    ]);
    // a snapshot claiming more than the head is refused
    a.snapshot(99, env(101));
    a.presence(env(1)); // a round trip through the socket's order
    await fresh.next('presence');
    expect((await store?.stats(ROOM))?.snapshotCovers).toBe(4);
    expect(a.messages.filter((m) => m.type === 'snapshot-request')).toHaveLength(1);
  });

  it('a device whose snapshot is refused is not asked again at every entry', async () => {
    await scope.start({ PERSIST_FLUSH_MS: '10', SEALED_SNAPSHOT_AFTER: '3' });
    const a = await client(`/sealed/${ROOM}`);
    a.hello(0);
    await a.next('caught-up');
    for (let i = 1; i <= 3; i++) a.update(i, env(i));
    await a.next('snapshot-request');
    a.snapshot(0, env(100)); // covers nothing: refused
    for (let i = 4; i <= 8; i++) {
      a.update(i, env(i));
      // each acknowledged before the next: every commit is its own chance to ask again
      await a.wait(() => a.messages.some((m) => m.type === 'ack' && m.id === i), `ack ${i}`);
    }
    expect(a.messages.filter((m) => m.type === 'snapshot-request')).toHaveLength(1);
  });

  it('a snapshot nobody asked for, or a second answer to one request, is dropped and counted without touching storage', async () => {
    const server = await scope.start({ PERSIST_FLUSH_MS: '10', SEALED_SNAPSHOT_AFTER: '3' });
    const a = await client(`/sealed/${ROOM}`);
    a.hello(0);
    await a.next('caught-up');
    a.update(1, env(1));
    await a.next('ack');
    const store = sealedRegistry(server.app)?.store;
    a.snapshot(1, env(100)); // unsolicited: a writer must not make the server rewrite storage at will
    a.presence(env(1)); // a round trip through the socket's order
    const b = await client(`/sealed/${ROOM}`);
    b.hello(0);
    await b.next('presence');
    expect((await store?.stats(ROOM))?.snapshotCovers).toBe(0);
    for (let i = 2; i <= 3; i++) a.update(i, env(i));
    await a.next('snapshot-request');
    a.snapshot(2, env(101));
    a.snapshot(3, env(102)); // a second answer to the same request
    a.presence(env(2));
    await b.next('presence', b.messages.findIndex((m) => m.type === 'presence') + 1);
    for (let i = 0; i < 100 && (await store?.stats(ROOM))?.snapshotCovers !== 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect((await store?.stats(ROOM))?.snapshotCovers).toBe(2);
    const metrics = (await server.app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/sync_rejected_messages_total\{endpoint="sealed",reason="unsolicited_snapshot"\} 2/);
  });

  it('catches a device up page by page: a receiver that does not read holds the server to a few pages, then gets everything in order', async () => {
    const server = await scope.start({ PERSIST_FLUSH_MS: '10' });
    const store = sealedRegistry(server.app)?.store as SealedStore;
    const N = 200;
    const big = (n: number): Uint8Array => new Uint8Array(150_000).fill(n % 251);
    for (let i = 0; i < N; i += 50) await store.append([{ room: ROOM, envelopes: Array.from({ length: 50 }, (_, j) => big(i + j + 1)) }]);
    let served = 0;
    const read = store.read.bind(store);
    store.read = async (room, cursor, limit) => {
      const r = await read(room, cursor, limit);
      served += r.entries.length;
      return r;
    };
    const c = await client(`/sealed/${ROOM}`);
    const tcp = (c.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    tcp.pause(); // reads nothing: what the server sends piles up on its side
    c.hello(0);
    for (let i = 0; i < 100 && served === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 300)); // the server has had time to read on, had it not waited
    expect(served).toBeGreaterThan(0);
    expect(served).toBeLessThan(N);
    tcp.resume();
    expect(await c.next('caught-up', 0, 20_000)).toEqual({ type: 'caught-up', seq: N });
    const entries = c.messages.filter((m) => m.type === 'entry');
    expect(entries.map((m) => m.seq)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    expect(entries.every((m) => m.envelope[0] === m.seq % 251)).toBe(true);
  });

  it('a read token receives entries, may show presence, and its updates and snapshots are dropped and counted', async () => {
    await scope.start({ AUTH_SECRET: TEST_SECRET, PERSIST_FLUSH_MS: '10' });
    const w = await client(`/sealed/${ROOM}?token=${await testToken('w', [ROOM])}`);
    const r = await client(`/sealed/${ROOM}?token=${await testToken('r', [ROOM], { scope: 'read' })}`);
    w.hello(0);
    r.hello(0);
    expect((await r.next('welcome')).writable).toBe(false);
    await Promise.all([w.next('caught-up'), r.next('caught-up')]);
    r.update(1, env(1));
    r.snapshot(1, env(2));
    r.presence(env(3));
    await w.next('presence');
    w.update(1, env(4));
    expect(await r.next('entry')).toEqual({ type: 'entry', seq: 1, envelope: env(4) });
    expect(r.messages.some((m) => m.type === 'ack')).toBe(false);
  });

  it('a number past 2^53 - 1 in a device message (an update id lib0 reads as Infinity, which the ack would echo) is malformed: 4400, nothing stored, the room keeps serving', async () => {
    const server = await scope.start({ PERSIST_FLUSH_MS: '5' });
    // 146 continuation bytes, then 0x7f: lib0's readVarUint returns Infinity without a range error
    const infinity = [...new Array<number>(146).fill(0x80), 0x7f];
    const envelope = env(9);
    const frames = [
      Uint8Array.from([1, ...infinity, envelope.length, ...envelope]), // update
      Uint8Array.from([1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10, envelope.length, ...envelope]), // update, id 2^53
      Uint8Array.from([2, ...infinity, envelope.length, ...envelope]), // snapshot covers
      Uint8Array.from([4, ...infinity]), // snapshot-bad covers
    ];
    for (const frame of frames) {
      const c = await client(`/sealed/${ROOM}`);
      c.hello(0);
      await c.next('caught-up');
      c.ws.send(frame);
      expect(await c.closed()).toBe(4400);
      expect(c.messages.some((m) => m.type === 'ack')).toBe(false);
    }
    const c = await client(`/sealed/${ROOM}`);
    c.hello(0, 0);
    expect((await c.next('caught-up')).seq).toBe(0);
    c.update(1, env(1));
    expect((await c.next('ack')).seq).toBe(1);
    expect(server.logs.filter((l) => (l['level'] as number) >= 50)).toEqual([]);
  });
});

describe('sealed storage', () => {
  it('with SQLite, the relay and the sealed tables of one server share one storage thread', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sealed-thread-'));
    try {
      const server = await scope.start({ STORAGE: 'sqlite', DATA_DIR: dataDir });
      const running = [...server.app.sync.sqliteThreads.running.values()];
      expect(running).toHaveLength(1);
      expect(running[0]?.users).toBe(2);
      await server.close();
      expect(server.app.sync.sqliteThreads.running.size).toBe(0);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('sealed shutdown', () => {
  it('graceful shutdown commits every accepted envelope, acknowledges it, then closes 1012', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sealed-shutdown-'));
    try {
      // a flush window so long that only the shutdown can commit
      const server = await scope.start({ STORAGE: 'sqlite', DATA_DIR: dataDir, PERSIST_FLUSH_MS: '600000' });
      const a = await client(`/sealed/${ROOM}`);
      a.hello(0);
      await a.next('caught-up');
      for (let i = 1; i <= 5; i++) a.update(i, env(i));
      a.presence(env(9)); // round trip: the updates were read before the shutdown starts
      const b = await client(`/sealed/${ROOM}`);
      b.hello(0);
      await b.next('presence');
      expect(a.messages.some((m) => m.type === 'ack')).toBe(false);
      await server.close();
      expect(await a.closed()).toBe(1012);
      expect(a.messages.filter((m) => m.type === 'ack').map((m) => (m as { seq: number }).seq)).toEqual([1, 2, 3, 4, 5]);
      const store = new SqliteSealedStore(dataDir);
      await store.init();
      try {
        expect((await store.read(ROOM, 0)).entries.map((e) => e.envelope[0])).toEqual([1, 2, 3, 4, 5]);
      } finally {
        await store.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
