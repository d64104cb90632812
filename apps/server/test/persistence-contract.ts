/**
 * The DocStore contract, run against every engine. To add an engine:
 *   describeDocStoreContract('postgres', () => new PostgresStore(url), tamper)
 * `tamper` rewrites the stored snapshot's bytes behind the engine's back (disk corruption).
 * `reopen` makes a new store on the same storage (a restarted server); without it (memory: nothing
 * survives a process) the store itself is read again.
 */
import { describe, expect, it } from 'vitest';
import { useStores } from './store-harness.js';
import * as Y from 'yjs';
import { foldRoomLog } from '../src/relay/compaction.js';
import { applyStoredRoom, mergeStoredRoom } from '../src/relay/persistence/merge.js';
import { stampSnapshot } from '../src/relay/persistence/snapshot-stamp.js';
import { prepareColdState } from '../src/relay/persistence/stored-bytes.js';
import { RELAY_FENCED, type DocStore, type DocStoreAdmin, type StoredRoom } from '../src/relay/persistence/types.js';
import { DEFAULT_UPDATE_LIMITS } from '../src/relay/update-limits.js';

/** Replaces the room's stored snapshot bytes with `edit`'s result, as a damaged disk would. */
export type TamperSnapshot<S extends DocStore & DocStoreAdmin> = (store: S, room: string, edit: (snapshot: Uint8Array) => Uint8Array) => Promise<void>;

export function describeDocStoreContract<S extends DocStore & DocStoreAdmin>(
  name: string,
  factory: () => S | Promise<S>,
  tamper: TamperSnapshot<S>,
  reopen?: (store: S) => S,
): void {
  describe(`DocStore contract: ${name}`, () => {
    const { make, open, room } = useStores(factory);

    it('throws when used before init', async () => {
      const s = await make();
      await expect(s.load('x')).rejects.toThrow(/before init/);
      await expect(s.append([{ room: 'x', updates: [new Uint8Array([0, 0])] }])).rejects.toThrow(/before init/);
      await expect(s.check()).rejects.toThrow();
    });

    it('loads an unknown room as empty', async () => {
      const s = await open();
      expect(await s.load(room())).toEqual({ snapshot: null, snapshotSeq: 0, updates: [], lastSeq: 0, generation: 0 });
      await s.check();
    });

    it('appends a batch for several rooms at once, in order, with growing sequence numbers', async () => {
      const s = await open();
      const [a, b] = [room(), room()];
      await s.append([
        { room: a, updates: [bytes(1), bytes(2)] },
        { room: b, updates: [bytes(3)] },
      ]);
      await s.append([{ room: a, updates: [bytes(4)] }]);
      const la = await s.load(a);
      const lb = await s.load(b);
      expect(la.updates.map((u) => u[0])).toEqual([1, 2, 4]);
      expect(lb.updates.map((u) => u[0])).toEqual([3]);
      expect(la.lastSeq).toBeGreaterThan(lb.lastSeq);
    });

    it('compacts only up to the sequence number it was given, keeping later appends', async () => {
      const s = await open();
      const r = room();
      const doc = new Y.Doc();
      const updates: Uint8Array[] = [];
      doc.on('update', (u: Uint8Array) => updates.push(u));
      doc.getText('t').insert(0, 'abc');
      doc.getText('t').insert(3, 'def');
      await s.append([{ room: r, updates: updates.splice(0) }]);
      const seen = await s.load(r);
      // Another instance appends after we read: compaction must not drop it.
      doc.getText('t').insert(6, 'ghi');
      await s.append([{ room: r, updates: updates.splice(0) }]);
      await s.compact(r, { snapshot: mergeStoredRoom(seen), throughSeq: seen.lastSeq });
      const after = await s.load(r);
      expect(after.snapshot).not.toBeNull();
      expect(after.snapshotSeq).toBe(seen.lastSeq);
      expect(after.updates).toHaveLength(1);
      expect(textOf(after)).toBe('abcdefghi');
      // An older compaction arriving late is a no-op.
      await s.compact(r, { snapshot: mergeStoredRoom({ ...seen, updates: seen.updates.slice(0, 1) }), throughSeq: seen.lastSeq - 1 });
      expect(textOf(await s.load(r))).toBe('abcdefghi');
      // Compacting everything leaves a snapshot and an empty tail.
      const all = await s.load(r);
      await s.compact(r, { snapshot: mergeStoredRoom(all), throughSeq: all.lastSeq });
      const final = await s.load(r);
      expect(final.updates).toHaveLength(0);
      expect(final.lastSeq).toBe(all.lastSeq);
      expect(textOf(final)).toBe('abcdefghi');
    });

    it('keeps sequence numbers growing after compaction', async () => {
      const s = await open();
      const r = room();
      await s.append([{ room: r, updates: [update('a')] }]);
      const first = await s.load(r);
      await s.compact(r, { snapshot: mergeStoredRoom(first), throughSeq: first.lastSeq });
      await s.append([{ room: r, updates: [update('b', 2)] }]);
      const next = await s.load(r);
      expect(next.lastSeq).toBeGreaterThan(first.lastSeq);
      expect(next.updates).toHaveLength(1);
    });

    it('stores the stamp with the snapshot and replaces or drops them together; appends never carry one', async () => {
      const s = await open();
      const r = room();
      await s.append([{ room: r, updates: [update('a')] }]);
      const first = await s.load(r);
      expect(first.snapshotStamp).toBeUndefined();
      const snapshot = mergeStoredRoom(first);
      const stamp = stampSnapshot(snapshot, DEFAULT_UPDATE_LIMITS) as Uint8Array;
      await s.compact(r, { snapshot, throughSeq: first.lastSeq, stamp });
      // An update whose bytes are the stamp, appended as a client's would be, stays a log entry.
      await s.append([{ room: r, updates: [update('b', 2), stamp] }]);
      const stamped = await s.load(r);
      expect(stamped.snapshotStamp).toEqual(stamp);
      expect(stamped.updates).toHaveLength(2);
      // A late compaction is a no-op for both.
      await s.compact(r, { snapshot: mergeStoredRoom({ ...stamped, updates: [] }), throughSeq: first.lastSeq - 1, stamp: null });
      expect((await s.load(r)).snapshotStamp).toEqual(stamp);
      // A snapshot written without a stamp drops the old one (it belonged to other bytes).
      const all = await s.load(r);
      await s.compact(r, { snapshot: mergeStoredRoom({ ...all, updates: all.updates.slice(0, 1) }), throughSeq: all.lastSeq });
      expect((await s.load(r)).snapshotStamp).toBeUndefined();
    });

    it('a compacted snapshot loads on its stamp; bytes changed in storage are read and checked in full, as unstamped ones', async () => {
      const s = await open();
      const r = room();
      const doc = new Y.Doc();
      const updates: Uint8Array[] = [];
      doc.on('update', (u: Uint8Array) => updates.push(u));
      for (let i = 0; i < 20; i++) doc.getArray<Y.Text>('messages').push([new Y.Text(`message ${i}`)]);
      await s.append([{ room: r, updates }]);
      await foldRoomLog(s, r);
      const stored = await s.load(r);
      expect(stored.snapshotStamp).toBeDefined();
      expect(prepareColdState(stored, DEFAULT_UPDATE_LIMITS)?.stamped).toBe(true);
      const unstamped = (x: StoredRoom): StoredRoom => ({ snapshot: x.snapshot, snapshotSeq: x.snapshotSeq, updates: x.updates, lastSeq: x.lastSeq, generation: x.generation });
      const text = new TextEncoder().encode('message 7');
      const at = indexOf(stored.snapshot as Uint8Array, text);
      expect(at).toBeGreaterThan(0);
      // A flipped character: a valid update still, loaded as it now is.
      await tamper(s, r, (b) => {
        const out = Uint8Array.from(b);
        out[at + 8] = '9'.charCodeAt(0);
        return out;
      });
      const flipped = await s.load(r);
      expect(flipped.snapshotStamp).toEqual(stored.snapshotStamp);
      const cold = prepareColdState(flipped, DEFAULT_UPDATE_LIMITS);
      expect(cold?.stamped).toBe(false);
      expect(cold?.update).toEqual(prepareColdState(unstamped(flipped), DEFAULT_UPDATE_LIMITS)?.update);
      const got = new Y.Doc();
      Y.applyUpdate(got, cold?.update as Uint8Array);
      expect(got.getArray('messages').toJSON()[7]).toBe('message 9');
      // Cut short: set aside (quarantined), as the same bytes without a stamp are; the log after it loads.
      await s.append([{ room: r, updates: [update('tail', 9)] }]);
      await tamper(s, r, (b) => b.slice(0, b.length - 5));
      const cut = await s.load(r);
      const coldCut = prepareColdState(cut, DEFAULT_UPDATE_LIMITS);
      const plainCut = prepareColdState(unstamped(cut), DEFAULT_UPDATE_LIMITS);
      expect(coldCut?.stamped).toBe(false);
      expect(coldCut?.quarantined.map((q) => [q.index, q.reason])).toEqual([[-1, 'malformed']]);
      expect(coldCut).toEqual({ ...plainCut, stored: cut });
    });

    it('keeps the entries compaction set aside when it is stopped after its first write; the later edit of their client loads after a restart', async () => {
      const s = await open();
      const r = room();
      const doc = new Y.Doc();
      doc.clientID = 7;
      const updates: Uint8Array[] = [];
      doc.on('update', (u: Uint8Array) => updates.push(u));
      doc.getText('t').insert(0, 'hello');
      doc.transact(() => {
        for (let i = 0; i < 50; i++) doc.getMap('m').set(`k${i}`, i); // 50 structs: accepted when stored
      });
      doc.getText('t').insert(5, ' world');
      await s.append([{ room: r, updates: updates.splice(0) }]);
      // The operator lowered the struct limit: the map entry is set aside. Every write after the
      // compaction's first fails (a full disk, or the process killed there).
      let writes = 0;
      const stopped: DocStore = {
        engine: s.engine,
        init: () => s.init(),
        load: (x) => s.load(x),
        append: (batches) => (writes++ > 0 ? Promise.reject(new Error('disk full')) : s.append(batches)),
        compact: (...args) => (writes++ > 0 ? Promise.reject(new Error('disk full')) : s.compact(...args)),
        check: () => s.check(),
        close: () => s.close(),
      };
      await foldRoomLog(stopped, r, undefined, { ...DEFAULT_UPDATE_LIMITS, maxStructs: 20 }).catch(() => undefined);
      const after = await s.load(r);
      expect(after.snapshot).not.toBeNull();
      expect(after.updates).toHaveLength(1); // the set-aside map entry, after the snapshot
      // The same client edits on, past the set-aside clocks; the server restarts with the limit back.
      doc.getMap('m').set('k50', 50);
      await s.append([{ room: r, updates: updates.splice(0) }]);
      if (reopen) await s.close();
      const again = reopen ? reopen(s) : s;
      try {
        if (again !== s) await again.init();
        const loaded = new Y.Doc();
        expect(applyStoredRoom(loaded, await again.load(r), 'storage', DEFAULT_UPDATE_LIMITS)).toEqual([]);
        expect(loaded.getText('t').toString()).toBe('hello world');
        expect(loaded.getMap('m').size).toBe(51);
        expect(loaded.store.pendingStructs).toBeNull();
      } finally {
        if (again !== s) await again.close();
      }
    });

    it('fences writes by generation: a purge moves the room on; an append or compaction naming the generation before writes nothing, the rest of its batch is stored', async () => {
      const s = await open();
      const [r, other] = [room(), room()];
      expect(await s.append([{ room: r, updates: [bytes(1)], generation: 0 }])).toEqual([]);
      const first = await s.load(r);
      expect(first.generation).toBe(0);
      // a purge answers the generation it moved the room to (told to the other instances: relay/room-registry.ts purge)
      const purgedTo = await s.purgeRoom(r);
      const second = await s.load(r);
      expect(second).toMatchObject({ snapshot: null, updates: [] });
      expect(second.generation).toBeGreaterThan(first.generation);
      expect(purgedTo).toBe(second.generation);
      // The deleted generation's write is refused, the other room of the same batch stored.
      const refused = await s.append([
        { room: other, updates: [bytes(2)], generation: 0 },
        { room: r, updates: [bytes(3)], generation: first.generation },
      ]);
      expect(refused).toEqual([r]);
      expect((await s.load(r)).updates).toEqual([]);
      expect(await s.statRoom(r)).toBeNull();
      expect((await s.load(other)).updates.map((u) => u[0])).toEqual([2]);
      // The new generation is written; a compaction from the deleted one's content is refused.
      expect(await s.append([{ room: r, updates: [bytes(4)], generation: second.generation }])).toEqual([]);
      const written = await s.load(r);
      expect(await s.compact(r, { snapshot: bytes(8), throughSeq: written.lastSeq, stamp: null, keep: [bytes(5)], generation: first.generation })).toBe(RELAY_FENCED);
      expect(await s.load(r)).toMatchObject({ snapshot: null, updates: [bytes(4)], generation: second.generation });
      expect(await s.compact(r, { snapshot: bytes(9), throughSeq: written.lastSeq, stamp: null, keep: [], generation: second.generation })).toBeUndefined();
      expect(await s.load(r)).toMatchObject({ snapshot: bytes(9), updates: [], generation: second.generation });
      // Every purge moves it on; a write naming no generation is stored whatever it is.
      const purgedAgain = await s.purgeRoom(r);
      const third = await s.load(r);
      expect(third.generation).toBeGreaterThan(second.generation);
      expect(purgedAgain).toBe(third.generation);
      expect(await s.append([{ room: r, updates: [bytes(6)], generation: second.generation }])).toEqual([r]);
      expect(await s.append([{ room: r, updates: [bytes(7)] }])).toEqual([]);
      expect((await s.load(r)).updates).toEqual([bytes(7)]);
      if (!reopen) return;
      // The generation is stored: a restarted server still refuses the deleted ones.
      await s.close();
      const again = reopen(s);
      await again.init();
      try {
        expect((await again.load(r)).generation).toBe(third.generation);
        expect(await again.append([{ room: r, updates: [bytes(9)], generation: first.generation }])).toEqual([r]);
      } finally {
        await again.close();
      }
    });

    it('a purge of a room never stored moves it on too; purged rooms are not listed, and a page of rooms is full', async () => {
      const s = await open();
      const prefix = `${room()}-`;
      const [gone, never, kept] = [`${prefix}a`, `${prefix}b`, `${prefix}c`];
      await s.append([{ room: gone, updates: [bytes(1)] }]);
      await s.purgeRoom(gone);
      const neverTo = await s.purgeRoom(never);
      expect((await s.load(never)).generation).toBeGreaterThan(0);
      expect(neverTo).toBe((await s.load(never)).generation);
      expect(await s.append([{ room: never, updates: [bytes(2)], generation: 0 }])).toEqual([never]);
      await s.append([{ room: kept, updates: [bytes(3)] }]);
      expect((await s.listRooms(prefix, '', 1)).map((x) => x.room)).toEqual([kept]);
      expect(await s.statRoom(gone)).toBeNull();
      expect(await s.statRoom(never)).toBeNull();
    });

    it('throws after close', async () => {
      const s = await open();
      await s.close();
      await expect(s.load('x')).rejects.toThrow();
    });
  });
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).indexOf(needle);
}

function bytes(n: number): Uint8Array {
  return new Uint8Array([n, 0, 0]);
}

function update(text: string, client = 1): Uint8Array {
  const doc = new Y.Doc();
  doc.clientID = client;
  doc.getText('t').insert(0, text);
  return Y.encodeStateAsUpdate(doc);
}

function textOf(stored: Parameters<typeof mergeStoredRoom>[0]): string {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, mergeStoredRoom(stored));
  return doc.getText('t').toString();
}
