/**
 * The SealedStore contract, run against every engine (sealed-store.test.ts):
 *   describeSealedStoreContract('postgres', () => new PostgresSealedStore(url), { hideSnapshots })
 */
import { describe, expect, it } from 'vitest';
import { useStores } from './store-harness.js';
import { SEALED_FENCED, SEALED_ROW_OVERHEAD_BYTES as ROW, type SealedRead, type SealedRoomStats, type SealedStore } from '../src/sealed/store/types.js';

const env = (n: number): Uint8Array => Uint8Array.from([n, n, n]);
const firstBytes = (entries: Array<{ envelope: Uint8Array }>): number[] => entries.map((e) => e.envelope[0] as number);
/** stats() without its generation (its own case checks it): the counters */
async function counters(s: SealedStore, room: string): Promise<Omit<SealedRoomStats, 'generation'>> {
  const { head, snapshotCovers, entries, bytes } = await s.stats(room);
  return { head, snapshotCovers, entries, bytes };
}

/** What a read returns but its generation (a redraw changes that alone). */
function entriesRead({ snapshot, entries, head }: SealedRead): Omit<SealedRead, 'generation'> {
  return { snapshot, entries, head };
}

export interface SealedStoreEngineHooks {
  /**
   * Makes the stored snapshots' bytes unreachable to the engine (a statement that reads them
   * fails) until the returned function restores them. Engines that keep nothing apart (memory)
   * leave it out.
   */
  hideSnapshots?: (store: SealedStore) => Promise<() => Promise<void>>;
}

export function describeSealedStoreContract(name: string, factory: () => SealedStore | Promise<SealedStore>, hooks: SealedStoreEngineHooks = {}): void {
  describe(`SealedStore contract: ${name}`, () => {
    const { make, open, room } = useStores(factory);

    it('throws when used before init', async () => {
      const s = await make();
      await expect(s.read('x', 0)).rejects.toThrow(/before init/);
      await expect(s.append([{ room: 'x', envelopes: [env(1)] }])).rejects.toThrow(/before init/);
    });

    it('reads an unknown room as empty', async () => {
      const s = await open();
      expect(await s.read(room(), 0)).toEqual({ snapshot: null, entries: [], head: 0, generation: 0 });
      expect(await counters(s, room())).toEqual({ head: 0, snapshotCovers: 0, entries: 0, bytes: 0 });
      await s.check();
    });

    it('numbers each room 1, 2, 3... in one group commit for several rooms', async () => {
      const s = await open();
      const [a, b] = [room(), room()];
      expect(await s.append([{ room: a, envelopes: [env(1), env(2)] }, { room: b, envelopes: [env(3)] }])).toEqual([1, 1]);
      expect(await s.append([{ room: a, envelopes: [env(4)] }])).toEqual([3]);
      const ra = await s.read(a, 0);
      expect(ra.entries.map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(firstBytes(ra.entries)).toEqual([1, 2, 4]);
      expect(ra.head).toBe(3);
      expect((await s.read(b, 0)).entries.map((e) => e.seq)).toEqual([1]);
      expect(await counters(s, a)).toEqual({ head: 3, snapshotCovers: 0, entries: 3, bytes: 9 + 3 * ROW });
    });

    it('reads from a cursor only what comes after it', async () => {
      const s = await open();
      const r = room();
      await s.append([{ room: r, envelopes: [env(1), env(2), env(3)] }]);
      expect((await s.read(r, 2)).entries.map((e) => e.seq)).toEqual([3]);
      expect((await s.read(r, 3)).entries).toEqual([]);
      // a cursor the server never gave out: everything
      expect((await s.read(r, 99)).entries.map((e) => e.seq)).toEqual([1, 2, 3]);
      expect((await s.read(r, Number.MAX_SAFE_INTEGER)).entries.map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(await s.replaceWithSnapshot(r, Number.MAX_SAFE_INTEGER, env(9))).toBe(false);
    });

    it('reads at most `limit` entries, the first ones, with the snapshot and the head', async () => {
      const s = await open();
      const r = room();
      await s.append([{ room: r, envelopes: [env(1), env(2), env(3), env(4), env(5)] }]);
      expect(await s.replaceWithSnapshot(r, 1, env(9))).toBe(true);
      const page = await s.read(r, 0, 2);
      expect(page.snapshot).toEqual({ covers: 1, envelope: env(9) });
      expect(page.entries.map((e) => e.seq)).toEqual([2, 3]);
      expect(page.head).toBe(5);
      const next = await s.read(r, 3, 2);
      expect(next.snapshot).toBeNull();
      expect(next.entries.map((e) => e.seq)).toEqual([4, 5]);
      expect((await s.read(r, 1)).entries.map((e) => e.seq)).toEqual([2, 3, 4, 5]);
    });

    it('reads no more entries than fit in `maxBytes` (at least one), the first ones', async () => {
      const s = await open();
      const r = room();
      const sized = (n: number, size: number): Uint8Array => new Uint8Array(size).fill(n);
      await s.append([{ room: r, envelopes: [sized(1, 10), sized(2, 10), sized(3, 100), sized(4, 10), sized(5, 10)] }]);
      expect((await s.read(r, 0, 64, 25)).entries.map((e) => e.seq)).toEqual([1, 2]);
      // one alone over the bound still comes (a page is never empty while entries follow)
      const big = await s.read(r, 2, 64, 25);
      expect(big.entries.map((e) => e.seq)).toEqual([3]);
      expect(big.entries[0]?.envelope).toEqual(sized(3, 100));
      expect(big.head).toBe(5);
      expect((await s.read(r, 3, 64, 25)).entries.map((e) => e.seq)).toEqual([4, 5]);
      expect((await s.read(r, 0, 2, 1000)).entries.map((e) => e.seq)).toEqual([1, 2]);
      expect((await s.read(r, 5, 64, 25)).entries).toEqual([]);
      // with the snapshot, the entries after it are bounded the same way
      expect(await s.replaceWithSnapshot(r, 1, env(9))).toBe(true);
      const fresh = await s.read(r, 0, 64, 25);
      expect(fresh.snapshot).toEqual({ covers: 1, envelope: env(9) });
      expect(fresh.entries.map((e) => e.seq)).toEqual([2]);
    });

    it('a snapshot replaces exactly the entries it covers, atomically; later entries stay', async () => {
      const s = await open();
      const r = room();
      await s.append([{ room: r, envelopes: [env(1), env(2), env(3), env(4)] }]);
      expect(await s.replaceWithSnapshot(r, 2, env(9))).toBe(true);
      const fresh = await s.read(r, 0);
      expect(fresh.snapshot).toEqual({ covers: 2, envelope: env(9) });
      expect(fresh.entries.map((e) => e.seq)).toEqual([3, 4]);
      // a device already past the snapshot gets only its tail
      const after = await s.read(r, 3);
      expect(after.snapshot).toBeNull();
      expect(after.entries.map((e) => e.seq)).toEqual([4]);
      expect(await counters(s, r)).toEqual({ head: 4, snapshotCovers: 2, entries: 2, bytes: 9 + 3 * ROW });
      // new entries continue the numbering
      expect(await s.append([{ room: r, envelopes: [env(5)] }])).toEqual([5]);
    });

    it('refuses a snapshot that covers no more than the stored one, or more than the head', async () => {
      const s = await open();
      const r = room();
      expect(await s.replaceWithSnapshot(r, 1, env(9))).toBe(false); // nothing stored
      await s.append([{ room: r, envelopes: [env(1), env(2), env(3)] }]);
      expect(await s.replaceWithSnapshot(r, 4, env(9))).toBe(false);
      expect(await s.replaceWithSnapshot(r, 2, env(8))).toBe(true);
      expect(await s.replaceWithSnapshot(r, 2, env(7))).toBe(false);
      expect(await s.replaceWithSnapshot(r, 1, env(7))).toBe(false);
      const read = await s.read(r, 0);
      expect(read.snapshot).toEqual({ covers: 2, envelope: env(8) });
      expect(read.entries.map((e) => e.seq)).toEqual([3]);
    });

    it('replaces a refuted snapshot at equal covers only while it is still the stored one (sealed/room.ts refutation)', async () => {
      const s = await open();
      const r = room();
      await s.append([{ room: r, envelopes: [env(1), env(2), env(3)] }]);
      expect(await s.replaceWithSnapshot(r, 2, env(8))).toBe(true);
      expect(await s.replaceWithSnapshot(r, 2, env(7), undefined, 1)).toBe(false); // names another snapshot
      expect(await s.replaceWithSnapshot(r, 1, env(7), undefined, 2)).toBe(false); // covers less
      expect(await s.replaceWithSnapshot(r, 4, env(7), undefined, 2)).toBe(false); // past the head
      expect(await s.replaceWithSnapshot(r, 2, env(7), undefined, 2)).toBe(true);
      expect(await s.stats(r)).toMatchObject({ head: 3, snapshotCovers: 2, entries: 1 });
      expect((await s.read(r, 0)).snapshot).toEqual({ covers: 2, envelope: env(7) });
      expect(await s.replaceWithSnapshot(r, 3, env(6), undefined, 2)).toBe(true); // more, as any snapshot
      expect(await s.replaceWithSnapshot(r, 3, env(5), undefined, 2)).toBe(false); // the refuted one is gone
      const read = await s.read(r, 0);
      expect(read.snapshot).toEqual({ covers: 3, envelope: env(6) });
      expect(read.entries).toEqual([]);
      expect(await s.stats(r)).toMatchObject({ head: 3, snapshotCovers: 3, entries: 0 });
    });

    it('lists stored rooms in byte order by prefix and after, with their figures', async () => {
      const s = await open();
      const base = room();
      const [a, b, c] = [`${base}-a`, `${base}-b`, `${base}-c`];
      const before = Date.now();
      await s.append([{ room: b, envelopes: [env(1), env(2)] }, { room: a, envelopes: [env(3)] }, { room: c, envelopes: [env(4)] }]);
      await s.replaceWithSnapshot(b, 1, Uint8Array.from([7, 7, 7, 7, 7]));
      expect(await s.statRoom(`${base}-none`)).toBeNull();
      const fb = await s.statRoom(b);
      expect(fb).toMatchObject({ room: b, bytes: 8 + 2 * ROW, entries: 2 });
      expect(fb?.lastChangeAt).toBeGreaterThanOrEqual(before - 1000);
      expect((await s.listRooms(base, '', 10)).map((f) => f.room)).toEqual([a, b, c]);
      expect((await s.listRooms(base, a, 1)).map((f) => f.room)).toEqual([b]);
      expect(await s.listRooms(`${base}-x`, '', 10)).toEqual([]);
    });

    it('purges a room: nothing stored, numbering starts again, other rooms stay', async () => {
      const s = await open();
      const [r, other] = [room(), room()];
      await s.append([{ room: r, envelopes: [env(1), env(2), env(3)] }, { room: other, envelopes: [env(4)] }]);
      await s.replaceWithSnapshot(r, 2, env(9));
      await s.purgeRoom(r);
      await s.purgeRoom(`${r}-never`);
      expect(await s.read(r, 0)).toEqual({ snapshot: null, entries: [], head: 0, generation: (await s.generation(r)).current });
      expect(await counters(s, r)).toEqual({ head: 0, snapshotCovers: 0, entries: 0, bytes: 0 });
      expect(await s.statRoom(r)).toBeNull();
      expect((await s.listRooms(r, '', 10)).map((f) => f.room)).toEqual([]);
      // a snapshot from before the purge cannot come back
      expect(await s.replaceWithSnapshot(r, 2, env(9))).toBe(false);
      expect(await s.append([{ room: r, envelopes: [env(5)] }])).toEqual([1]);
      expect((await s.statRoom(other))?.entries).toBe(1);
    });

    it('gives each room a generation: drawn with its row, stable until a purge, new after a delete + recreate', async () => {
      const s = await open();
      const gen = async (name: string): Promise<number> => (await s.generation(name)).current;
      const [r, other, empty] = [room(), room(), room()];
      // A room with nothing stored gets its row (and generation) from generation() alone, listed nowhere.
      const g0 = await gen(empty);
      expect(Number.isSafeInteger(g0) && g0 > 0 && g0 < 2 ** 48).toBe(true);
      expect(await gen(empty)).toBe(g0);
      expect(await s.statRoom(empty)).toBeNull();
      expect((await s.listRooms(empty, '', 10)).map((f) => f.room)).toEqual([]);
      expect(await s.read(empty, 0)).toEqual({ snapshot: null, entries: [], head: 0, generation: g0 });
      expect(await counters(s, empty)).toEqual({ head: 0, snapshotCovers: 0, entries: 0, bytes: 0 });
      // the first append keeps the generation its row got before, and numbers from 1
      expect(await s.append([{ room: empty, envelopes: [env(1)] }])).toEqual([1]);
      expect(await gen(empty)).toBe(g0);
      // a room made by an append has one too; appends, snapshots and reads keep it
      await s.append([{ room: r, envelopes: [env(1), env(2), env(3)] }, { room: other, envelopes: [env(4)] }]);
      const g1 = await gen(r);
      expect(g1).toBeGreaterThan(0);
      expect(await gen(other)).not.toBe(g1);
      await s.append([{ room: r, envelopes: [env(4)] }]);
      expect(await s.replaceWithSnapshot(r, 2, env(9))).toBe(true);
      await s.read(r, 0);
      expect(await gen(r)).toBe(g1);
      // delete + recreate by an append: a new generation, numbering from 1 again; other rooms keep theirs
      const gOther = await gen(other);
      await s.purgeRoom(r);
      expect(await s.append([{ room: r, envelopes: [env(5)] }])).toEqual([1]);
      const g2 = await gen(r);
      expect(g2).not.toBe(g1);
      expect(await gen(other)).toBe(gOther);
      // delete + recreate by generation() (a device welcomed before the first entry): new again
      await s.purgeRoom(r);
      const g3 = await gen(r);
      expect(new Set([g1, g2, g3]).size).toBe(3);
      expect(await s.append([{ room: r, envelopes: [env(6)] }])).toEqual([1]);
      expect(await gen(r)).toBe(g3);
    });

    it('reads with its counters and its entries the generation they count in: 0 for a room with no row, the new one after a purge or a redraw', async () => {
      const s = await open();
      const [r, none] = [room(), room()];
      expect(await s.stats(none)).toEqual({ head: 0, snapshotCovers: 0, entries: 0, bytes: 0, generation: 0 });
      await s.append([{ room: r, envelopes: [env(1), env(2)] }]);
      const g1 = (await s.generation(r)).current;
      expect(await s.stats(r)).toEqual({ head: 2, snapshotCovers: 0, entries: 2, bytes: 6 + 2 * ROW, generation: g1 });
      expect((await s.read(r, 1)).generation).toBe(g1);
      await s.purgeRoom(r);
      const g2 = (await s.generation(r)).current;
      expect(await s.stats(r)).toEqual({ head: 0, snapshotCovers: 0, entries: 0, bytes: 0, generation: g2 });
      // read() too, with the entries it returns (a gap fill must not serve the new log as the old one's, sealed/room.ts fillGap)
      expect((await s.read(r, 0)).generation).toBe(g2);
      await s.append([{ room: r, envelopes: [env(3)] }]);
      expect(await s.read(r, 0, 1)).toEqual({ snapshot: null, entries: [{ seq: 1, envelope: env(3) }], head: 1, generation: g2 });
      await s.redrawGenerations();
      expect((await s.stats(r)).generation).toBe((await s.generation(r)).current);
      expect((await s.stats(r)).generation).not.toBe(g2);
      expect((await s.read(r, 0)).generation).toBe((await s.generation(r)).current);
      // a row made by generation() alone has it too
      const welcomed = room();
      expect((await s.stats(welcomed)).generation).toBe(0);
      const g = (await s.generation(welcomed)).current;
      expect(await s.stats(welcomed)).toEqual({ head: 0, snapshotCovers: 0, entries: 0, bytes: 0, generation: g });
    });

    it('keeps every generation a purge ended, even one in which nothing was stored: a purged room stays listed nowhere', async () => {
      const s = await open();
      const [r, other, never] = [room(), room(), room()];
      const deleted = async (name: string, generations: number[]): Promise<boolean[]> => Promise.all(generations.map((g) => s.generationDeleted(name, g)));
      await s.append([{ room: r, envelopes: [env(1), env(2)] }, { room: other, envelopes: [env(3)] }]);
      const g1 = (await s.generation(r)).current;
      expect(await deleted(r, [g1, 0])).toEqual([false, false]);
      await s.purgeRoom(r);
      // the row stays, emptied: a new generation, the purged one deleted, nothing stored or listed
      const g2 = (await s.generation(r)).current;
      expect(g2).not.toBe(g1);
      expect(g2 > 0 && g2 < 2 ** 48).toBe(true);
      expect(await deleted(r, [g1, g2])).toEqual([true, false]);
      // a second purge of the emptied row (the DELETE sent again, or two at once): a new
      // generation, and both deleted: a device welcomed in the empty one is told so too
      await s.purgeRoom(r);
      const g2b = (await s.generation(r)).current;
      expect(new Set([g1, g2, g2b]).size).toBe(3);
      expect(await deleted(r, [g1, g2, g2b])).toEqual([true, true, false]);
      expect(await s.append([{ room: r, envelopes: [env(9)], generation: g2 }])).toEqual([SEALED_FENCED]);
      expect(await counters(s, r)).toEqual({ head: 0, snapshotCovers: 0, entries: 0, bytes: 0 });
      expect(await s.statRoom(r)).toBeNull();
      expect((await s.listRooms(r, '', 10)).map((f) => f.room)).toEqual([]);
      // written and purged again: every one of them stays deleted (a device that missed several deletes)
      expect(await s.append([{ room: r, envelopes: [env(4)] }])).toEqual([1]);
      expect((await s.generation(r)).current).toBe(g2b);
      await s.purgeRoom(r);
      const g3 = (await s.generation(r)).current;
      expect(new Set([g1, g2, g2b, g3]).size).toBe(4);
      expect(await deleted(r, [g1, g2, g2b, g3])).toEqual([true, true, true, false]);
      // a room never deleted, its row made by generation() alone (a device welcomed before the
      // first entry): its purge ends that generation, though nothing was stored in it
      const empty = room();
      const e1 = (await s.generation(empty)).current;
      await s.purgeRoom(empty);
      const e2 = (await s.generation(empty)).current;
      expect(e2).not.toBe(e1);
      expect(await deleted(empty, [e1, e2])).toEqual([true, false]);
      expect(await s.append([{ room: empty, envelopes: [env(5)], generation: e1 }])).toEqual([SEALED_FENCED]);
      // per room: another room's deleted generations are not its own; other rooms untouched;
      // a room with no row has none
      expect(await deleted(other, [g1, g2, (await s.generation(other)).current])).toEqual([false, false, false]);
      await s.purgeRoom(never);
      expect(await deleted(never, [g1])).toEqual([false]);
    });

    it('redraws every generation after a restore: each room a new one, its deleted ones kept, nothing stored changed; again on a second run', async () => {
      const s = await open();
      const [written, snapped, purged, welcomed] = [room(), room(), room(), room()];
      await s.append([{ room: written, envelopes: [env(1), env(2)] }, { room: snapped, envelopes: [env(3), env(4), env(5)] }, { room: purged, envelopes: [env(6)] }]);
      expect(await s.replaceWithSnapshot(snapped, 2, env(9))).toBe(true);
      const ended = (await s.generation(purged)).current;
      await s.purgeRoom(purged);
      // a row with nothing stored (a device welcomed before the first entry) counts as well: its
      // devices may have written entries after the backup in that generation
      await s.generation(welcomed);
      const rooms = [written, snapped, purged, welcomed];
      const before = await Promise.all(rooms.map((r) => s.generation(r)));
      const stored = await Promise.all(rooms.map(async (r) => ({ read: entriesRead(await s.read(r, 0)), stats: await counters(s, r), figures: await s.statRoom(r) })));

      // the stores of the other cases share this database: at least these rooms
      expect(await s.redrawGenerations()).toBeGreaterThanOrEqual(rooms.length);
      const after = await Promise.all(rooms.map((r) => s.generation(r)));
      after.forEach((g, i) => {
        expect(Number.isSafeInteger(g.current) && g.current > 0 && g.current < 2 ** 48).toBe(true);
        expect(g.current).not.toBe(before[i]?.current);
      });
      // the deleted generation stays deleted; the ones redrawn away are not (no delete was seen)
      expect(await s.generationDeleted(purged, ended)).toBe(true);
      expect(await Promise.all(rooms.map((r, i) => s.generationDeleted(r, before[i]?.current ?? 0)))).toEqual(rooms.map(() => false));
      expect(new Set(after.map((g) => g.current)).size).toBe(rooms.length);
      expect(await Promise.all(rooms.map(async (r) => ({ read: entriesRead(await s.read(r, 0)), stats: await counters(s, r), figures: await s.statRoom(r) })))).toEqual(stored);

      // a second run draws again (each run leaves no generation a device was told)
      await s.redrawGenerations();
      const again = await Promise.all(rooms.map((r) => s.generation(r)));
      again.forEach((g, i) => expect(g.current).not.toBe(after[i]?.current));
      expect(await s.generationDeleted(purged, ended)).toBe(true);
      // appends go on from the head, in the new generation
      expect(await s.append([{ room: written, envelopes: [env(7)] }])).toEqual([3]);
      expect((await s.generation(written)).current).toBe(again[0]?.current);
    });

    it('fences writes by generation: an append or snapshot naming a generation not the room\'s stores nothing; other rooms of the commit are stored', async () => {
      const s = await open();
      const [r, other, none] = [room(), room(), room()];
      const g1 = (await s.generation(r)).current;
      const gOther = (await s.generation(other)).current;
      expect(await s.append([{ room: r, envelopes: [env(1), env(2)], generation: g1 }])).toEqual([1]);
      expect(await s.replaceWithSnapshot(r, 1, env(8), g1)).toBe(true);
      // deleted on another instance, written again there: generation g2
      await s.purgeRoom(r);
      const g2 = (await s.generation(r)).current;
      expect(await s.append([{ room: r, envelopes: [env(3)], generation: g2 }])).toEqual([1]);
      const before = await s.read(r, 0);
      const statsBefore = await s.stats(r);
      // a writer still in g1 (it missed the delete): refused; the room of g2 beside it in the same commit is stored
      expect(
        await s.append([
          { room: other, envelopes: [env(5)], generation: gOther },
          { room: r, envelopes: [env(6), env(7)], generation: g1 },
        ]),
      ).toEqual([1, 'fenced']);
      expect(await s.replaceWithSnapshot(r, 1, env(9), g1)).toBe('fenced');
      expect(await s.read(r, 0)).toEqual(before);
      expect(await s.stats(r)).toEqual(statsBefore);
      expect(await s.generation(r)).toEqual({ current: g2 });
      expect([await s.generationDeleted(r, g1), await s.generationDeleted(r, g2)]).toEqual([true, false]);
      expect(firstBytes((await s.read(other, 0)).entries)).toEqual([5]);
      // the current generation still writes, numbering on
      expect(await s.append([{ room: r, envelopes: [env(4)], generation: g2 }])).toEqual([2]);
      expect(await s.replaceWithSnapshot(r, 2, env(9), g2)).toBe(true);
      // a room with no row has no generation a writer can name: refused, and no row is made
      expect(await s.append([{ room: none, envelopes: [env(1)], generation: g2 }])).toEqual(['fenced']);
      expect(await s.replaceWithSnapshot(none, 1, env(1), g2)).toBe('fenced');
      expect(await counters(s, none)).toEqual({ head: 0, snapshotCovers: 0, entries: 0, bytes: 0 });
      expect(await s.statRoom(none)).toBeNull();
    });

    it('keeps its own copy of what it was given', async () => {
      const s = await open();
      const r = room();
      const buf = env(1);
      await s.append([{ room: r, envelopes: [buf] }]);
      buf[0] = 42;
      expect(firstBytes((await s.read(r, 0)).entries)).toEqual([1]);
    });

    it('counts entries and bytes (each row charged SEALED_ROW_OVERHEAD_BYTES) through appends, snapshots and purges', async () => {
      const s = await open();
      const r = room();
      const sized = (n: number): Uint8Array => new Uint8Array(n).fill(n);
      await s.append([{ room: r, envelopes: [sized(10), sized(20)] }]);
      await s.append([{ room: r, envelopes: [sized(30)] }, { room: r, envelopes: [] }]);
      expect(await counters(s, r)).toEqual({ head: 3, snapshotCovers: 0, entries: 3, bytes: 60 + 3 * ROW });
      expect(await s.replaceWithSnapshot(r, 2, sized(7))).toBe(true);
      expect(await counters(s, r)).toEqual({ head: 3, snapshotCovers: 2, entries: 1, bytes: 30 + 7 + 2 * ROW });
      expect(await s.replaceWithSnapshot(r, 3, sized(5))).toBe(true);
      expect(await counters(s, r)).toEqual({ head: 3, snapshotCovers: 3, entries: 0, bytes: 5 + ROW });
      expect(await s.statRoom(r)).toMatchObject({ bytes: 5 + ROW, entries: 1 });
      expect(await s.replaceWithSnapshot(r, 3, sized(50))).toBe(false);
      await s.append([{ room: r, envelopes: [sized(4)] }]);
      expect(await counters(s, r)).toEqual({ head: 4, snapshotCovers: 3, entries: 1, bytes: 4 + 5 + 2 * ROW });
      await s.purgeRoom(r);
      await s.append([{ room: r, envelopes: [sized(1)] }]);
      expect(await counters(s, r)).toEqual({ head: 1, snapshotCovers: 0, entries: 1, bytes: 1 + ROW });
    });

    it("append, stats, a read past the snapshot, statRoom and listRooms never read the snapshot's bytes", async () => {
      const s = await open();
      const r = room();
      await s.append([{ room: r, envelopes: [env(1), env(2), env(3)] }]);
      const big = new Uint8Array(200_000).fill(9);
      expect(await s.replaceWithSnapshot(r, 2, big)).toBe(true);
      const restore = await hooks.hideSnapshots?.(s);
      try {
        // the hook works: the one read that returns the snapshot cannot run now
        if (restore) await expect(s.read(r, 0)).rejects.toThrow();
        expect(await s.append([{ room: r, envelopes: [env(4)] }])).toEqual([4]);
        expect(await counters(s, r)).toEqual({ head: 4, snapshotCovers: 2, entries: 2, bytes: big.length + 6 + 3 * ROW });
        const tail = await s.read(r, 2, 64);
        expect(tail.snapshot).toBeNull();
        expect(tail.entries.map((e) => e.seq)).toEqual([3, 4]);
        expect(await s.statRoom(r)).toMatchObject({ entries: 3, bytes: big.length + 6 + 3 * ROW });
        expect((await s.listRooms(r, '', 10)).map((f) => f.room)).toEqual([r]);
      } finally {
        await restore?.();
      }
      const fresh = await s.read(r, 0);
      expect(fresh.snapshot?.envelope).toEqual(big);
      expect(fresh.entries.map((e) => e.seq)).toEqual([3, 4]);
    });
  });
}
