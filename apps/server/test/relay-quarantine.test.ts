/**
 * Stored data can never brick a room: entries that are over the limits or cannot apply are set
 * aside (quarantined: counted, reported once, kept in the log after the snapshot) while the rest
 * loads; a room that cannot load is reported once per period, not once per stock-client retry.
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { serverPerTest, type TestServer } from '../../../test/helpers/server.js';
import { metric, stockProvider, synced, textOf } from '../../../test/fixtures/relay-clients.js';
import { withTimeout } from '../../../test/helpers/timeout.js';
import type { RoomRegistry } from '../src/relay/room-registry.js';
import { deepNesting, hugeMap, updateOf } from './hostile-updates.js';
import { Room } from '../src/relay/room.js';
import { encodeRelayMessage, writeRelayUpdate } from '@sync-suite/shared';
import { LocalFanout } from '../src/relay/fanout.js';
import { DEFAULT_PRESENCE_LIMITS, DEFAULT_UPDATE_LIMITS, type UpdateLimits } from '../src/relay/update-limits.js';

const ROOM = 'acme-conversation-stored';
const scope = serverPerTest();
afterEach(() => scope.close());

function registryOf(server: TestServer): RoomRegistry {
  const registry = server.app.relayRooms;
  if (!registry) throw new Error('no relay');
  return registry;
}

function textUpdate(text: string, client: number, at = 0): Uint8Array {
  const doc = new Y.Doc();
  doc.clientID = client;
  doc.getText('text').insert(at, text);
  const u = Y.encodeStateAsUpdate(doc);
  doc.destroy();
  return u;
}

/** Loads the room with a fresh stock client and returns its text. */
async function loadText(server: TestServer): Promise<string> {
  const doc = new Y.Doc();
  const p = stockProvider(3, server.wsUrl, ROOM, doc);
  try {
    await synced(p);
    return textOf(doc);
  } finally {
    p.destroy();
    doc.destroy();
  }
}

const warnings = (server: TestServer, msg: string) => server.logs.filter((l) => l['msg'] === msg);
const errors = (server: TestServer) => server.logs.filter((l) => (l['level'] as number) >= 50);

describe('stored data cannot brick a room', () => {
  it('sets aside entries over the limits or undecodable, loads the rest, and keeps them apart across compaction', async () => {
    const server = await scope.start({ ROOM_IDLE_MS: '0' });
    const registry = registryOf(server);
    const good = textUpdate('kept', 1);
    const truncated = textUpdate('truncated entry', 2).slice(0, 9);
    // Stored before the cost check existed: 20,000 nested maps, then the deletion of the outermost
    // one (Yjs deletes nested types recursively: the stack overflows).
    const deep = deepNesting(3, 20_000);
    const deletion = updateOf(0, 0, [], [[3, [[0, 1]]]]);
    const after = textUpdate(' and after', 4);
    await registry.store.append([{ room: ROOM, updates: [good, deep, deletion, truncated, after] }]);

    const compacted = once(registry, 'compacted');
    const text = await loadText(server);
    expect(text.includes('kept') && text.includes(' and after')).toBe(true);
    expect(await metric(server.url, 'sync_relay_quarantined_updates_total', { source: 'load' })).toBe(2);
    const reported = warnings(server, 'stored relay updates set aside (quarantined); the rest of the room loaded');
    expect(reported).toHaveLength(1);
    expect(reported[0]?.['entries']).toEqual([
      { index: 1, bytes: deep.length, reason: 'depth' },
      { index: 3, bytes: truncated.length, reason: 'malformed' },
    ]);

    // Unloaded (ROOM_IDLE_MS 0) and compacted: the snapshot holds the good state, the two set-aside
    // entries stay in the log, apart.
    await withTimeout(compacted, 10_000, 'compaction');
    const stored = await registry.store.load(ROOM);
    expect(stored.snapshot).not.toBeNull();
    expect(stored.updates.map((u) => u.length).sort()).toEqual([deep.length, truncated.length].sort());

    // Loads again, every time, reported once per period (counted each time).
    expect(await loadText(server)).toBe(text);
    expect(warnings(server, 'stored relay updates set aside (quarantined); the rest of the room loaded')).toHaveLength(1);
    expect(await metric(server.url, 'sync_relay_quarantined_updates_total')).toBeGreaterThanOrEqual(4);
    expect(errors(server)).toEqual([]);
  });

  it('a room whose storage keeps failing is reported once, not once per stock-client retry', async () => {
    const server = await scope.start({});
    const registry = registryOf(server);
    registry.store.load = () => Promise.reject(new Error('storage unreachable'));
    const doc = new Y.Doc();
    const p = stockProvider(3, server.wsUrl, ROOM, doc); // retries every 500 ms at most
    scope.track(p, doc);
    const deadline = Date.now() + 15_000;
    while ((await metric(server.url, 'sync_rejected_messages_total', { reason: 'load_failed' })) < 4) {
      if (Date.now() > deadline) throw new Error('stock client did not retry');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(warnings(server, 'relay room could not be loaded')).toHaveLength(1);
    expect(errors(server)).toEqual([]);
    expect(JSON.stringify(server.logs)).not.toContain('"stack"');
  });
});

describe('updates from other instances', () => {
  it('are checked like a peer\'s: one over the limits is dropped and reported, the others apply; a re-read snapshot may be large', async () => {
    const refused: string[] = [];
    const room = new Room('acme-conversation-remote', {
      fanout: new LocalFanout(),
      limits: DEFAULT_UPDATE_LIMITS,
      presence: DEFAULT_PRESENCE_LIMITS,
      onAccepted: () => undefined,
      onRemoteRefused: (_room, refusal) => refused.push(refusal.limit),
    });
    try {
      expect(room.applyRemoteUpdates([textUpdate('a', 1), deepNesting(2, 20_000), textUpdate('b', 3)])).toBe(true);
      expect(refused).toEqual(['depth']);
      expect(textOf(room.doc).split('').sort().join('')).toBe('ab');
      // After a Redis outage the room re-reads storage: its snapshot holds more than one update may.
      const big = hugeMap(4, DEFAULT_UPDATE_LIMITS.maxStructs + 10);
      expect(room.applyStoredState({ snapshot: big, snapshotSeq: 1, updates: [], lastSeq: 1 })).toBe(true);
      expect(refused).toEqual(['depth']);
      expect(room.doc.getMap('m').size).toBe(DEFAULT_UPDATE_LIMITS.maxStructs + 10);
    } finally {
      room.destroy();
    }
  });

  /** A room with these limits; its refusals of remote updates go to `refused` as [room, limit]. */
  function remoteRoom(name: string, limits: UpdateLimits, refused: Array<[string, string]>): Room {
    return new Room(name, {
      fanout: new LocalFanout(),
      limits,
      presence: DEFAULT_PRESENCE_LIMITS,
      onAccepted: () => undefined,
      onRemoteRefused: (room, refusal) => refused.push([room.name, refusal.limit]),
    });
  }
  const message = (update: Uint8Array): { kind: 'message'; payload: Uint8Array } => ({ kind: 'message', payload: encodeRelayMessage((e) => writeRelayUpdate(e, update)) });
  /** An update whose predecessor no room saw: it waits as pending, over 200 bytes. */
  function waitingUpdate(): Uint8Array {
    const other = new Y.Doc();
    other.getText('text').insert(0, 'c');
    const before = Y.encodeStateVector(other);
    other.getText('text').insert(0, 'd'.repeat(200));
    return Y.encodeStateAsUpdate(other, before);
  }

  it('a message from another instance merges updates checked there: not judged as one update; refused anyway (it cannot apply here), applyRemote says so', () => {
    const refused: Array<[string, string]> = [];
    const room = remoteRoom('acme-conversation-merged', { ...DEFAULT_UPDATE_LIMITS, maxContentBytes: 1000, maxPendingBytes: 100 }, refused);
    try {
      const src = new Y.Doc();
      const updates: Uint8Array[] = [];
      src.on('update', (u: Uint8Array) => updates.push(u));
      src.getText('text').insert(0, 'a'.repeat(800));
      src.getText('text').insert(0, 'b'.repeat(800)); // each within maxContentBytes, the merge is not
      expect(room.applyRemote(message(Y.mergeUpdates(updates)), true)).toBe(true);
      expect(textOf(room.doc).length).toBe(1600);
      // The pending limits count what the room holds waiting, not the message's bytes (a merge of
      // updates each checked where accepted): the first waits; once over the limit, refused, and told.
      expect(room.applyRemote(message(waitingUpdate()), true)).toBe(true);
      expect(room.applyRemote(message(waitingUpdate()), true)).toBe(false);
      expect(refused).toEqual([['acme-conversation-merged', 'pending_bytes']]);
    } finally {
      room.destroy();
    }
  });

  it("each room checks another instance's message against its own configured limits (applyRemote keeps them per limits object)", () => {
    // Two configurations in one process (two registries, as the tests' servers): whichever room
    // takes a message first, the other's limits are not the ones it is checked against.
    const refused: Array<[string, string]> = [];
    const lenient = remoteRoom('acme-conversation-lenient', { ...DEFAULT_UPDATE_LIMITS }, refused);
    const strict = remoteRoom('acme-conversation-strict', { ...DEFAULT_UPDATE_LIMITS, maxPendingBytes: 100 }, refused);
    const waiting = message(waitingUpdate());
    try {
      // each holds one waiting update first (only what a room holds waiting counts)
      for (const room of [lenient, strict]) expect(room.applyRemote(message(waitingUpdate()), true)).toBe(true);
      expect([lenient.applyRemote(waiting, true), strict.applyRemote(waiting, true), lenient.applyRemote(waiting, true)]).toEqual([true, false, true]);
      expect(refused).toEqual([['acme-conversation-strict', 'pending_bytes']]);
    } finally {
      lenient.destroy();
      strict.destroy();
    }
  });
});
