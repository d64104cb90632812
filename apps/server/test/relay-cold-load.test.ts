/**
 * Cold load: a room read from storage answers sync step 1 from its stored bytes (checked and
 * merged, persistence/stored-bytes.ts) before its Y.Doc is built; a client with part of the
 * state gets only what it lacks; entries over the limits are set aside and the rest is served;
 * SQLite compaction leaves no WAL behind.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { encodeRelayMessage, writeRelaySyncStep1, type RelayMessage } from '@sync-suite/shared';
import { serverPerTest, type TestServer } from '../../../test/helpers/server.js';
import { docUntil, metric, RawClient, stockClient, synced, type StockVersion } from '../../../test/fixtures/relay-clients.js';
import { withTimeout } from '../../../test/helpers/timeout.js';
import type { RoomRegistry } from '../src/relay/room-registry.js';
import type { RelayPeer } from '../src/relay/fanout.js';
import { SQLITE_FILE_NAME, SqliteStore } from '../src/relay/persistence/sqlite.js';
import type { DocStore, EngineStore } from '../src/relay/persistence/types.js';
import { mergeParts, prepareColdState } from '../src/relay/persistence/stored-bytes.js';
import { stampSnapshot } from '../src/relay/persistence/snapshot-stamp.js';
import { DEFAULT_UPDATE_LIMITS } from '../src/relay/update-limits.js';
import { hugeMap, subdocItem, updateOf } from './hostile-updates.js';

const ROOM = 'acme-conversation-cold';
const scope = serverPerTest();
afterEach(() => scope.close());

const isType = (type: RelayMessage['type']) => (m: RelayMessage) => m.type === type;

function registryOf(server: TestServer): RoomRegistry {
  const registry = server.app.relayRooms;
  if (!registry) throw new Error('no relay');
  return registry;
}

/** Records, for each sync step 1 the room answers, whether its document was still unbuilt (cold and empty) and its snapshot taken on its stamp. */
function watchAnswers(registry: RoomRegistry): Array<{ cold: boolean; emptyDoc: boolean; stamped: boolean }> {
  const seen: Array<{ cold: boolean; emptyDoc: boolean; stamped: boolean }> = [];
  registry.on('loaded', (name: string) => {
    const room = registry.rooms.get(name);
    if (!room) return;
    const answer = room.answerStep1.bind(room);
    room.answerStep1 = (peer: RelayPeer, sv: Uint8Array) => {
      seen.push({ cold: room.isCold, emptyDoc: room.doc.store.clients.size === 0, stamped: room.coldFromStamp });
      return answer(peer, sv);
    };
  });
  return seen;
}

/** A raw client that sends sync step 1 with `sv` the moment it opens. */
function rawWithStep1(server: TestServer, sv: Uint8Array, room = ROOM): RawClient {
  const c = RawClient.start(`${server.wsUrl}/relay/${room}`);
  scope.track(c);
  c.ws.once('open', () => c.send(encodeRelayMessage((e) => writeRelaySyncStep1(e, sv))));
  return c;
}

/** A fresh client (empty state vector) and the document its first sync step 2 makes. */
async function freshLoad(server: TestServer, room = ROOM): Promise<{ client: RawClient; doc: Y.Doc }> {
  const client = rawWithStep1(server, Y.encodeStateVector(new Y.Doc()), room);
  const { update } = (await client.next(isType('sync-step2'))) as { update: Uint8Array };
  const doc = new Y.Doc();
  Y.applyUpdate(doc, update);
  return { client, doc };
}

/** Edits of 3 writers, each its own update: list entries and text typed in pieces. */
function conversation(n: number): { updates: Uint8Array[]; doc: Y.Doc } {
  const updates: Uint8Array[] = [];
  const writers = [1, 2, 3].map((id) => {
    const d = new Y.Doc();
    d.clientID = id;
    d.on('update', (u: Uint8Array) => updates.push(u));
    return d;
  });
  for (let i = 0; i < n; i++) {
    const w = writers[i % 3] as Y.Doc;
    const text = new Y.Text();
    w.getArray<Y.Text>('messages').push([text]);
    text.insert(0, `message ${i} `);
    text.insert(text.length, 'é😀 more');
    if (i % 4 === 0) text.delete(0, 3);
    if (i % 5 === 0) w.getMap('meta').set(`k${i % 7}`, { at: i, who: w.clientID });
  }
  const doc = new Y.Doc();
  for (const u of updates) Y.applyUpdate(doc, u);
  return { updates, doc };
}

const json = (doc: Y.Doc) => JSON.stringify({ m: doc.getArray('messages').toJSON(), meta: [...doc.getMap('meta').entries()].sort(([a], [b]) => a.localeCompare(b)) });

/** Stored as a snapshot of the first `cut` updates (stamped as compaction does, unless `stamped` is false) and a log of the rest. */
async function store(s: DocStore, updates: Uint8Array[], cut: number, extra: Uint8Array[] = [], room = ROOM, stamped = true): Promise<void> {
  await s.append([{ room, updates: updates.slice(0, cut) }]);
  const first = await s.load(room);
  const snapDoc = new Y.Doc();
  for (const u of updates.slice(0, cut)) Y.applyUpdate(snapDoc, u);
  const snapshot = Y.encodeStateAsUpdate(snapDoc);
  await s.compact(room, { snapshot, throughSeq: first.lastSeq, stamp: stamped ? stampSnapshot(snapshot, DEFAULT_UPDATE_LIMITS) : null });
  await s.append([{ room, updates: [...updates.slice(cut), ...extra] }]);
  const stored = await s.load(room);
  expect(stored.snapshot).not.toBeNull();
  expect(stored.updates).toHaveLength(updates.length - cut + extra.length);
}

/** What a room's SQLite file holds (the store opened and closed again). */
async function loadFrom(dataDir: string, room: string): Promise<Awaited<ReturnType<DocStore['load']>>> {
  const s = new SqliteStore(dataDir);
  await s.init();
  try {
    return await s.load(room);
  } finally {
    await s.close();
  }
}

describe('cold load', () => {
  it('after a restart the first sync step 2 carries the whole content, sent before the document is built; stock clients 2.x and 3.x sync and write', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'relay-cold-'));
    try {
      const env = { STORAGE: 'sqlite', DATA_DIR: dataDir };
      // Stored by an earlier run: a snapshot of 100 messages and 10 more in the log after it.
      const { updates, doc: full } = conversation(110);
      const sqlite = new SqliteStore(dataDir);
      await sqlite.init();
      await store(sqlite, updates, updates.length - 10);
      await sqlite.close();
      const expected = json(full);

      const server = await scope.start(env);
      const registry = registryOf(server);
      const answers = watchAnswers(registry);
      const { client: fresh, doc } = await freshLoad(server);
      expect(json(doc)).toBe(expected);
      expect(answers[0]).toEqual({ cold: true, emptyDoc: true, stamped: true });
      // Once built, the room tells its state vector: the full document's.
      const step1 = (await fresh.next(isType('sync-step1'))) as { stateVector: Uint8Array };
      expect(Y.decodeStateVector(step1.stateVector)).toEqual(Y.decodeStateVector(Y.encodeStateVector(doc)));

      const clients = ([2, 3] as StockVersion[]).map((v) => {
        const c = stockClient(v, server.wsUrl, ROOM);
        scope.track(c);
        return c;
      });
      for (const c of clients) await synced(c.p);
      for (const c of clients) expect(json(c.doc)).toBe(expected);
      clients[0]?.doc.getArray<Y.Text>('messages').push([new Y.Text('after the restart')]);
      await docUntil(clients[1]?.doc as Y.Doc, () => clients[1]?.doc.getArray('messages').length === 111);
      expect(server.logs.filter((l) => (l['level'] as number) >= 50)).toEqual([]);
    } finally {
      await scope.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('a client with part of the state gets only what it lacks', async () => {
    const server = await scope.start({});
    const registry = registryOf(server);
    const answers = watchAnswers(registry);
    const { updates, doc: full } = conversation(60);
    await store(registry.store, updates, 100);
    const partial = new Y.Doc();
    for (const u of updates.slice(0, 130)) Y.applyUpdate(partial, u);
    const known = Y.decodeStateVector(Y.encodeStateVector(partial));
    const c = rawWithStep1(server, Y.encodeStateVector(partial));
    const step2 = (await c.next(isType('sync-step2'))) as { update: Uint8Array };
    expect(answers[0]).toEqual({ cold: true, emptyDoc: true, stamped: true });
    const { structs } = Y.decodeUpdate(step2.update);
    expect(structs.length).toBeGreaterThan(0);
    for (const s of structs) if (!(s instanceof Y.Skip)) expect(s.id.clock + s.length).toBeGreaterThan(known.get(s.id.client) ?? 0);
    expect(step2.update.length).toBeLessThan(Y.encodeStateAsUpdate(full).length);
    Y.applyUpdate(partial, step2.update);
    expect(json(partial)).toBe(json(full));
  });

  it('sets aside stored entries over the limits or undecodable and serves the rest, cold', async () => {
    const server = await scope.start({});
    const registry = registryOf(server);
    const answers = watchAnswers(registry);
    const { updates, doc: full } = conversation(30);
    const huge = hugeMap(77, DEFAULT_UPDATE_LIMITS.maxStructs + 10);
    const truncated = (updates[5] as Uint8Array).slice(0, 7);
    await store(registry.store, updates, 40, [huge, truncated]);

    const { client: c, doc } = await freshLoad(server);
    expect(answers[0]).toEqual({ cold: true, emptyDoc: true, stamped: true });
    expect(json(doc)).toBe(json(full));
    expect(doc.getMap('m').size).toBe(0);
    expect(await metric(server.url, 'sync_relay_quarantined_updates_total', { source: 'load' })).toBe(2);
    const reported = server.logs.filter((l) => l['msg'] === 'stored relay updates set aside (quarantined); the rest of the room loaded');
    expect(reported).toHaveLength(1);
    expect((reported[0]?.['entries'] as Array<{ reason: string }>).map((e) => e.reason)).toEqual(['structs', 'malformed']);
    // Built afterwards without them, and nothing more set aside.
    await c.next(isType('sync-step1'));
    expect(json(registry.rooms.get(ROOM)?.doc as Y.Doc)).toBe(json(full));
    expect(await metric(server.url, 'sync_relay_quarantined_updates_total', { source: 'load' })).toBe(2);
    expect(server.logs.filter((l) => (l['level'] as number) >= 50)).toEqual([]);
  });

  it('SQLite: a stored sub-document with null options (Yjs throws decoding it) is set aside by the cold checks and never reaches a client; other rooms are untouched', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'relay-cold-subdoc-'));
    const OTHER = `${ROOM}-other`;
    try {
      // Yjs reads `opts.shouldLoad` while decoding a sub-document (yjs createDocFromOpts): null
      // options throw a TypeError there; the bounded reader refuses them (update-reader.ts).
      const poison = updateOf(9, 0, [subdocItem({ root: 'm' }, 'sub', null)]);
      expect(() => Y.applyUpdate(new Y.Doc(), poison)).toThrow(TypeError);
      const { updates, doc: full } = conversation(30);
      const sqlite = new SqliteStore(dataDir);
      await sqlite.init();
      await store(sqlite, updates, 40, [poison]);
      await store(sqlite, updates, 40, [], OTHER);
      await sqlite.close();
      const index = updates.length - 40;
      expect(prepareColdState(await loadFrom(dataDir, ROOM), DEFAULT_UPDATE_LIMITS)?.quarantined.map((q) => [q.index, q.reason])).toEqual([[index, 'malformed']]);

      const server = await scope.start({ STORAGE: 'sqlite', DATA_DIR: dataDir });
      const registry = registryOf(server);
      const answers = watchAnswers(registry);
      // Cold: answered from the stored bytes without the entry, and the document builds.
      const c = rawWithStep1(server, Y.encodeStateVector(new Y.Doc()));
      const step2 = (await c.next(isType('sync-step2'))) as { update: Uint8Array };
      expect(answers[0]).toEqual({ cold: true, emptyDoc: true, stamped: true });
      expect(Y.decodeUpdate(step2.update).structs.some((s) => s.id.client === 9)).toBe(false);
      const doc = new Y.Doc();
      Y.applyUpdate(doc, step2.update);
      expect(json(doc)).toBe(json(full));
      await c.next(isType('sync-step1'));
      expect(Y.getState(registry.rooms.get(ROOM)?.doc.store as Y.Doc['store'], 9)).toBe(0);
      const reported = server.logs.filter((l) => l['msg'] === 'stored relay updates set aside (quarantined); the rest of the room loaded');
      expect((reported[0]?.['entries'] as Array<{ index: number; reason: string }>).map((e) => [e.index, e.reason])).toEqual([[index, 'malformed']]);
      expect(await metric(server.url, 'sync_relay_quarantined_updates_total', { source: 'load' })).toBe(1);
      expect(server.logs.filter((l) => l['msg'] === 'stored relay update failed to apply after a cold load; reloading the room')).toEqual([]);
      expect(registry.stateOf(ROOM)).toBe('open');

      // A stock client syncs the room whole (it would throw on the entry too).
      const stock = stockClient(3, server.wsUrl, ROOM);
      scope.track(stock);
      await synced(stock.p);
      expect(json(stock.doc)).toBe(json(full));

      // The other room of the same file loads cold and whole.
      const { client: other, doc: otherDoc } = await freshLoad(server, OTHER);
      expect(json(otherDoc)).toBe(json(full));
      expect(answers.at(-1)).toEqual({ cold: true, emptyDoc: true, stamped: true });
      await other.next(isType('sync-step1'));
      expect(c.closeCode).toBeNull();
      expect(other.closeCode).toBeNull();
      expect(server.logs.filter((l) => (l['level'] as number) >= 50)).toEqual([]);
    } finally {
      await scope.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('SQLite rows from before stamps (no stamp column) load, checked in full, and the next compaction stamps the snapshot', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'relay-old-rows-'));
    try {
      const { doc: full } = conversation(40);
      const old = new Database(join(dataDir, SQLITE_FILE_NAME));
      // The relay tables as an earlier release created them.
      old.exec(`CREATE TABLE relay_snapshots (room TEXT PRIMARY KEY, snapshot BLOB NOT NULL, through_seq INTEGER NOT NULL);
        CREATE TABLE relay_updates (seq INTEGER PRIMARY KEY AUTOINCREMENT, room TEXT NOT NULL, data BLOB NOT NULL);`);
      old.prepare('INSERT INTO relay_snapshots (room, snapshot, through_seq) VALUES (?, ?, 1)').run(ROOM, Y.encodeStateAsUpdate(full));
      old.close();

      const server = await scope.start({ STORAGE: 'sqlite', DATA_DIR: dataDir, COMPACT_AFTER_UPDATES: '5' });
      const registry = registryOf(server);
      const answers = watchAnswers(registry);
      const { doc } = await freshLoad(server);
      expect(json(doc)).toBe(json(full));
      expect(answers[0]).toEqual({ cold: true, emptyDoc: true, stamped: false });

      const writer = stockClient(3, server.wsUrl, ROOM);
      scope.track(writer);
      await synced(writer.p);
      const compacted = once(registry, 'compacted');
      for (let i = 0; i < 5; i++) writer.doc.getArray<Y.Text>('messages').push([new Y.Text(`new ${i}`)]);
      await withTimeout(compacted, 10_000, 'compaction');
      const stored = await registry.store.load(ROOM);
      expect(stored.snapshotStamp).toBeDefined();
      expect(prepareColdState(stored, DEFAULT_UPDATE_LIMITS)?.stamped).toBe(true);
    } finally {
      await scope.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('a stamp vouches only for the snapshot it was made with, under the limits it was made with: never for a log entry', () => {
    const { updates } = conversation(30);
    const snapDoc = new Y.Doc();
    for (const u of updates) Y.applyUpdate(snapDoc, u);
    const snapshot = Y.encodeStateAsUpdate(snapDoc);
    const huge = hugeMap(77, DEFAULT_UPDATE_LIMITS.maxStructs + 10);
    // Within a snapshot's limits (counts are open there), so it can be stamped as one.
    const hugeStamp = stampSnapshot(huge, DEFAULT_UPDATE_LIMITS) as Uint8Array;
    expect(hugeStamp).not.toBeNull();
    const reasons = (c: ReturnType<typeof prepareColdState>) => c?.quarantined.map((q) => [q.index, q.reason]);
    // The entry is a log entry (as a client's update is): read and set aside, whatever stamp is stored.
    const noSnapshot = prepareColdState({ snapshot: null, snapshotSeq: 0, snapshotStamp: hugeStamp, updates: [snapshot, huge], lastSeq: 2 }, DEFAULT_UPDATE_LIMITS);
    expect(noSnapshot?.stamped).toBe(false);
    expect(reasons(noSnapshot)).toEqual([[1, 'structs']]);
    const own = stampSnapshot(snapshot, DEFAULT_UPDATE_LIMITS) as Uint8Array;
    const afterStamped = prepareColdState({ snapshot, snapshotSeq: 1, snapshotStamp: own, updates: [huge], lastSeq: 2 }, DEFAULT_UPDATE_LIMITS);
    expect(afterStamped?.stamped).toBe(true);
    expect(reasons(afterStamped)).toEqual([[0, 'structs']]);
    // Another snapshot's stamp, or one made under other limits, is not taken.
    expect(prepareColdState({ snapshot, snapshotSeq: 1, snapshotStamp: hugeStamp, updates: [], lastSeq: 1 }, DEFAULT_UPDATE_LIMITS)?.stamped).toBe(false);
    expect(prepareColdState({ snapshot, snapshotSeq: 1, snapshotStamp: own, updates: [], lastSeq: 1 }, { ...DEFAULT_UPDATE_LIMITS, maxValueDepth: 3 })?.stamped).toBe(false);
  });

  it('a log entry nesting types in a stamped snapshot\'s types is checked against the snapshot\'s depth: too deep, the whole state is checked as without a stamp', () => {
    const limits = { ...DEFAULT_UPDATE_LIMITS, maxDepth: 4 };
    const writer = new Y.Doc();
    writer.clientID = 5;
    const log: Uint8Array[] = [];
    writer.on('update', (u: Uint8Array) => log.push(u));
    // Levels 1 (root) to 3 in the snapshot, then level 4 and 5 in the log.
    const l2 = new Y.Map();
    writer.getMap('root').set('a', l2);
    const l3 = new Y.Map();
    l2.set('b', l3);
    const cut = log.length;
    const l4 = new Y.Map();
    l3.set('c', l4);
    const fine = log.length;
    l4.set('d', new Y.Map());
    const snapDoc = new Y.Doc();
    for (const u of log.slice(0, cut)) Y.applyUpdate(snapDoc, u);
    const snapshot = Y.encodeStateAsUpdate(snapDoc);
    const stamp = stampSnapshot(snapshot, limits) as Uint8Array;
    const ok = prepareColdState({ snapshot, snapshotSeq: 1, snapshotStamp: stamp, updates: log.slice(cut, fine), lastSeq: 2 }, limits);
    expect(ok?.stamped).toBe(true);
    // Level 5: refused with the stamp, and then without it, as the full check refuses it (the Y.Doc path sets the entry aside).
    expect(prepareColdState({ snapshot, snapshotSeq: 1, snapshotStamp: stamp, updates: log.slice(cut), lastSeq: 3 }, limits)).toBeNull();
    expect(prepareColdState({ snapshot, snapshotSeq: 1, updates: log.slice(cut), lastSeq: 3 }, limits)).toBeNull();
  });

  it('SQLite: compaction after a bulk push shrinks what is stored and leaves the WAL empty', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'relay-compact-'));
    try {
      const server = await scope.start({ STORAGE: 'sqlite', DATA_DIR: dataDir, COMPACT_AFTER_UPDATES: '200' });
      const registry = registryOf(server);
      const writer = stockClient(3, server.wsUrl, ROOM);
      scope.track(writer);
      await synced(writer.p);
      let pushed = 0;
      writer.doc.on('update', (u: Uint8Array) => (pushed += u.length));
      const compacted = once(registry, 'compacted');
      const text = writer.doc.getText('text');
      for (let i = 0; i < 200; i++) text.insert(text.length, `line ${i}\n`);
      await withTimeout(compacted, 10_000, 'compaction');
      const stat = await (registry.store as EngineStore).statRoom(ROOM);
      expect(stat?.entries).toBe(1);
      expect(stat?.bytes).toBeLessThan(pushed / 2);
      expect(stat?.bytes).toBeLessThanOrEqual(Math.ceil(1.3 * Y.encodeStateAsUpdate(writer.doc).length));
      expect(statSync(join(dataDir, `${SQLITE_FILE_NAME}-wal`)).size).toBe(0);
    } finally {
      await scope.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  /** The size of a SQLite file that holds the schema and nothing else. */
  async function emptyFileBytes(): Promise<number> {
    const dir = mkdtempSync(join(tmpdir(), 'relay-empty-'));
    try {
      const empty = new SqliteStore(dir);
      await empty.init();
      await empty.close();
      return statSync(join(dir, SQLITE_FILE_NAME)).size;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('SQLite: a growing snapshot replaced again and again takes its own size on disk, not twice that', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'relay-snapshots-'));
    const s = new SqliteStore(dataDir);
    try {
      await s.init();
      const { updates } = conversation(3000);
      const doc = new Y.Doc();
      for (let round = 1; round <= 30; round++) {
        const batch = updates.slice(Math.floor(((round - 1) * updates.length) / 30), Math.floor((round * updates.length) / 30));
        for (const u of batch) Y.applyUpdate(doc, u);
        await s.append([{ room: ROOM, updates: batch }]);
        await s.compact(ROOM, { snapshot: Y.encodeStateAsUpdate(doc), throughSeq: (await s.load(ROOM)).lastSeq });
      }
      const snapshot = Y.encodeStateAsUpdate(doc).length;
      expect(snapshot).toBeGreaterThan(100_000);
      expect(statSync(join(dataDir, `${SQLITE_FILE_NAME}-wal`)).size).toBe(0);
      // The file with nothing stored (the schema's own pages: its size grows with the tables),
      // plus 16 KB for the log's pages, freed by the compactions and reused by the next appends.
      expect(statSync(join(dataDir, SQLITE_FILE_NAME)).size).toBeLessThan((await emptyFileBytes()) + 1.3 * snapshot + 16 * 1024);
    } finally {
      await s.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('stored bytes merged without a Y.Doc', () => {
  /** A small deterministic generator (mulberry32): the same cases every run. */
  function random(seed: number): (n: number) => number {
    let a = seed;
    return (n) => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
    };
  }

  it('equals applying every entry, for a fresh client and for one with part of the state; gives up on partial overlaps', () => {
    const rnd = random(7);
    let merged = 0;
    let gaps = 0;
    for (let trial = 0; trial < 200; trial++) {
      const docs = [1, 2, 3].map((id) => {
        const d = new Y.Doc();
        d.clientID = id;
        return d;
      });
      const log: Uint8Array[] = [];
      for (const d of docs) d.on('update', (u: Uint8Array) => log.push(u));
      for (let step = 0; step < 40; step++) {
        const d = docs[rnd(3)] as Y.Doc;
        const t = d.getText('t');
        const r = rnd(10);
        if (r < 6) t.insert(rnd(t.length + 1), 'abc'.slice(0, 1 + rnd(3)));
        else if (r < 8 && t.length > 0) t.delete(rnd(t.length), 1);
        else d.getMap('m').set(`k${rnd(3)}`, rnd(100));
        if (rnd(4) === 0) {
          const [a, b] = [docs[rnd(3)] as Y.Doc, docs[rnd(3)] as Y.Doc];
          Y.applyUpdate(b, Y.encodeStateAsUpdate(a, Y.encodeStateVector(b)));
        }
      }
      const cut = rnd(log.length);
      const snapDoc = new Y.Doc();
      for (const u of log.slice(0, cut)) Y.applyUpdate(snapDoc, u);
      const tail = log.slice(cut);
      if (cut > 0 && rnd(2) === 0) tail.push(log[rnd(cut)] as Uint8Array); // an entry stored twice
      // Sometimes an entry is missing (another instance's, not yet stored): what follows waits for it.
      const missing = tail.length > 1 && rnd(3) === 0 ? tail.splice(rnd(tail.length - 1), 1)[0] : undefined;
      const full = new Y.Doc();
      for (const u of log) Y.applyUpdate(full, u);
      const cold = prepareColdState({ snapshot: cut > 0 ? Y.encodeStateAsUpdate(snapDoc) : null, snapshotSeq: 1, updates: tail, lastSeq: 2 }, DEFAULT_UPDATE_LIMITS);
      if (!cold) continue; // a partial overlap: the Y.Doc path takes it
      merged++;
      // The same state with the snapshot stamped (as compaction writes it): taken on its stamp, same answers.
      if (cut > 0) {
        const snapshot = Y.encodeStateAsUpdate(snapDoc);
        const stamped = prepareColdState({ snapshot, snapshotSeq: 1, snapshotStamp: stampSnapshot(snapshot, DEFAULT_UPDATE_LIMITS) as Uint8Array, updates: tail, lastSeq: 2 }, DEFAULT_UPDATE_LIMITS);
        expect(stamped?.stamped).toBe(true);
        const a = new Y.Doc();
        Y.applyUpdate(a, stamped?.update as Uint8Array);
        const b = new Y.Doc();
        Y.applyUpdate(b, cold.update);
        expect(Y.encodeStateAsUpdate(a)).toEqual(Y.encodeStateAsUpdate(b));
        const known = Y.decodeStateVector(Y.encodeStateVector(docs[rnd(3)] as Y.Doc));
        expect(mergeParts(stamped?.parts ?? [], known)).toEqual(mergeParts(cold.parts, known));
      }
      const got = new Y.Doc();
      Y.applyUpdate(got, cold.update);
      if (missing) {
        const entries = new Y.Doc();
        if (cut > 0) Y.applyUpdate(entries, Y.encodeStateAsUpdate(snapDoc));
        for (const u of tail) Y.applyUpdate(entries, u);
        expect(got.getText('t').toString()).toBe(entries.getText('t').toString());
        expect(Y.encodeStateVector(got)).toEqual(Y.encodeStateVector(entries));
        Y.applyUpdate(got, missing);
        tail.push(missing);
      }
      expect(got.getText('t').toString()).toBe(full.getText('t').toString());
      expect(got.getMap('m').toJSON()).toEqual(full.getMap('m').toJSON());
      const partial = new Y.Doc();
      for (const u of log.slice(0, rnd(log.length))) Y.applyUpdate(partial, u);
      if (missing) Y.applyUpdate(partial, missing);
      const sv = Y.decodeStateVector(Y.encodeStateVector(partial));
      const diff = mergeParts(cold.parts, sv);
      if (diff) for (const s of Y.decodeUpdate(diff).structs) if (!(s instanceof Y.Skip)) expect(s.id.clock + s.length).toBeGreaterThan(sv.get(s.id.client) ?? 0);
      Y.applyUpdate(partial, diff ?? Y.diffUpdate(cold.update, Y.encodeStateVector(partial)));
      gaps += missing ? 1 : 0;
      expect(partial.getText('t').toString()).toBe(full.getText('t').toString());
    }
    // Entries of one client at the same clock, a longer one after a shorter (these documents
    // re-emit what they heard), take the Y.Doc path since the merge keeps stored order
    // (relay-cold-overlap.test.ts): 135 of these inputs merge as bytes.
    expect(merged).toBeGreaterThan(120);
    expect(gaps).toBeGreaterThan(30);
  });
});
