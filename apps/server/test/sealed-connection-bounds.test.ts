/**
 * What a hostile /sealed socket can make the server hold or do, on a real server with raw clients:
 * a token revoked while it is being verified serves nothing it sent meanwhile; a device that does
 * not read its catch-up holds the server to about its send allowance, and one sending during it
 * is not read further; nothing of the room reaches a device before its `welcome`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import type { SealedStore } from '../src/sealed/store/types.js';
import { serverPerTest, TEST_SECRET, testToken } from '../../../test/helpers/server.js';
import { untilCount, withTimeout } from '../../../test/helpers/timeout.js';
import { fakeEnvelope, RawSealed } from '../../../test/fixtures/sealed-raw.js';

const scope = serverPerTest();
afterEach(() => scope.close());

async function client(path: string): Promise<RawSealed> {
  const c = await RawSealed.connect(scope.current.wsUrl, path);
  scope.track(c);
  return c;
}

/** The server's side of the only WebSocket open on it. */
function onlyServerSocket(): WebSocket {
  const sockets = [...scope.current.app.sync.admission.sockets];
  expect(sockets).toHaveLength(1);
  return sockets[0] as WebSocket;
}

/** The TCP socket under a WebSocket (ws's `_socket`), for pausing a client or watching the server's writes. */
function tcpOf(ws: WebSocket): { pause(): void; resume(): void; write: (...args: never[]) => boolean } {
  return (ws as unknown as { _socket: { pause(): void; resume(): void; write: (...args: never[]) => boolean } })._socket;
}

/** The catch-up tests' frame limit, and the send allowance it gives (routes/sealed: max(2 x RELAY_MAX_MESSAGE_BYTES, 16 MiB)). */
const MAX_MESSAGE = 1_000_000;
const ALLOWANCE = 16 * 1024 * 1024;

/** A server taking frames of MAX_MESSAGE bytes; its sealed store, to fill a room before a device connects. */
async function storeOfBigFrameServer(): Promise<SealedStore> {
  const server = await scope.start({ RELAY_MAX_MESSAGE_BYTES: String(MAX_MESSAGE), PERSIST_FLUSH_MS: '5' });
  return server.app.sealedRooms.store as SealedStore;
}

/**
 * A device that reads nothing says hello on `room`; resolves once the server holds more than half
 * the allowance unsent for it (its catch-up stalls there). `sample` runs after every server write.
 */
/** Watches the store's reads: the most bytes of envelopes (snapshot and entries) one read returned. */
function watchPageBytes(store: SealedStore): { largest: number } {
  const seen = { largest: 0 };
  const read = store.read.bind(store);
  store.read = async (...args) => {
    const page = await read(...args);
    seen.largest = Math.max(seen.largest, page.entries.reduce((sum, e) => sum + e.envelope.length, page.snapshot?.envelope.length ?? 0));
    return page;
  };
  return seen;
}

async function stalledCatchUp(room: string, sample: (serverSide: WebSocket) => void = () => undefined): Promise<{ c: RawSealed; serverSide: WebSocket; tcp: ReturnType<typeof tcpOf> }> {
  const c = await client(`/sealed/${room}`);
  const serverSide = onlyServerSocket();
  let reachedHalf!: () => void;
  const half = new Promise<void>((r) => (reachedHalf = r));
  afterEachWrite(serverSide, () => {
    sample(serverSide);
    if (serverSide.bufferedAmount > ALLOWANCE / 2) reachedHalf();
  });
  const tcp = tcpOf(c.ws);
  tcp.pause(); // reads nothing: what the server sends piles up on its side
  c.hello(0);
  await withTimeout(half, 10_000, 'the server holding half the allowance unsent for the device');
  return { c, serverSide, tcp };
}

/** Calls `sample` after every write the server makes to this socket. */
function afterEachWrite(ws: WebSocket, sample: () => void): void {
  const tcp = tcpOf(ws);
  const write = tcp.write.bind(tcp);
  tcp.write = (...args) => {
    const ok = write(...args);
    sample();
    return ok;
  };
}

describe('sealed admission races', () => {
  it('a token revoked while it is being verified closes 4401 and nothing it sent meanwhile is served', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, PERSIST_FLUSH_MS: '5' });
    const ctx = server.app.sync;
    const registry = server.app.sealedRooms;
    const room = 'acme-conversation-revoke-race';
    // The token verifies; the admin revokes its sub before the verification returns.
    let releaseVerify!: () => void;
    const verifyHeld = new Promise<void>((r) => (releaseVerify = r));
    scope.track({ close: () => releaseVerify() });
    const verify = ctx.auth.verify.bind(ctx.auth);
    ctx.auth.verify = async (...args) => {
      const result = await verify(...args);
      await verifyHeld;
      if (result.ok) ctx.revocations.apply({ sub: result.claims.sub, until: Math.floor(Date.now() / 1000) + 3600 });
      return result;
    };
    let joins = 0;
    const join = registry.join.bind(registry);
    registry.join = (...args) => {
      joins++;
      return join(...args);
    };

    const c = await client(`/sealed/${room}?token=${await testToken('mallory', [room])}`);
    const serverSide = onlyServerSocket();
    let received = 0;
    serverSide.on('message', () => received++);
    c.hello(0);
    for (let i = 1; i <= 5; i++) c.update(i, fakeEnvelope([9, 9, i]));
    await untilCount(serverSide, 'message', () => received, 6, 5000, 'the server reading hello and 5 updates');
    releaseVerify();

    expect(await c.closed()).toBe(4401);
    // Whatever was queued during the verification went nowhere: no join (which would serve it), no entry.
    expect(joins).toBe(0);
    expect(registry.rooms.get(room)).toBeUndefined();
    expect((await registry.store.stats(room)).head).toBe(0);
    expect(c.messages).toEqual([]);
  });
});

describe('sealed catch-up bounds', () => {
  it('a device that does not read its catch-up holds the server to about its send allowance, pages bounded in bytes; then it gets everything in order', async () => {
    const store = await storeOfBigFrameServer();
    const room = 'acme-conversation-catchup-bytes';
    const N = 40; // 40 MB: well past the allowance and past what the kernel's socket buffers take
    const envelope = (n: number): Uint8Array => new Uint8Array(MAX_MESSAGE - 16).fill(n % 251);
    for (let i = 0; i < N; i += 10) await store.append([{ room, envelopes: Array.from({ length: 10 }, (_, j) => envelope(i + j + 1)) }]);
    const pages = watchPageBytes(store);

    let mostUnsent = 0;
    const { c, tcp } = await stalledCatchUp(room, (serverSide) => (mostUnsent = Math.max(mostUnsent, serverSide.bufferedAmount)));
    expect(mostUnsent).toBeLessThanOrEqual(ALLOWANCE + MAX_MESSAGE);
    tcp.resume();
    expect(await c.next('caught-up', 0, 30_000)).toEqual({ type: 'caught-up', seq: N });
    // Every write of the whole catch-up stayed within the allowance (one frame of slack), and no
    // page read from storage held more than half the allowance and one frame.
    expect(mostUnsent).toBeLessThanOrEqual(ALLOWANCE + MAX_MESSAGE);
    expect(pages.largest).toBeLessThanOrEqual(ALLOWANCE / 2 + MAX_MESSAGE);
    const entries = c.messages.filter((m) => m.type === 'entry');
    expect(entries.map((m) => m.seq)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    expect(entries.every((m) => m.envelope.length === MAX_MESSAGE - 16 && m.envelope[0] === m.seq % 251)).toBe(true);
  });
  it('a room of many small entries past the allowance is read 64 entries a page, not one read per entry', async () => {
    const store = await storeOfBigFrameServer();
    const room = 'acme-conversation-catchup-small';
    const SIZE = 16_000; // small next to the frame limit: the old page (half the allowance / frame limit) was 8
    const N = 1100; // 1100 x (16 000 + 256 row overhead) = 17.9 MB counted: past the allowance
    for (let i = 0; i < N; i += 100) await store.append([{ room, envelopes: Array.from({ length: 100 }, (_, j) => new Uint8Array(SIZE).fill((i + j + 1) % 251)) }]);
    expect((await store.stats(room)).bytes).toBeGreaterThan(ALLOWANCE);
    const limits: (number | undefined)[] = [];
    const read = store.read.bind(store);
    store.read = async (...args) => {
      limits.push(args[2]);
      return read(...args);
    };

    const c = await client(`/sealed/${room}`);
    c.hello(0);
    expect(await c.next('caught-up', 0, 30_000)).toEqual({ type: 'caught-up', seq: N });
    expect(limits.every((l) => l === 64)).toBe(true);
    expect(limits.length).toBe(Math.floor(N / 64) + 1);
    const entries = c.messages.filter((m) => m.type === 'entry');
    expect(entries.map((m) => m.seq)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    expect(entries.every((m) => m.envelope.length === SIZE && m.envelope[0] === m.seq % 251)).toBe(true);
  });
  it('a room whose small entries hide a run of large ones still reads pages of about half the allowance (the average entry does not size a page)', async () => {
    // A writer stores many small entries, then frames near the limit: the room's average entry is
    // small, so a page of 64 entries (the count the average allows) would hold 64 frames near the
    // limit in memory for every device catching up there, a non-reading one too.
    const store = await storeOfBigFrameServer();
    const room = 'acme-conversation-catchup-skewed';
    const SMALL = 3000;
    const BIG = 40; // 40 MB behind 3000 entries of 46 bytes: the average counted is ~13 kB
    for (let i = 0; i < SMALL; i += 500) await store.append([{ room, envelopes: Array.from({ length: 500 }, () => new Uint8Array(46)) }]);
    for (let i = 0; i < BIG; i += 10) await store.append([{ room, envelopes: Array.from({ length: 10 }, () => new Uint8Array(MAX_MESSAGE - 16)) }]);
    const pages = watchPageBytes(store);

    const c = await client(`/sealed/${room}`);
    c.hello(SMALL); // a device caught up to the small entries (or a hostile reader naming that cursor)
    expect(await c.next('caught-up', 0, 30_000)).toEqual({ type: 'caught-up', seq: SMALL + BIG });
    expect(pages.largest).toBeLessThanOrEqual(ALLOWANCE / 2 + MAX_MESSAGE);
    const entries = c.messages.filter((m) => m.type === 'entry');
    expect(entries.map((m) => m.seq)).toEqual(Array.from({ length: BIG }, (_, i) => SMALL + i + 1));
  });
});

describe('sealed frames before the connection is open', () => {
  it('a device sending during a stalled catch-up is not read further: the server holds about one frame and handles it once open', async () => {
    const store = await storeOfBigFrameServer();
    const room = 'acme-conversation-joining-queue';
    const N = 40;
    for (let i = 0; i < N; i += 10) await store.append([{ room, envelopes: Array.from({ length: 10 }, () => new Uint8Array(MAX_MESSAGE - 16)) }]);

    const { c, serverSide, tcp } = await stalledCatchUp(room); // the connection stays in its join

    // Frames the server cannot serve yet: 30 MB of junk the size of a frame.
    const JUNK = 30;
    let received = 0;
    let pausedAtFirst: boolean | null = null;
    serverSide.on('message', () => {
      if (received++ === 0) pausedAtFirst = serverSide.isPaused;
    });
    let receivedAtClose = -1;
    const close = serverSide.close.bind(serverSide);
    serverSide.close = (...args) => {
      if (receivedAtClose < 0) receivedAtClose = received; // the server's close (ws closes again on the device's answer)
      close(...args);
    };
    for (let i = 0; i < JUNK; i++) c.ws.send(new Uint8Array(MAX_MESSAGE - 16).fill(0xff));
    await untilCount(serverSide, 'message', () => received, 1, 10_000, 'the server reading the first junk frame');
    expect(pausedAtFirst).toBe(true); // it stopped reading at the first frame it could not serve

    // Once the device reads its catch-up, the held frame is handled (junk: 4400) before anything more is read.
    tcp.resume();
    expect(await c.next('caught-up', 0, 30_000)).toEqual({ type: 'caught-up', seq: N });
    expect(await c.closed(10_000)).toBe(4400);
    expect(receivedAtClose).toBeGreaterThanOrEqual(1);
    expect(receivedAtClose).toBeLessThanOrEqual(2); // at most the frame that was being read when reading stopped
  });
});

describe('sealed room messages before welcome', () => {
  it('a device refused (4429, new rooms) after joining the room gets none of its presence first', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, MAX_NEW_ROOMS_PER_SUB_PER_HOUR: '1', PERSIST_FLUSH_MS: '5' });
    const room = 'acme-conversation-before-welcome';
    const a = await client(`/sealed/${room}?token=${await testToken('alice', [room])}`);
    const c = await client(`/sealed/${room}?token=${await testToken('carol', [room])}`);
    a.hello(0);
    c.hello(0);
    await a.next('caught-up');
    await c.next('caught-up');
    // bob's one new room this hour
    const other = 'acme-conversation-bobs-first';
    const b1 = await client(`/sealed/${other}?token=${await testToken('bob', [room, other])}`);
    b1.hello(0);
    await b1.next('caught-up');

    // bob's second new room: his quota is asked once his socket has joined the room; held there.
    const quota = server.app.roomQuotas.newRooms;
    if (!quota) throw new Error('no new-rooms quota');
    const take = quota.take.bind(quota);
    let entered!: () => void;
    const asked = new Promise<void>((r) => (entered = r));
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    scope.track({ close: () => release() });
    quota.take = async (sub, name) => {
      if (sub === 'bob' && name === room) {
        entered();
        await released;
      }
      return take(sub, name);
    };
    const b2 = await client(`/sealed/${room}?token=${await testToken('bob', [room, other])}`);
    b2.hello(0);
    await withTimeout(asked, 5000, "bob's new-room quota asked");
    expect(server.app.sealedRooms.rooms.get(room)?.conns.size).toBe(3); // it is in the room already

    a.presence(fakeEnvelope([1, 2, 3]));
    await c.next('presence'); // sent to every connection of the room in this turn
    release();
    expect(await b2.closed()).toBe(4429);
    expect(b2.messages).toEqual([]); // neither a welcome nor the room's presence before the refusal
  });
});
