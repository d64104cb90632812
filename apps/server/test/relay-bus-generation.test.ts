/**
 * Relay update messages on the Redis bus name the generation they were committed in
 * (fanout/bus-frame.ts RelayUpdateAt; RelayUpdate for generation 0, as the version before sends
 * every update), and an instance applies only those of the generation its copy of the room loaded
 * in (relay/remote-intake.ts). Before, a commit made just before an admin delete and published
 * after it (the publishing instance slow, or the message late) was applied to the room's new life
 * on the instance holding it and stored there by its next compaction: deleted text came back.
 * Two instances on PostgreSQL and Redis (two-instances.ts).
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import * as Y from 'yjs';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeRelayMessage, writeRelayUpdate } from '@sync-suite/shared';
import { docUntil, firstCloseCode, stockClient, synced, textOf, type StockClient } from '../../../test/fixtures/relay-clients.js';
import type { TestServer } from '../../../test/helpers/server.js';
import { holdFirstCall } from '../../../test/helpers/hold-call.js';
import { eventually, withTimeout } from '../../../test/helpers/timeout.js';
import { BusKind, readBusFrame, readGenerationPayload, writeBusFrame, writeGenerationPayload } from '../src/fanout/bus-frame.js';
import type { DocStoreAdmin } from '../src/relay/persistence/types.js';
import { schemaForThisFile } from './postgres-helpers.js';
import { deleteRoomOn, storageErrors, storedText, withCluster, write } from './two-instances.js';

const ADMIN_TOKEN = 'admin-token-for-the-relay-bus-generation-tests';
const schema = schemaForThisFile('rbusgen');
const cleanup: Array<() => unknown> = [];
async function runCleanup(): Promise<void> {
  for (const f of cleanup.splice(0).reverse()) await f();
}
afterEach(runCleanup);

/** A and B evict a room 400 ms after its last client left (then compact it). */
function cluster(body: Parameters<typeof withCluster>[1]): Promise<void> {
  return withCluster({ schema, adminToken: ADMIN_TOKEN, env: { ROOM_IDLE_MS: '400' }, beforeClose: runCleanup }, body);
}

async function joined(server: TestServer, room: string, token: string): Promise<StockClient> {
  const c = stockClient(3, server.wsUrl, room, { token });
  cleanup.push(() => c.destroy());
  await synced(c.p);
  return c;
}

/** A Redis connection of the test's own, closed at cleanup. */
function redisOf(server: TestServer): Redis {
  const redis = new Redis(server.config.REDIS_URL as string);
  cleanup.push(() => redis.quit());
  return redis;
}

function channelOf(server: TestServer, room: string): string {
  return `${server.config.REDIS_PREFIX}relay:${room}`;
}

/** An update inserting `text` into text `name` of a document of its own. */
function updateWith(text: string, name = 'text'): Uint8Array {
  const doc = new Y.Doc();
  doc.getText(name).insert(0, text);
  const update = Y.encodeStateAsUpdate(doc);
  doc.destroy();
  return update;
}

/** An update message from an instance that is not there: RelayUpdate (no generation told), or RelayUpdateAt `generation`. */
function updateFrame(update: Uint8Array, generation?: number): Buffer {
  const message = encodeRelayMessage((e) => writeRelayUpdate(e, update));
  return generation === undefined
    ? writeBusFrame(BusKind.RelayUpdate, randomBytes(16), message)
    : writeBusFrame(BusKind.RelayUpdateAt, randomBytes(16), writeGenerationPayload(generation, message));
}

/** Resolves once `server` has compacted `room` (after its eviction). */
function compactedOn(server: TestServer, room: string): Promise<void> {
  const done = new Promise<void>((resolve) => {
    const listener = (name: string): void => {
      if (name !== room) return;
      server.app.relayRooms.off('compacted', listener);
      resolve();
    };
    server.app.relayRooms.on('compacted', listener);
  });
  return withTimeout(done, 10_000, `compaction of ${room}`);
}

function generationOn(server: TestServer, room: string): number | undefined {
  return server.app.relayRooms.rooms.get(room)?.generation;
}

describe('relay update messages and the room generation', () => {
  it('a message of the deleted room that reaches the new one is not applied: its clients never get it, and its compaction never stores it', async () => {
    await cluster(async ({ a, b, token }) => {
      const room = 'acme-conversation-bus-gen-late-frame';
      const onA = await joined(a, room, token);
      const witnessA = await joined(a, room, token);
      await write(onA, witnessA, 'deleted life ');
      await a.app.relayRooms.drain();
      // what A committed of the deleted room, in generation 0: published as RelayUpdate
      const oldUpdate = Y.encodeStateAsUpdate(onA.doc);

      const closedOnA = firstCloseCode(onA);
      await deleteRoomOn(a, room, ADMIN_TOKEN);
      expect(await closedOnA).toBe(4410);

      const fresh = await joined(b, room, token);
      const witnessB = await joined(b, room, token);
      await write(fresh, witnessB, 'new life');
      await b.app.relayRooms.drain();
      expect(generationOn(b, room)).toBe(1);

      // the deleted room's message arrives late on the room's channel, then one of the new room's
      const redis = redisOf(a);
      expect(await redis.publish(channelOf(a, room), updateFrame(oldUpdate))).toBeGreaterThanOrEqual(1);
      await redis.publish(channelOf(a, room), updateFrame(updateWith('marker', 'notes'), 1));
      await docUntil(witnessB.doc, () => textOf(witnessB.doc, 'notes') === 'marker', 10_000, 'the new room\'s message');
      expect.soft(textOf(witnessB.doc)).toBe('new life'); // soft: storage is checked too

      // the clients leave; B evicts the room and compacts from its live document
      const compacted = compactedOn(b, room);
      await runCleanup();
      await compacted;
      expect([await storedText(a, room), await storedText(a, room, 'notes')]).toEqual(['new life', 'marker']);
      expect(b.logs.filter((l) => Number(l['level']) >= 50)).toEqual([]);
    });
  });

  it.each([
    { before: 0, sent: 'RelayUpdate (generation 0)' },
    { before: 1, sent: 'RelayUpdateAt (generation 1)' },
  ])('a commit made on B just before the delete and published after it ($sent) never reaches the new room on A', async ({ before }) => {
    await cluster(async ({ a, b, token }) => {
      const room = `acme-conversation-bus-gen-held-${before}`;
      for (let i = 0; i < before; i++) await deleteRoomOn(a, room, ADMIN_TOKEN);
      const onA = await joined(a, room, token);
      const onB = await joined(b, room, token);
      await write(onA, onB, 'deleted life ');
      await a.app.relayRooms.drain();
      expect(generationOn(b, room)).toBe(before);

      // B's publishing after its commits is held up (an event-loop stall right after the commit)
      const fanout = (b.app.relayRooms as unknown as { opts: { fanout: { committed: (...args: unknown[]) => void } } }).opts.fanout;
      const original = fanout.committed.bind(fanout);
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      cleanup.push(() => release());
      let held!: () => void;
      const heldOne = new Promise<void>((r) => (held = r));
      fanout.committed = (...args: unknown[]) => {
        held();
        void gate.then(() => original(...args));
      };
      onB.doc.getText('notes').insert(0, 'written just before the delete');
      await withTimeout(heldOne, 10_000, "B's commit");

      const closed = Promise.all([onA, onB].map((c) => firstCloseCode(c)));
      await deleteRoomOn(a, room, ADMIN_TOKEN);
      expect(await closed).toEqual([4410, 4410]);

      const fresh = await joined(a, room, token);
      const witness = await joined(a, room, token);
      await write(fresh, witness, 'new life');
      await a.app.relayRooms.drain();
      expect(generationOn(a, room)).toBe(before + 1);
      // B holds the new room too: its next publish follows the held one on the same connection
      const onBAgain = await joined(b, room, token);
      expect(generationOn(b, room)).toBe(before + 1);

      release();
      await write(onBAgain, witness, 'marker');
      // soft: what storage holds after the compaction is checked too
      expect.soft(textOf(witness.doc, 'notes')).toBe('');
      expect.soft(textOf(onBAgain.doc, 'notes')).toBe('');
      if (before > 0) {
        // a generation below the room's: dropped, counted, one warning (never an error line)
        await eventually(async () => (await storageErrors(a, 'relay_stale_update')) === 1, 5000, 'the stale update counted');
        expect(a.logs.filter((l) => l['room'] === room && String(l['msg']).startsWith('relay update from another instance of a deleted generation')).map((l) => l['level'])).toEqual([40]);
      }
      expect(a.logs.filter((l) => Number(l['level']) >= 50)).toEqual([]);

      // the clients leave; A evicts the room and compacts from its live document
      const compacted = compactedOn(a, room);
      await runCleanup();
      await compacted;
      expect([await storedText(a, room), await storedText(a, room, 'notes')]).toEqual(['new lifemarker', '']);
    });
  });

  it('messages that arrive while the room loads are checked against the generation the load read', async () => {
    await cluster(async ({ a, b, token }) => {
      const room = 'acme-conversation-bus-gen-loading';
      await deleteRoomOn(a, room, ADMIN_TOKEN);
      await deleteRoomOn(a, room, ADMIN_TOKEN);
      // B's read of the room (generation 2) is held once answered: B is subscribed, the room not yet loaded
      const store = b.app.relayRooms.store as unknown as Record<'load', (...args: never[]) => Promise<unknown>>;
      const read = holdFirstCall(store, 'load', (closer) => cleanup.push(() => closer.close()));
      const joining = joined(b, room, token);
      await withTimeout(read.entered, 10_000, "B's read of the room");
      const redis = redisOf(a);
      await redis.publish(channelOf(a, room), updateFrame(updateWith('of generation 1', 'notes'), 1));
      await redis.publish(channelOf(a, room), updateFrame(updateWith('marker'), 2));
      read.release();
      const onB = await joining;
      expect(generationOn(b, room)).toBe(2);
      await docUntil(onB.doc, () => textOf(onB.doc) === 'marker', 10_000, 'the message of generation 2');
      expect(textOf(onB.doc, 'notes')).toBe('');
      expect(await storageErrors(b, 'relay_stale_update')).toBe(1);
    });
  });

  it('a message of a newer generation drops the room on an instance that missed the delete (4410), which then loads the new room', async () => {
    await cluster(async ({ a, b, token }) => {
      const room = 'acme-conversation-bus-gen-newer';
      const onB = await joined(b, room, token);
      const witnessB = await joined(b, room, token);
      await write(onB, witnessB, 'deleted life');
      await b.app.relayRooms.drain();
      // the room purged in storage with nobody told (as when B misses the delete's message), then
      // written again through another instance, in generation 1
      await (a.app.relayRooms.store as unknown as DocStoreAdmin).purgeRoom(room);
      const newer = updateWith('new life');
      expect(await a.app.relayRooms.store.append([{ room, updates: [newer], generation: 1 }])).toEqual([]);
      const closed = Promise.all([onB, witnessB].map((c) => firstCloseCode(c)));
      await redisOf(a).publish(channelOf(a, room), updateFrame(newer, 1));
      expect(await closed).toEqual([4410, 4410]);
      expect(b.logs.filter((l) => l['room'] === room && String(l['msg']).startsWith('relay room in another generation')).map((l) => l['level'])).toEqual([40]);
      const again = await joined(b, room, token);
      expect(generationOn(b, room)).toBe(1);
      expect(textOf(again.doc)).toBe('new life');
      await b.app.relayRooms.drain();
      expect(await storedText(a, room)).toBe('new life');
    });
  });

  it('an update inside an awareness message (no generation to check) is not applied: the room reads storage instead', async () => {
    await cluster(async ({ a, token }) => {
      const room = 'acme-conversation-bus-gen-awareness-kind';
      const first = await joined(a, room, token);
      const closed = firstCloseCode(first);
      await deleteRoomOn(a, room, ADMIN_TOKEN);
      expect(await closed).toBe(4410);
      const onA = await joined(a, room, token);
      expect(generationOn(a, room)).toBe(1);
      const redis = redisOf(a);
      const message = (text: string): Uint8Array => encodeRelayMessage((e) => writeRelayUpdate(e, updateWith(text, 'notes')));
      // Redis keeps a channel's order: once the marker (current generation) is on the client, the
      // message before it has been handled
      await redis.publish(channelOf(a, room), writeBusFrame(BusKind.RelayAwareness, randomBytes(16), message('deleted life via awareness')));
      await redis.publish(channelOf(a, room), updateFrame(updateWith('marker', 'text'), 1));
      await docUntil([onA.doc], () => textOf(onA.doc) === 'marker');
      expect(textOf(onA.doc, 'notes')).toBe('');
    });
  });

  it('rolling upgrade: generation 0 goes out as the version before sends it, and messages without a generation are still applied', async () => {
    await cluster(async ({ a, b, token }) => {
      const room = 'acme-conversation-bus-gen-upgrade';
      const sub = redisOf(a);
      const frames: Buffer[] = [];
      sub.on('messageBuffer', (_channel: Buffer, message: Buffer) => frames.push(message));
      await sub.subscribe(channelOf(a, room));
      const redis = redisOf(a);
      const instanceA = (await a.app.redisLink)?.instance;
      /** the update frames A published, as [kind, generation] */
      const fromA = (): Array<[number, number | null]> =>
        frames.flatMap((m): Array<[number, number | null]> => {
          const read = readBusFrame(m);
          if (!read.ok || !instanceA || !read.frame.instance.equals(instanceA)) return [];
          if (read.frame.kind === BusKind.RelayUpdate) return [[read.frame.kind, null]];
          if (read.frame.kind === BusKind.RelayUpdateAt) return [[read.frame.kind, readGenerationPayload(read.frame.payload)?.generation ?? -1]];
          return [];
        });

      const onA = await joined(a, room, token);
      const onB = await joined(b, room, token);
      await write(onA, onB, 'first life');
      await eventually(async () => fromA().length > 0, 5000, "A's update message");
      expect(fromA()).toEqual([[BusKind.RelayUpdate, null]]);
      // an instance of the version before publishes without a generation: applied
      await redis.publish(channelOf(a, room), updateFrame(updateWith('from an older instance', 'notes')));
      await docUntil([onA.doc, onB.doc], () => textOf(onA.doc, 'notes') === 'from an older instance' && textOf(onB.doc, 'notes') === 'from an older instance');

      const closed = Promise.all([onA, onB].map((c) => firstCloseCode(c)));
      await deleteRoomOn(a, room, ADMIN_TOKEN);
      expect(await closed).toEqual([4410, 4410]);
      frames.length = 0;
      const againA = await joined(a, room, token);
      const againB = await joined(b, room, token);
      await write(againA, againB, 'second life');
      await eventually(async () => fromA().length > 0, 5000, "A's update message");
      expect(fromA()).toEqual([[BusKind.RelayUpdateAt, 1]]);

      // after a delete an older instance's message names no generation: the room reads storage,
      // which holds what it committed (published only once committed)
      const older = updateWith('older instance, second life', 'notes');
      expect(await a.app.relayRooms.store.append([{ room, updates: [older], generation: 1 }])).toEqual([]);
      await redis.publish(channelOf(a, room), updateFrame(older));
      await docUntil([againA.doc, againB.doc], () => textOf(againA.doc, 'notes') === 'older instance, second life' && textOf(againB.doc, 'notes') === 'older instance, second life');
      expect([textOf(againA.doc), textOf(againB.doc)]).toEqual(['second life', 'second life']);
    });
  });
});
