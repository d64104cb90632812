/**
 * Storage fenced by generation across instances (PostgreSQL + Redis): instance B misses the
 * Redis message of a delete made on A (B's Redis cable cut, its subscriber reconnecting). Its
 * device, welcomed in the deleted generation, writes on: storage refuses the write (it names the
 * deleted generation), nothing of it reaches the new room, and B drops the room as at a delete it
 * heard of (4410), so its next device is told the new generation. A delete message B handles late
 * (held up) leaves B's devices of the new generation alone; a second delete of an emptied room
 * that B misses closes B's device of the generation between the deletes with 4410 too.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeEnvelope, RawSealed } from '../../../test/fixtures/sealed-raw.js';
import { serverPerTest, type TestServer } from '../../../test/helpers/server.js';
import { BusKind, writeBusFrame, writeGenerationPayload } from '../src/fanout/bus-frame.js';
import { sealedRegistry } from '../src/routes/sealed/index.js';
import { writeCheckPayload, writeEntriesPayload } from '../src/sealed/bus-payload.js';
import { schemaForThisFile, withPg } from './postgres-helpers.js';
import { deleteRoomOn, withCluster as withTwoInstances, type Cluster } from './two-instances.js';

const scope = serverPerTest();
afterEach(() => scope.close());

const ADMIN_TOKEN = 'admin-token-for-the-tests-0123456789';
const ROOM = 'acme-conversation-fenced';
const env = (n: number): Uint8Array => fakeEnvelope([n, 0xee, n, 0xee]);
const schema = schemaForThisFile('sfence');
/** the releases of calls a test holds (holdCalls) */
const holds: Array<() => void> = [];

async function device(server: TestServer, token: string, generation = 0, room = ROOM): Promise<{ c: RawSealed; generation: number | undefined }> {
  const c = await RawSealed.connect(server.wsUrl, `/sealed/${room}?token=${token}`);
  scope.track(c);
  c.hello(0, generation);
  const welcome = await c.next('welcome');
  await c.next('caught-up');
  return { c, generation: welcome.generation };
}

/** The first byte of each envelope stored in the room, in seq order. */
async function stored(room = ROOM): Promise<number[]> {
  return withPg(async (c) =>
    (await c.query<{ envelope: Buffer }>(`SELECT envelope FROM "${schema}".sealed_entries WHERE room = $1 ORDER BY seq`, [room])).rows.map((r) => r.envelope[0] as number),
  );
}

/** A and B (two-instances.ts); held calls are released before they close. */
function withCluster(body: (cluster: Cluster) => Promise<void>): Promise<void> {
  return withTwoInstances({ schema, adminToken: ADMIN_TOKEN, beforeClose: () => holds.splice(0).forEach((release) => release()) }, body);
}

/** `writer` stores entry 1 (acked), and `reader`, on the other instance, is sent it. */
async function firstEntry(writer: RawSealed, reader: RawSealed): Promise<void> {
  writer.update(1, env(1));
  await writer.next('ack');
  await reader.wait(() => reader.messages.some((m) => m.type === 'entry'), 'the entry on the other instance');
}

/** Calls held before they run (a message, a read, that comes late): `entered` once one is made, with its run (wrapped: awaiting it would wait for the release). */
interface Held<T> {
  entered: Promise<{ run: Promise<T> }>;
  release(): void;
}

/**
 * Holds the calls of `call` naming `room` until release() (others pass); `install` puts the
 * holding function in the real one's place. Released at withCluster's end if the test fails first.
 */
function holdCalls<A extends unknown[], T>(room: string, call: (name: string, ...rest: A) => Promise<T>, install: (held: (name: string, ...rest: A) => Promise<T>) => void): Held<T> {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let enter!: (entered: { run: Promise<T> }) => void;
  const entered = new Promise<{ run: Promise<T> }>((r) => (enter = r));
  install((name, ...rest) => {
    if (name !== room) return call(name, ...rest);
    const run = released.then(() => call(name, ...rest));
    enter({ run });
    return run;
  });
  holds.push(release);
  return { entered, release };
}

/** The admin delete of the room, made on `server`. */
function deleteRoom(server: TestServer, room = ROOM): Promise<void> {
  return deleteRoomOn(server, room, ADMIN_TOKEN);
}

/** The seq and first byte of each entry `c` was sent. */
function entriesOf(c: RawSealed): Array<[number, number]> {
  return c.messages.flatMap((m) => (m.type === 'entry' ? [[m.seq, m.envelope[0] as number] as [number, number]] : []));
}

/**
 * On `server`, a device welcomed in `room` (entry 1 stored); then a delete it never hears of
 * (storage purged directly) and the new room's entries 1..3 (21..23), written as through another
 * instance. The device's generation and the new one.
 */
async function missedDelete(server: TestServer, token: string, room: string): Promise<{ c: RawSealed; g1: number; g2: number }> {
  const { c, generation } = await device(server, token, 0, room);
  c.update(1, env(1));
  await c.next('ack');
  const { store } = sealedRegistry(server.app) as NonNullable<ReturnType<typeof sealedRegistry>>;
  await store.purgeRoom(room);
  const g2 = (await store.generation(room)).current;
  expect(await store.append([{ room, envelopes: [env(21), env(22), env(23)], generation: g2 }])).toEqual([1]);
  return { c, g1: generation as number, g2 };
}

describe('sealed storage fenced by generation', () => {
  for (const variant of ['a check of the deleted generation', 'an old-format check', 'entries of the deleted generation with a gap'] as const) {
    it(`an instance that missed a delete, told of ${variant}: its gap fill reads the new room's log, serves none of it, and closes its devices 4410`, async () => {
      await withCluster(async ({ b, token }) => {
        const room = `${ROOM}-gap-${variant.split(' ').join('-')}`;
        const { c, g1 } = await missedDelete(b, token, room);
        const redis = new Redis(b.config.REDIS_URL as string);
        try {
          // what an instance still holding the deleted room (or one of the version before, checks without a generation) publishes
          const frame =
            variant === 'an old-format check'
              ? writeBusFrame(BusKind.SealedCheck, randomBytes(16), Buffer.from(writeCheckPayload(2)))
              : variant === 'a check of the deleted generation'
                ? writeBusFrame(BusKind.SealedAt, randomBytes(16), writeGenerationPayload(g1, Buffer.concat([Uint8Array.of(BusKind.SealedCheck), writeCheckPayload(2)])))
                : writeBusFrame(BusKind.SealedAt, randomBytes(16), writeGenerationPayload(g1, Buffer.concat([Uint8Array.of(BusKind.SealedEntries), writeEntriesPayload(3, [env(3)])])));
          await redis.publish(`${b.config.REDIS_PREFIX}sealed:${room}`, frame);
          expect(await c.closed(10_000)).toBe(4410);
        } finally {
          await redis.quit();
        }
        expect(entriesOf(c)).toEqual([]);
        // the room was dropped: the next device is served the new room
        const next = await device(b, token, 0, room);
        expect(entriesOf(next.c)).toEqual([[1, 21], [2, 22], [3, 23]]);
      });
    });
  }

  it("a device welcomed in a generation deleted (on another instance) before its catch-up read is not served the new room's log: closed 4410", async () => {
    await withCluster(async ({ b, token }) => {
      const room = `${ROOM}-catch-up`;
      const writer = await device(b, token, 0, room);
      writer.c.update(1, env(1));
      await writer.c.next('ack');
      const { store } = sealedRegistry(b.app) as NonNullable<ReturnType<typeof sealedRegistry>>;
      const read = holdCalls(room, store.read.bind(store), (held) => (store.read = held));
      const d = await RawSealed.connect(b.wsUrl, `/sealed/${room}?token=${token}`);
      scope.track(d);
      d.hello(0, 0);
      const welcome = await d.next('welcome');
      await read.entered;
      await store.purgeRoom(room);
      const g2 = (await store.generation(room)).current;
      expect(g2).not.toBe(welcome.generation);
      await store.append([{ room, envelopes: [env(21), env(22)], generation: g2 }]);
      read.release();
      expect(await d.closed(10_000)).toBe(4410);
      expect(entriesOf(d)).toEqual([]);
      expect(d.messages.some((m) => m.type === 'caught-up')).toBe(false);
    });
  });

  it('an instance that missed a delete: its writes in the deleted generation are refused, its devices closed 4410, the next told the new generation', async () => {
    await withCluster(async ({ a, b, token, cutB }) => {
      const onA = await device(a, token);
      const onB = await device(b, token);
      const g1 = onB.generation;
      expect(g1).toBeGreaterThan(0);
      expect(onA.generation).toBe(g1);
      await firstEntry(onB.c, onA.c);

      // B's Redis cable is cut: the delete's message never reaches it
      await cutB();
      await deleteRoom(a);
      expect(await onA.c.closed()).toBe(4410);
      // the room is written again on A: generation g2
      const fresh = await device(a, token);
      expect(fresh.generation).not.toBe(g1);
      fresh.c.update(1, env(2));
      await fresh.c.next('ack');

      // B's device, still in g1, writes on: refused, and closed as at the delete
      const before = onB.c.messages.length;
      onB.c.update(2, env(3));
      expect(await onB.c.closed(10_000)).toBe(4410);
      expect(onB.c.messages.slice(before).map((m) => m.type)).toEqual([]); // never acked
      expect(await stored()).toEqual([2]);

      // B tells its next device the new generation, and serves the new room
      const next = await device(b, token);
      expect(next.generation).toBe(fresh.generation);
      expect(next.c.messages.filter((m) => m.type === 'entry').length).toBe(1);
      // a device naming the deleted generation is closed 4410 on B too
      const old = await RawSealed.connect(b.wsUrl, `/sealed/${ROOM}?token=${token}`);
      scope.track(old);
      old.hello(1, g1);
      expect(await old.closed()).toBe(4410);
    });
  });

  it('a device of the new generation reconnecting to an instance that missed the delete is served the new room there from its cursor, not refused', async () => {
    await withCluster(async ({ a, b, token, cutB }) => {
      const room = `${ROOM}-newgen`;
      const onB = await device(b, token, 0, room); // keeps B's room loaded in g1
      const g1 = onB.generation;
      await cutB();
      await deleteRoom(a, room);
      // the device joins the new generation through A and writes entry 1 there
      const fresh = await device(a, token, 0, room);
      const g2 = fresh.generation;
      expect(g2).not.toBe(g1);
      fresh.c.update(1, env(7));
      await fresh.c.next('ack');
      fresh.c.close();

      // the same device (its cursor 1 in g2) reaches B: B drops its room of g1 (its device 4410) and serves g2
      const d = await RawSealed.connect(b.wsUrl, `/sealed/${room}?token=${token}`);
      scope.track(d);
      d.hello(1, g2);
      expect((await d.next('welcome')).generation).toBe(g2);
      expect((await d.next('caught-up')).seq).toBe(1);
      expect(d.messages.filter((m) => m.type === 'entry')).toEqual([]);
      expect(await onB.c.closed()).toBe(4410);
      const from = d.messages.length;
      d.update(2, env(8));
      expect(await d.next('ack', from)).toMatchObject({ id: 2, seq: 2 });
      expect(await stored(room)).toEqual([7, 8]);
    });
  });

  it('devices of the new generation reaching an instance that missed the delete at once: one still at its hello when another drops the room is closed 1012 (reconnects), not 4410', async () => {
    await withCluster(async ({ a, b, token, cutB }) => {
      const room = `${ROOM}-newgen-two`;
      const onB = await device(b, token, 0, room);
      await cutB();
      await deleteRoom(a, room);
      const fresh = await device(a, token, 0, room);
      const g2 = fresh.generation;
      fresh.c.update(1, env(7));
      await fresh.c.next('ack');
      fresh.c.close();

      // x's hello is held in its deleted-generation read, joined to B's room of g1, while y's drops that room
      const registryB = sealedRegistry(b.app);
      if (!registryB) throw new Error('no sealed registry');
      const { store } = registryB;
      const real = store.generationDeleted.bind(store);
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      holds.push(release);
      let enter!: () => void;
      const entered = new Promise<void>((r) => (enter = r));
      let first = true;
      store.generationDeleted = (name, generation) => {
        if (name !== room || !first) return real(name, generation);
        first = false;
        enter();
        return released.then(() => real(name, generation));
      };
      const x = await RawSealed.connect(b.wsUrl, `/sealed/${room}?token=${token}`);
      scope.track(x);
      x.hello(1, g2);
      await entered;
      const y = await RawSealed.connect(b.wsUrl, `/sealed/${room}?token=${token}`);
      scope.track(y);
      y.hello(1, g2);
      expect((await y.next('welcome')).generation).toBe(g2);
      expect(await onB.c.closed()).toBe(4410);
      expect(await x.closed()).toBe(1012);
      release();
      // x reconnects: served the new room from its cursor
      const again = await RawSealed.connect(b.wsUrl, `/sealed/${room}?token=${token}`);
      scope.track(again);
      again.hello(1, g2);
      expect((await again.next('welcome')).generation).toBe(g2);
      expect((await again.next('caught-up')).seq).toBe(1);
    });
  });

  it('after its Redis outage, an instance that missed a delete reads the generation again before the tail: its devices are closed 4410, never served the new room', async () => {
    await withCluster(async ({ a, b, token, cutB, mendB }) => {
      const onA = await device(a, token);
      const onB = await device(b, token); // reads only
      await firstEntry(onA.c, onB.c);

      await cutB();
      await deleteRoom(a);
      expect(await onA.c.closed()).toBe(4410);
      // the new room passes B's head (1): a tail read from it would find seq 2 and 3
      const fresh = await device(a, token);
      for (let i = 1; i <= 3; i++) fresh.c.update(i, env(10 + i));
      await fresh.c.wait(() => fresh.c.messages.filter((m) => m.type === 'ack').length === 3, 'three acks');

      const entriesBefore = onB.c.messages.filter((m) => m.type === 'entry').length;
      await mendB(); // B's subscriber comes back: it re-reads its rooms
      expect(await onB.c.closed(15_000)).toBe(4410);
      expect(onB.c.messages.filter((m) => m.type === 'entry').length).toBe(entriesBefore);
      const next = await device(b, token);
      expect(next.generation).toBe(fresh.generation);
      expect(next.c.messages.filter((m) => m.type === 'entry').length).toBe(3);
    });
  });

  it('a delete heard late on another instance leaves storage alone: the new generation\'s entries, written meanwhile, survive', async () => {
    await withCluster(async ({ a, b, token }) => {
      const room = `${ROOM}-late`;
      const onA = await device(a, token, 0, room);
      const onB = await device(b, token, 0, room);
      onA.c.update(1, env(1));
      await onA.c.next('ack');
      await onB.c.wait(() => onB.c.messages.some((m) => m.type === 'entry'), 'the entry on B');
      await deleteRoom(a, room);
      expect([await onA.c.closed(), await onB.c.closed()]).toEqual([4410, 4410]);
      // the room is written again through A, in its new generation
      const fresh = await device(a, token, 0, room);
      expect(fresh.generation).not.toBe(onA.generation);
      fresh.c.update(1, env(2));
      await fresh.c.next('ack');
      // B's purge of the delete runs now (its delete message held up, e.g. behind a slow commit):
      // what the admin bus calls on an instance the delete did not come to (sealed/admin-source.ts)
      await sealedRegistry(b.app)?.purge(room, false);
      expect(await stored(room)).toEqual([2]);
      expect((await device(b, token, 0, room)).generation).toBe(fresh.generation);
    });
  });

  it('a delete heard late on another instance keeps its devices welcomed meanwhile in the new generation: not closed, they write on and are acked', async () => {
    await withCluster(async ({ a, b, token }) => {
      const room = `${ROOM}-late-kept`;
      const onA = await device(a, token, 0, room);
      onA.c.update(1, env(1));
      await onA.c.next('ack');
      // B's handling of the delete is held up (its message late, e.g. behind a slow commit)
      const registryB = sealedRegistry(b.app);
      if (!registryB) throw new Error('no sealed registry');
      const late = holdCalls(room, registryB.purge.bind(registryB), (held) => (registryB.purge = held));
      const del = deleteRoom(a, room);
      expect(await onA.c.closed()).toBe(4410);
      const heard = (await late.entered).run; // A has purged storage and told B
      // a device joins on B before B handles the delete: the room loads there in the new generation
      const fresh = await device(b, token, 0, room);
      expect(fresh.generation).not.toBe(onA.generation);
      fresh.c.update(1, env(2));
      await fresh.c.next('ack');
      late.release();
      expect(await heard).toBe(0); // closed none
      const before = fresh.c.messages.length;
      fresh.c.update(2, env(3));
      expect(await fresh.c.next('ack', before)).toMatchObject({ id: 2, seq: 2 });
      expect(registryB.rooms.get(room)?.conns.size).toBe(1);
      expect(await stored(room)).toEqual([2, 3]);
      await del;
    });
  });

  it('a delete heard late on an instance whose room loaded before it: its device, whose generation is read after the delete, is served by a new load of the new room, and the late delete leaves it open', async () => {
    await withCluster(async ({ a, b, token }) => {
      const room = `${ROOM}-late-stale`;
      const onA = await device(a, token, 0, room);
      onA.c.update(1, env(1));
      await onA.c.next('ack');
      const registryB = sealedRegistry(b.app);
      if (!registryB) throw new Error('no sealed registry');
      const { store } = registryB;
      // B loads the room (head 1, read before the delete) but reads its generation after the delete
      const read = holdCalls(room, store.generation.bind(store), (held) => (store.generation = held));
      const late = holdCalls(room, registryB.purge.bind(registryB), (held) => (registryB.purge = held));
      const d = await RawSealed.connect(b.wsUrl, `/sealed/${room}?token=${token}`);
      scope.track(d);
      d.hello(0, 0);
      const welcomeRead = (await read.entered).run;
      expect(registryB.rooms.get(room)?.head).toBe(1);
      const del = deleteRoom(a, room);
      expect(await onA.c.closed()).toBe(4410);
      const heard = (await late.entered).run;
      read.release();
      await welcomeRead;
      const welcome = await d.next('welcome');
      expect(welcome.generation).not.toBe(onA.generation);
      expect(await d.next('caught-up')).toMatchObject({ seq: 0 });
      expect(registryB.rooms.get(room)?.head).toBe(0); // loaded again: not the deleted log's head
      late.release();
      expect(await heard).toBe(0); // closed none
      d.update(1, env(4));
      expect(await d.next('ack')).toMatchObject({ seq: 1 });
      expect(await stored(room)).toEqual([4]);
      await del;
    });
  });

  it('a delete of an empty room ends its generation: a device welcomed in it, on an instance that missed the delete, is refused and closed 4410', async () => {
    await withCluster(async ({ a, b, token, cutB }) => {
      const room = `${ROOM}-empty`;
      const onB = await device(b, token, 0, room); // welcomed before anything is stored
      expect(onB.generation).toBeGreaterThan(0);
      await cutB();
      await deleteRoom(a, room);
      onB.c.update(1, env(7));
      expect(await onB.c.closed(10_000)).toBe(4410);
      expect(onB.c.messages.filter((m) => m.type === 'ack')).toEqual([]);
      expect(await stored(room)).toEqual([]);
    });
  });

  it('a second delete of an emptied room, missed by an instance: its device, welcomed in the generation between the deletes, is refused and closed 4410', async () => {
    await withCluster(async ({ a, b, token, cutB }) => {
      const room = `${ROOM}-twice`;
      const onA = await device(a, token, 0, room);
      onA.c.update(1, env(1));
      await onA.c.next('ack');
      await deleteRoom(a, room);
      expect(await onA.c.closed()).toBe(4410);
      // welcomed on B in the emptied room; nothing is stored in that generation
      const onB = await device(b, token, 0, room);
      expect(onB.generation).not.toBe(onA.generation);
      await cutB();
      await deleteRoom(a, room); // the DELETE sent again; B does not hear it
      onB.c.update(1, env(2));
      expect(await onB.c.closed(10_000)).toBe(4410);
      expect(onB.c.messages.filter((m) => m.type === 'ack')).toEqual([]);
      expect(await stored(room)).toEqual([]);
    });
  });

  it('after its Redis outage, an instance whose generation read fails retries it, then fills the tail', async () => {
    await withCluster(async ({ a, b, token, cutB, mendB }) => {
      const room = `${ROOM}-retry`;
      const onA = await device(a, token, 0, room);
      const onB = await device(b, token, 0, room); // reads only
      await cutB();
      for (let i = 1; i <= 2; i++) onA.c.update(i, env(20 + i));
      await onA.c.wait(() => onA.c.messages.filter((m) => m.type === 'ack').length === 2, 'two acks');
      // B's first two reads of the generation fail (storage unreachable for a moment)
      const store = sealedRegistry(b.app)?.store;
      if (!store) throw new Error('no sealed store');
      const read = store.generation.bind(store);
      let failures = 0;
      store.generation = (name) => (name === room && failures++ < 2 ? Promise.reject(new Error('storage away (test)')) : read(name));
      await mendB();
      await onB.c.wait(() => onB.c.messages.filter((m) => m.type === 'entry').length === 2, 'the two entries on B', 15_000);
      expect(failures).toBeGreaterThanOrEqual(3);
    });
  });

  it('after its Redis outage, an instance that cannot read the generation at all closes the room\'s devices 1012 (they reconnect)', async () => {
    await withCluster(async ({ a, b, token, cutB, mendB }) => {
      const room = `${ROOM}-unread`;
      const onA = await device(a, token, 0, room);
      const onB = await device(b, token, 0, room);
      await cutB();
      onA.c.update(1, env(30));
      await onA.c.next('ack');
      const store = sealedRegistry(b.app)?.store;
      if (!store) throw new Error('no sealed store');
      const read = store.generation.bind(store);
      store.generation = (name) => (name === room ? Promise.reject(new Error('storage away (test)')) : read(name));
      await mendB();
      expect(await onB.c.closed(30_000)).toBe(1012);
      expect(onB.c.messages.filter((m) => m.type === 'entry')).toEqual([]);
      store.generation = read;
      const next = await device(b, token, onB.generation, room);
      expect(next.c.messages.filter((m) => m.type === 'entry').length).toBe(1);
    });
  });

  it('a write refused once a delete heard here dropped the room (its commit in flight): the device that joined since, in the new generation, stays open and is acked', async () => {
    await withCluster(async ({ a, b, token }) => {
      const room = `${ROOM}-refused-late`;
      const d1 = await device(b, token, 0, room);
      const registryB = sealedRegistry(b.app);
      if (!registryB) throw new Error('no sealed registry');
      const { store } = registryB;
      // B's commit of d1's update is in flight when A deletes the room
      const append = store.append.bind(store);
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      holds.push(release);
      let enter!: () => void;
      const entered = new Promise<void>((r) => (enter = r));
      store.append = (batches) => {
        if (!batches.some((batch) => batch.room === room)) return append(batches);
        enter();
        return released.then(() => append(batches));
      };
      // and B's reads of whether a generation was deleted (fenced() makes one before a drop) answer late
      const deletedReads = holdAll(room, store.generationDeleted.bind(store), (held) => (store.generationDeleted = held));
      d1.c.update(1, env(1));
      await entered;
      const del = deleteRoom(a, room);
      expect(await d1.c.closed()).toBe(4410); // B heard the delete: the room is out of B's table, its purge waits for the commit
      release(); // refused: d1's update names the deleted generation
      await del;
      store.append = append;
      // a device joins B (its load waits for B's purge, so for the refusal): the new room
      const d2 = await device(b, token, 0, room);
      expect(d2.generation).not.toBe(d1.generation);
      const closes: number[] = [];
      d2.c.ws.on('close', (code: number) => closes.push(code));
      d2.c.update(1, env(2));
      expect(await d2.c.next('ack')).toMatchObject({ id: 1, seq: 1 });
      deletedReads.release();
      await Promise.all(deletedReads.runs);
      const before = d2.c.messages.length;
      d2.c.update(2, env(3));
      await d2.c.wait(() => d2.c.ws.readyState === d2.c.ws.CLOSED || d2.c.messages.slice(before).some((m) => m.type === 'ack'), 'the ack of the second update, or a close');
      await new Promise((r) => setImmediate(r)); // the socket's 'close' listeners have run
      expect(closes).toEqual([]);
      expect(await d2.c.next('ack', before)).toMatchObject({ id: 2, seq: 2 });
      expect(await stored(room)).toEqual([2, 3]);
      expect(registryB.rooms.get(room)?.conns.size).toBe(1);
    });
  });

  it('a room loaded before a delete its instance did not hear of: a device of the new generation there gets every entry of the new log, and the one written through that instance reaches the others', async () => {
    await withCluster(async ({ a, b, token, cutB, mendB }) => {
      const room = `${ROOM}-stale-head`;
      const onA = await device(a, token, 0, room);
      for (let i = 1; i <= 3; i++) onA.c.update(i, env(i));
      await onA.c.wait(() => onA.c.messages.filter((m) => m.type === 'ack').length === 3, 'three acks');
      const registryB = sealedRegistry(b.app);
      if (!registryB) throw new Error('no sealed registry');
      const { store } = registryB;
      // B loads the room (head 3, in the generation about to be deleted); its device's generation read answers after the delete
      const read = holdCalls(room, store.generation.bind(store), (held) => (store.generation = held));
      const d = await RawSealed.connect(b.wsUrl, `/sealed/${room}?token=${token}`);
      scope.track(d);
      d.hello(0, 0);
      const generationRead = (await read.entered).run;
      expect(registryB.rooms.get(room)?.head).toBe(3);
      await cutB(); // B does not hear the delete
      await deleteRoom(a, room);
      expect(await onA.c.closed()).toBe(4410);
      read.release();
      await generationRead;
      const welcome = await d.next('welcome');
      expect(welcome.generation).not.toBe(onA.generation);
      expect(await d.next('caught-up')).toMatchObject({ seq: 0 });
      // the new log: entries 1 and 2 through A (B's Redis away: B reads them after its outage)
      const fresh = await device(a, token, 0, room);
      expect(fresh.generation).toBe(welcome.generation);
      for (let i = 1; i <= 2; i++) fresh.c.update(i, env(10 + i));
      await fresh.c.wait(() => fresh.c.messages.filter((m) => m.type === 'ack').length === 2, 'two acks');
      await mendB();
      // entry 3 through B, entry 4 through A
      const d2 = await device(b, token, welcome.generation, room);
      d2.c.update(1, env(20));
      expect(await d2.c.next('ack')).toMatchObject({ id: 1, seq: 3 });
      await fresh.c.wait(() => fresh.c.messages.some((m) => m.type === 'entry' && m.seq === 3), 'entry 3 on A');
      const sent = fresh.c.messages.length;
      fresh.c.update(3, env(13));
      expect(await fresh.c.next('ack', sent)).toMatchObject({ id: 3, seq: 4 });
      await d.wait(() => d.messages.some((m) => m.type === 'entry' && m.seq === 4), 'entry 4 on B', 15_000);
      expect(d.messages.flatMap((m) => (m.type === 'entry' ? [m.seq] : []))).toEqual([1, 2, 3, 4]);
      expect(await stored(room)).toEqual([11, 12, 20, 13]);
    });
  });
});

/** Like holdCalls, but every call naming `room` is held (until release) and its run kept. */
function holdAll<A extends unknown[], T>(room: string, call: (name: string, ...rest: A) => Promise<T>, install: (held: (name: string, ...rest: A) => Promise<T>) => void): { runs: Promise<T>[]; release(): void } {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const runs: Promise<T>[] = [];
  install((name, ...rest) => {
    if (name !== room) return call(name, ...rest);
    const run = released.then(() => call(name, ...rest));
    runs.push(run);
    return run;
  });
  holds.push(release);
  return { runs, release };
}
