/**
 * Admin deletes of plain relay rooms across instances (PostgreSQL + Redis), when the delete's
 * message reaches instance B late: the room was deleted on A and written again through A
 * meanwhile. Only the instance the DELETE came to touches storage (relay/admin-source.ts): B's
 * late handling closes its sockets of the room 4410 and drops what it held uncommitted, and the
 * new room's updates stay stored (before, B's own purge deleted them). When B never hears of the
 * delete, the room's generation fences it (relay/persistence/types.ts): B's next write of the
 * deleted room is refused by storage, or its re-read after the outage finds the room moved on,
 * and B drops the room as if told (relay/room-registry.ts fenced).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { firstCloseCode, stockClient, synced, textOf, type StockClient } from '../../../test/fixtures/relay-clients.js';
import type { TestServer } from '../../../test/helpers/server.js';
import { schemaForThisFile } from './postgres-helpers.js';
import { deleteRoomOn, storageErrors, storedText, withCluster as withTwoInstances, write, type Cluster } from './two-instances.js';

const ADMIN_TOKEN = 'admin-token-for-the-relay-delete-tests';
const ROOM = 'acme-conversation-relay-delete';
const schema = schemaForThisFile('rdel');

const cleanup: Array<() => unknown> = [];
async function runCleanup(): Promise<void> {
  for (const f of cleanup.splice(0).reverse()) await f();
}
afterEach(runCleanup);

/**
 * A and B (two-instances.ts), B with its own settings `bEnv`; the clients are closed
 * before the instances (they would reconnect).
 */
function withCluster(bEnv: Record<string, string>, body: (cluster: Cluster) => Promise<void>): Promise<void> {
  return withTwoInstances({ schema, adminToken: ADMIN_TOKEN, env: { ROOM_IDLE_MS: '60000' }, bEnv, beforeClose: runCleanup }, body);
}

function client(server: TestServer, room: string, token: string): StockClient {
  const c = stockClient(3, server.wsUrl, room, { token });
  cleanup.push(() => c.destroy());
  return c;
}

/** A synced client on `server`. */
async function joined(server: TestServer, room: string, token: string): Promise<StockClient> {
  const c = client(server, room, token);
  await synced(c.p);
  return c;
}

/** The admin delete of the room, made on `server`. */
function deleteRoom(server: TestServer, room: string): Promise<void> {
  return deleteRoomOn(server, room, ADMIN_TOKEN);
}

/** `server`'s log lines about `room` whose message starts with `start` */
function linesAbout(server: TestServer, room: string, start: string): Array<Record<string, unknown>> {
  return server.logs.filter((l) => l['room'] === room && String(l['msg']).startsWith(start));
}

/**
 * B's Redis cable cut, the room deleted on A (`onA` closed 4410 there), then written again
 * through A ("new life") and committed: B missed the delete.
 */
async function deletedAndWrittenAgain(cluster: Cluster, room: string, onA: StockClient): Promise<void> {
  const { a, token } = cluster;
  await cluster.cutB();
  const closedOnA = firstCloseCode(onA);
  await deleteRoom(a, room);
  expect(await closedOnA).toBe(4410);
  const fresh = await joined(a, room, token);
  const witness = await joined(a, room, token);
  await write(fresh, witness, 'new life');
  await a.app.relayRooms.drain();
}

/** The close codes `c` gets from now on (none: still open). */
function closeCodes(c: StockClient): number[] {
  const codes: number[] = [];
  (c.p as unknown as { on(e: 'connection-close', f: (ev: { code: number } | null) => void): void }).on('connection-close', (ev) => codes.push(ev?.code ?? 0));
  return codes;
}

/**
 * Holds B's handling of admin bus messages (a busy event loop, a slow link) until `release()`:
 * `arrived` resolves once a message reached B (A purged storage before sending it: admin/hub.ts
 * deleteRoom), `handled` with B's answer once B has carried it out.
 */
function holdAdminMessages(server: TestServer): { arrived: Promise<unknown>; handled: Promise<unknown>; release: () => void } {
  const admin = server.app.sync.admin as unknown as { handle: (op: unknown) => Promise<unknown> };
  const original = admin.handle.bind(admin);
  let release!: () => void;
  let arrive!: (op: unknown) => void;
  let handle!: (answer: unknown) => void;
  const gate = new Promise<void>((r) => (release = r));
  const arrived = new Promise<unknown>((r) => (arrive = r));
  const handled = new Promise<unknown>((r) => (handle = r));
  admin.handle = async (op) => {
    arrive(op);
    await gate;
    admin.handle = original;
    const answer = await original(op);
    handle(answer);
    return answer;
  };
  return { arrived, handled, release };
}

describe('relay room deletes across instances', () => {
  it('a delete heard late keeps the room the other instance loaded after the purge: its clients stay open, their edits are stored, and the DELETE counts only the sockets it closed; a message without a generation drops it as before', async () => {
    // B's updates wait in its commit window (PERSIST_FLUSH_MS / 2): uncommitted when the message comes
    await withCluster({ PERSIST_FLUSH_MS: '120000' }, async ({ a, b, token }) => {
      const room = `${ROOM}-new-life`;
      const onA = await joined(a, room, token);
      const witnessA = await joined(a, room, token);
      await write(onA, witnessA, 'deleted life');
      await a.app.relayRooms.drain();

      const held = holdAdminMessages(b);
      const closedOnA = Promise.all([onA, witnessA].map((c) => firstCloseCode(c)));
      const answer = fetch(`${a.url}/admin/rooms/${room}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }).then((r) => r.json());
      expect(await closedOnA).toEqual([4410, 4410]);
      // A purged storage and sent the message; B has not handled it yet
      const op = await held.arrived;
      const relayGeneration = (await a.app.relayRooms.store.load(room)).generation;
      expect(relayGeneration).toBeGreaterThan(0);
      expect(op).toMatchObject({ op: 'delete', room, relayGeneration });

      // clients join the new room through B (one reconnecting right after its 4410 on A) and write
      const fresh = await joined(b, room, token);
      const witnessB = await joined(b, room, token);
      expect(textOf(fresh.doc)).toBe('');
      expect(b.app.relayRooms.rooms.get(room)?.generation).toBe(relayGeneration);
      const codes = [fresh, witnessB].map(closeCodes);
      await write(fresh, witnessB, 'new life');
      expect(b.app.relayRooms.persist.hasPending(room)).toBe(true);

      // the message is handled now: B's room is the new one, and stays
      held.release();
      expect(await held.handled).toEqual({ closed: 0 });
      expect(await answer).toEqual({ deleted: true, closed: 2, instances: 2 });
      expect(b.app.relayRooms.persist.hasPending(room)).toBe(true);
      // still open after the handling: an edit made now goes through B
      await write(fresh, witnessB, ', typed on B');
      expect(codes).toEqual([[], []]);
      await b.app.relayRooms.drain();
      expect(await storedText(a, room)).toBe('new life, typed on B');

      // a message from an instance of the version before (no generation) drops the room as before
      await write(fresh, witnessB, ' (dropped)');
      const closedOnB = Promise.all([fresh, witnessB].map((c) => firstCloseCode(c)));
      expect(await b.app.sync.admin.handle({ op: 'delete', room })).toEqual({ closed: 2 });
      expect(await closedOnB).toEqual([4410, 4410]);
      expect(b.app.relayRooms.persist.hasPending(room)).toBe(false);
      await b.app.relayRooms.drain();
      expect(await storedText(a, room)).toBe('new life, typed on B');
    });
  });


  it('an instance that never hears of the delete has its next write of the deleted room refused: nothing of it is stored, its clients get 4410, and it serves the new room after', async () => {
    await withCluster({}, async (cluster) => {
      const { a, b, token, mendB } = cluster;
      const room = `${ROOM}-fenced`;
      const onA = await joined(a, room, token);
      const onB = await joined(b, room, token);
      const witnessB = await joined(b, room, token);
      await write(onA, onB, 'deleted life');
      await a.app.relayRooms.drain();

      // B's Redis cable is cut: the delete's message never reaches it
      await deletedAndWrittenAgain(cluster, room, onA);

      // B's client writes on in the deleted room (a text of its own, so that storage would show
      // it): B's commit names the generation B loaded, and is refused
      const closedOnB = Promise.all([onB, witnessB].map((c) => firstCloseCode(c)));
      await write(onB, witnessB, 'stale', 'notes');
      expect(await closedOnB).toEqual([4410, 4410]);
      expect(await storageErrors(b, 'relay_fenced')).toBeGreaterThanOrEqual(1);
      // one warning for the room, never an error line (a client's write brought it about)
      expect(linesAbout(b, room, 'relay write refused for its generation').map((l) => l['level'])).toEqual([40]);
      expect(b.logs.filter((l) => l['room'] === room && Number(l['level']) >= 50)).toEqual([]);
      expect(b.app.relayRooms.persist.hasPending(room)).toBe(false);
      await b.app.relayRooms.drain();
      expect([await storedText(a, room), await storedText(a, room, 'notes')]).toEqual(['new life', '']);

      await mendB();
      const onBAgain = await joined(b, room, token);
      expect([textOf(onBAgain.doc), textOf(onBAgain.doc, 'notes')]).toEqual(['new life', '']);
      expect([await storedText(a, room), await storedText(a, room, 'notes')]).toEqual(['new life', '']);
    });
  });

  it('an instance that never hears of the delete finds the room moved on when its Redis link is back: its clients get 4410 without writing', async () => {
    await withCluster({}, async (cluster) => {
      const { a, b, token, mendB } = cluster;
      const room = `${ROOM}-moved`;
      const onA = await joined(a, room, token);
      const onB = await joined(b, room, token);
      await write(onA, onB, 'deleted life');
      await a.app.relayRooms.drain();

      await deletedAndWrittenAgain(cluster, room, onA);

      // B's link back: it re-reads the rooms it holds (relay/remote-intake.ts) and finds this one in another generation
      const closedOnB = firstCloseCode(onB, 20_000); // Redis reconnects on its own back-off
      await mendB();
      expect(await closedOnB).toBe(4410);
      expect(linesAbout(b, room, 'relay room in another generation').map((l) => l['level'])).toEqual([40]);
      const onBAgain = await joined(b, room, token);
      expect(textOf(onBAgain.doc)).toBe('new life');
      expect(await storedText(a, room)).toBe('new life');
    });
  });

  it('a delete heard late on another instance leaves storage alone: the new room\'s updates, written through A meanwhile, survive and B serves them', async () => {
    await withCluster({}, async ({ a, b, token }) => {
      const room = `${ROOM}-late`;
      const onA = await joined(a, room, token);
      const onB = await joined(b, room, token);
      await write(onA, onB, 'deleted life');
      await a.app.relayRooms.drain();
      const closes = Promise.all([onA, onB].map((c) => firstCloseCode(c)));
      await deleteRoom(a, room);
      expect(await closes).toEqual([4410, 4410]);

      // the room is written again through A, and committed
      const fresh = await joined(a, room, token);
      const witness = await joined(a, room, token);
      expect(textOf(fresh.doc)).toBe('');
      await write(fresh, witness, 'new life');
      await a.app.relayRooms.drain();
      expect(await storedText(a, room)).toBe('new life');

      // B's handling of the delete runs now (its message held up): what the admin bus calls on B
      expect(await b.app.sync.admin.handle({ op: 'delete', room })).toEqual({ closed: 0 });
      expect(await storedText(a, room)).toBe('new life');
      const onBAgain = await joined(b, room, token);
      expect(textOf(onBAgain.doc)).toBe('new life');
    });
  });

  it('an instance that missed the delete, told late, drops what it held uncommitted of the deleted room: the new room gets none of it', async () => {
    // B's updates wait in its commit window (PERSIST_FLUSH_MS / 2) long enough to be dropped
    await withCluster({ PERSIST_FLUSH_MS: '120000' }, async ({ a, b, token, cutB, mendB }) => {
      const room = `${ROOM}-missed`;
      const onA = await joined(a, room, token);
      const onB = await joined(b, room, token);
      const witnessB = await joined(b, room, token);
      await write(onA, onB, 'deleted life');
      await a.app.relayRooms.drain();

      // B's Redis cable is cut: the delete's message never reaches it, its clients stay
      await cutB();
      const closedOnA = firstCloseCode(onA);
      await deleteRoom(a, room);
      expect(await closedOnA).toBe(4410);
      // B's client writes on in the deleted room: accepted, not committed yet (in a text of its
      // own: it applies without the deleted content, so storage would show it)
      await write(onB, witnessB, 'stale', 'notes');
      expect(b.app.relayRooms.persist.hasPending(room)).toBe(true);
      // the room is written again through A, and committed
      const fresh = await joined(a, room, token);
      const witness = await joined(a, room, token);
      await write(fresh, witness, 'new life');
      await a.app.relayRooms.drain();

      // B is told late (what the admin bus calls on B, with the generation A's purge moved the
      // room to): B's room is of the one before, its sockets closed 4410, its uncommitted updates dropped
      const closedOnB = Promise.all([onB, witnessB].map((c) => firstCloseCode(c)));
      const relayGeneration = (await a.app.relayRooms.store.load(room)).generation;
      expect(b.app.relayRooms.rooms.get(room)?.generation).toBeLessThan(relayGeneration);
      expect(await b.app.sync.admin.handle({ op: 'delete', room, relayGeneration })).toEqual({ closed: 2 });
      expect(await closedOnB).toEqual([4410, 4410]);
      expect(b.app.relayRooms.persist.hasPending(room)).toBe(false);
      await b.app.relayRooms.drain();
      expect([await storedText(a, room), await storedText(a, room, 'notes')]).toEqual(['new life', '']);

      await mendB();
      const onBAgain = await joined(b, room, token);
      expect([textOf(onBAgain.doc), textOf(onBAgain.doc, 'notes')]).toEqual(['new life', '']);
    });
  });
});
