/**
 * Compaction's fast path (snapshot = the live document) is taken only when the live document
 * provably holds everything stored; anything written elsewhere sends it down the merge path,
 * and no stored entry is ever lost. Runs against the real memory and SQLite engines.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { captureLiveState, foldRoomLog } from '../src/relay/compaction.js';
import { MemoryStore } from '../src/relay/persistence/memory.js';
import { mergeStoredRoom } from '../src/relay/persistence/merge.js';
import { SqliteStore } from '../src/relay/persistence/sqlite.js';
import type { DocStore, EngineStore } from '../src/relay/persistence/types.js';

const ROOM = 'acme-conversation-fold';
const cleanup: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

async function open(engine: 'memory' | 'sqlite'): Promise<DocStore> {
  let store: DocStore;
  if (engine === 'memory') store = new MemoryStore();
  else {
    const dir = mkdtempSync(join(tmpdir(), 'relay-fold-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    store = new SqliteStore(dir);
  }
  await store.init();
  cleanup.unshift(() => store.close());
  return store;
}

/** A writer whose updates go to a live doc (as the room would) and to storage. */
function writer(clientID: number): { doc: Y.Doc; edit: (f: (d: Y.Doc) => void) => Uint8Array } {
  const doc = new Y.Doc();
  doc.clientID = clientID;
  return {
    doc,
    edit(f) {
      let out: Uint8Array | undefined;
      const h = (u: Uint8Array): void => void (out = u);
      doc.on('update', h);
      f(doc);
      doc.off('update', h);
      return out as Uint8Array;
    },
  };
}

async function contentOf(store: DocStore): Promise<unknown> {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, mergeStoredRoom(await store.load(ROOM)));
  return { text: doc.getText('t').toString(), map: doc.getMap('m').toJSON() };
}

describe.each(['memory', 'sqlite'] as const)('relay compaction (%s)', (engine) => {
  it('uses the live document when it holds every stored entry, deletions included', async () => {
    const store = await open(engine);
    const w = writer(1);
    const live = new Y.Doc();
    const updates = [w.edit((d) => d.getText('t').insert(0, 'hello world')), w.edit((d) => d.getText('t').delete(0, 6)), w.edit((d) => d.getMap('m').set('k', 1))];
    for (const u of updates) Y.applyUpdate(live, u);
    await store.append([{ room: ROOM, updates }]);

    const done = await foldRoomLog(store, ROOM, () => captureLiveState(live, 0));
    expect(done).toMatchObject({ folded: 3, fromLive: true });
    const stored = await store.load(ROOM);
    expect(stored.updates).toEqual([]);
    expect(stored.snapshotSeq).toBe(done.throughSeq);
    expect(done.snapshotBytes).toBe(stored.snapshot?.length); // read before its buffer moved to the storage thread
    expect(await contentOf(store)).toEqual({ text: 'world', map: { k: 1 } });

    // Next round: storage still has our snapshot, so the fast path stays available.
    const more = w.edit((d) => d.getText('t').insert(5, '!'));
    Y.applyUpdate(live, more);
    await store.append([{ room: ROOM, updates: [more] }]);
    expect(await foldRoomLog(store, ROOM, () => captureLiveState(live, done.throughSeq))).toMatchObject({ folded: 1, fromLive: true });
    expect(await contentOf(store)).toEqual({ text: 'world!', map: { k: 1 } });
  });

  it('never stores a live document of a room deleted since it loaded: the compaction is refused for its generation', async () => {
    const store = await open(engine);
    const w = writer(1);
    const live = new Y.Doc();
    const old = w.edit((d) => d.getText('t').insert(0, 'deleted life'));
    Y.applyUpdate(live, old);
    await store.append([{ room: ROOM, updates: [old] }]);
    const loadedIn = (await store.load(ROOM)).generation;
    await (store as unknown as EngineStore).purgeRoom(ROOM);
    // The new room holds an update the live document holds too (stored without a generation):
    // the fast path alone would take the live document, deleted content and all.
    const again = writer(2).edit((d) => d.getMap('m').set('k', 1));
    Y.applyUpdate(live, again);
    await store.append([{ room: ROOM, updates: [again] }]);

    expect(await foldRoomLog(store, ROOM, () => captureLiveState(live, 0, loadedIn))).toMatchObject({ folded: 0, fenced: loadedIn });
    expect((await store.load(ROOM)).snapshot).toBeNull();
    expect(await contentOf(store)).toEqual({ text: '', map: { k: 1 } });
  });

  it('merges from storage when another instance appended something the live document lacks', async () => {
    const store = await open(engine);
    const here = writer(1);
    const elsewhere = writer(2);
    const live = new Y.Doc();
    const mine = here.edit((d) => d.getMap('m').set('mine', 1));
    Y.applyUpdate(live, mine);
    const theirs = elsewhere.edit((d) => d.getMap('m').set('theirs', 2));
    // A deletion only (no structs) that the live document has not seen either.
    Y.applyUpdate(elsewhere.doc, mine);
    const deletion = elsewhere.edit((d) => d.getMap('m').delete('mine'));
    await store.append([{ room: ROOM, updates: [mine, theirs] }]);

    expect(await foldRoomLog(store, ROOM, () => captureLiveState(live, 0))).toMatchObject({ folded: 2, fromLive: false });
    expect(await contentOf(store)).toEqual({ text: '', map: { mine: 1, theirs: 2 } });

    // The live document learns `theirs` but not the deletion: still the merge path.
    Y.applyUpdate(live, theirs);
    await store.append([{ room: ROOM, updates: [deletion] }]);
    const snapshotSeq = (await store.load(ROOM)).snapshotSeq;
    expect(await foldRoomLog(store, ROOM, () => captureLiveState(live, snapshotSeq))).toMatchObject({ fromLive: false });
    expect(await contentOf(store)).toEqual({ text: '', map: { theirs: 2 } });
  });

  it('builds the live delete set only for a log that holds deletions, and still takes the live document with it', async () => {
    const store = await open(engine);
    const w = writer(1);
    const live = new Y.Doc();
    const asked: boolean[] = [];
    const capture = (seq: number) => (withDeletions: boolean) => (asked.push(withDeletions), captureLiveState(live, seq, 0, withDeletions));
    const inserts = [w.edit((d) => d.getText('t').insert(0, 'hello world')), w.edit((d) => d.getMap('m').set('k', 1))];
    for (const u of inserts) Y.applyUpdate(live, u);
    await store.append([{ room: ROOM, updates: inserts }]);
    const first = await foldRoomLog(store, ROOM, capture(0));
    expect(first).toMatchObject({ folded: 2, fromLive: true });

    const deletion = w.edit((d) => d.getText('t').delete(0, 6));
    Y.applyUpdate(live, deletion);
    await store.append([{ room: ROOM, updates: [deletion] }]);
    expect(await foldRoomLog(store, ROOM, capture(first.throughSeq))).toMatchObject({ folded: 1, fromLive: true });
    expect(asked).toEqual([false, true]);
    expect(await contentOf(store)).toEqual({ text: 'world', map: { k: 1 } });

    // A live document captured without its delete set never vouches for a stored deletion.
    const again = w.edit((d) => d.getMap('m').delete('k'));
    Y.applyUpdate(live, again);
    await store.append([{ room: ROOM, updates: [again] }]);
    const seq = (await store.load(ROOM)).snapshotSeq;
    expect(await foldRoomLog(store, ROOM, () => captureLiveState(live, seq, 0, false))).toMatchObject({ folded: 1, fromLive: false });
    expect(await contentOf(store)).toEqual({ text: 'world', map: {} });
  });

  it('merges from storage when the stored snapshot is not the one the live document knows', async () => {
    const store = await open(engine);
    const w = writer(1);
    const other = writer(2);
    const a = w.edit((d) => d.getMap('m').set('a', 1));
    const b = other.edit((d) => d.getMap('m').set('b', 2));
    await store.append([{ room: ROOM, updates: [a, b] }]);
    // Another instance compacted (a + b); the live document here only ever saw a.
    await foldRoomLog(store, ROOM);
    const live = new Y.Doc();
    Y.applyUpdate(live, a);
    const c = w.edit((d) => d.getMap('m').set('c', 3));
    Y.applyUpdate(live, c);
    await store.append([{ room: ROOM, updates: [c] }]);

    expect(await foldRoomLog(store, ROOM, () => captureLiveState(live, 0))).toMatchObject({ folded: 1, fromLive: false });
    expect(await contentOf(store)).toEqual({ text: '', map: { a: 1, b: 2, c: 3 } });
  });
});
