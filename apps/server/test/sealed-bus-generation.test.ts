/**
 * Sealed entries and checks on the Redis bus name the generation they were committed in
 * (sealed/bus-payload.ts, fanout/bus-frame.ts SealedEntriesAt / SealedCheckAt), and an instance
 * applies only those of its room's generation (sealed/remote-intake.ts). Before, entries that
 * instance B committed just before an admin delete and published after it (B slow) reached the
 * room's new life on A by seq: its devices got the deleted room's envelopes as entries of the new
 * log, and the new log's own entries of those seqs never. Two instances on PostgreSQL and Redis
 * (two-instances.ts).
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeEnvelope, RawSealed } from '../../../test/fixtures/sealed-raw.js';
import { serverPerTest, type TestServer } from '../../../test/helpers/server.js';
import { eventually, withTimeout } from '../../../test/helpers/timeout.js';
import { BusKind, writeBusFrame, writeGenerationPayload } from '../src/fanout/bus-frame.js';
import { sealedRegistry } from '../src/routes/sealed/index.js';
import { writeEntriesPayload } from '../src/sealed/bus-payload.js';
import { schemaForThisFile } from './postgres-helpers.js';
import { deleteRoomOn, withCluster as withTwoInstances, type Cluster } from './two-instances.js';

const scope = serverPerTest();
afterEach(() => scope.close());

const ADMIN_TOKEN = 'admin-token-for-the-sealed-bus-generation-tests';
const schema = schemaForThisFile('sbusgen');
/** envelopes told apart by their first bytes */
const env = (n: number): Uint8Array => fakeEnvelope([n, 0xbb, n, 0xbb]);
/** releases of what a test holds, and connections it opens, run before the instances close */
const cleanup: Array<() => unknown> = [];

async function runCleanup(): Promise<void> {
  for (const f of cleanup.splice(0).reverse()) await f();
}

/** A and B (two-instances.ts); what a test held or opened is released before they close. */
function withCluster(body: (cluster: Cluster) => Promise<void>): Promise<void> {
  return withTwoInstances({ schema, adminToken: ADMIN_TOKEN, beforeClose: runCleanup }, body);
}

async function device(server: TestServer, token: string, room: string): Promise<{ c: RawSealed; generation: number | undefined }> {
  const c = await RawSealed.connect(server.wsUrl, `/sealed/${room}?token=${token}`);
  scope.track(c);
  c.hello(0, 0); // 0: a device that names no generation yet, and is told the room's
  const welcome = await c.next('welcome');
  await c.next('caught-up');
  return { c, generation: welcome.generation };
}

/** The entries `c` was sent, as [seq, first byte of the envelope]. */
function entriesOf(c: RawSealed): Array<[number, number]> {
  return c.messages.flatMap((m) => (m.type === 'entry' ? [[m.seq, m.envelope[0] as number] as [number, number]] : []));
}

async function storageErrors(server: TestServer, op: string): Promise<number> {
  const { values } = await server.app.sync.metrics.storageErrors.get();
  return values.filter((v) => v.labels['op'] === op).reduce((n, v) => n + v.value, 0);
}

/** Holds `server`'s publishing of committed entries (an event-loop stall after its commit) until release(). */
function holdEntriesPublish(server: TestServer): { entered: Promise<void>; release: () => void } {
  const remote = (sealedRegistry(server.app) as unknown as { remote: { entries: (...args: unknown[]) => void } }).remote;
  const original = remote.entries.bind(remote);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let enter!: () => void;
  const entered = new Promise<void>((r) => (enter = r));
  let first = true;
  remote.entries = (...args: unknown[]) => {
    if (!first) return original(...args);
    first = false;
    enter();
    void gate.then(() => original(...args));
  };
  cleanup.push(() => release());
  return { entered: withTimeout(entered, 10_000, "B's commit"), release };
}

describe('sealed bus messages and the room generation', () => {
  it('entries committed on B just before a delete and published after it never reach the new room on A', async () => {
    await withCluster(async ({ a, b, token }) => {
      const room = 'acme-conversation-sealed-bus-held';
      const onA = await device(a, token, room);
      const onB = await device(b, token, room);
      const g1 = onA.generation;
      onA.c.update(1, env(1));
      await onA.c.next('ack');
      await onB.c.wait(() => entriesOf(onB.c).length === 1, 'entry 1 on B');

      // B commits seq 2 of g1; its publishing is held up
      const held = holdEntriesPublish(b);
      onB.c.update(1, env(2));
      await onB.c.next('ack');
      await held.entered;

      await deleteRoomOn(a, room, ADMIN_TOKEN);
      expect([await onA.c.closed(), await onB.c.closed()]).toEqual([4410, 4410]);

      // the new room on A: entry 1 of g2
      const fresh = await device(a, token, room);
      const witness = await device(a, token, room);
      expect(fresh.generation).not.toBe(g1);
      fresh.c.update(1, env(11));
      await fresh.c.next('ack');
      await witness.c.wait(() => entriesOf(witness.c).length === 1, 'entry 1 of the new room');
      // B holds the new room too: its next commit is published after the held one, on the same connection
      const onBAgain = await device(b, token, room);
      expect(onBAgain.generation).toBe(fresh.generation);

      held.release();
      onBAgain.c.update(1, env(12));
      await onBAgain.c.next('ack');
      await witness.c.wait(() => entriesOf(witness.c).some(([seq]) => seq >= 2), 'entry 2 of the new room on A');
      // exactly the new room's entries, in order: nothing of the deleted room
      expect(entriesOf(witness.c)).toEqual([[1, 11], [2, 12]]);
      expect(entriesOf(fresh.c)).toEqual([[2, 12]]); // entry 1 was its own: acked

      // dropped, counted, one warning (never an error line)
      await eventually(async () => (await storageErrors(a, 'sealed_stale_entries')) === 1, 5000, 'the stale entries counted');
      expect(a.logs.filter((l) => l['room'] === room && String(l['msg']).startsWith('sealed entries from another instance of a deleted generation')).map((l) => l['level'])).toEqual([40]);
      expect([...a.logs, ...b.logs].filter((l) => Number(l['level']) >= 50)).toEqual([]);
    });
  });

  it('entries of a generation storage moved to (a delete this instance missed) make the room re-read and dropped, its devices closed 4410, not served them', async () => {
    await withCluster(async ({ b, token }) => {
      const room = 'acme-conversation-sealed-bus-newer';
      const onB = await device(b, token, room);
      onB.c.update(1, env(1));
      await onB.c.next('ack');
      // a delete B never hears of: storage alone moves on
      const store = (sealedRegistry(b.app) as NonNullable<ReturnType<typeof sealedRegistry>>).store;
      await store.purgeRoom(room);
      const g2 = (await store.generation(room)).current;
      expect(g2).not.toBe(onB.generation);

      // entry 1 of the new room, from an instance B never heard of the delete through
      const redis = new Redis(b.config.REDIS_URL as string);
      cleanup.push(() => redis.quit());
      const payload = Buffer.concat([Uint8Array.of(BusKind.SealedEntries), writeEntriesPayload(1, [env(21)])]);
      await redis.publish(`${b.config.REDIS_PREFIX}sealed:${room}`, writeBusFrame(BusKind.SealedAt, randomBytes(16), writeGenerationPayload(g2, payload)));
      expect(await onB.c.closed(10_000)).toBe(4410);
      expect(entriesOf(onB.c)).toEqual([]);
      expect(await storageErrors(b, 'sealed_stale_entries')).toBe(0);
    });
  });

  it('entries of the version before (no generation) are still applied (rolling upgrade)', async () => {
    await withCluster(async ({ a, token }) => {
      const room = 'acme-conversation-sealed-bus-previous';
      const onA = await device(a, token, room);
      onA.c.update(1, env(1));
      await onA.c.next('ack');
      const witness = await device(a, token, room);
      expect(entriesOf(witness.c)).toEqual([[1, 1]]);

      // what an instance of the version before publishes after committing seq 2
      const redis = new Redis(a.config.REDIS_URL as string);
      cleanup.push(() => redis.quit());
      const frame = writeBusFrame(BusKind.SealedEntries, randomBytes(16), writeEntriesPayload(2, [env(2)]));
      expect(await redis.publish(`${a.config.REDIS_PREFIX}sealed:${room}`, frame)).toBeGreaterThanOrEqual(1);
      await witness.c.wait(() => entriesOf(witness.c).length === 2, 'the entry of the version before');
      expect(entriesOf(witness.c)).toEqual([[1, 1], [2, 2]]);
      expect(await storageErrors(a, 'sealed_stale_entries')).toBe(0);
      expect(a.logs.filter((l) => String(l['msg']).includes('malformed'))).toEqual([]);
    });
  });
});
