/**
 * Well-formed updates built to hurt the relay: each class is refused with 4413 naming the limit
 * before it touches the room, counted, logged at info without a stack, and the room, its honest
 * writer and the server carry on (a newcomer gets exactly the honest document). An update Yjs
 * cannot decode (a sub-document with null options) is refused 4400 by the same check.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { encodeRelayMessage, Errors, writeRelayQueryAwareness, writeRelayUpdate } from '@sync-suite/shared';
import { serverPerTest, type TestServer } from '../../../test/helpers/server.js';
import { withTimeout } from '../../../test/helpers/timeout.js';
import { docUntil, metric, RawClient, stockProvider, synced, textOf } from '../../../test/fixtures/relay-clients.js';
import { deepAnyItem, deepNesting, deleteSetOfStrangers, hugeMap, jsonItem, manySubdocs, mapAfter, mapItem, nestingStep, stringItem, subdocItem, updateOf } from './hostile-updates.js';

const ROOM = 'acme-conversation-hostile';
const scope = serverPerTest();
afterEach(() => scope.close());

/** Sends update frames on a fresh raw connection; resolves with how it was closed (code 0: still open). */
async function attack(server: TestServer, updates: Uint8Array[], room = ROOM): Promise<{ code: number; reason: string }> {
  const c = await RawClient.connect(`${server.wsUrl}/relay/${room}`);
  let reason = '';
  c.ws.on('close', (_code: number, r: Buffer) => (reason = r.toString()));
  try {
    await c.next((m) => m.type === 'sync-step1');
    for (const u of updates) c.send(encodeRelayMessage((e) => writeRelayUpdate(e, u)));
    c.send(encodeRelayMessage((e) => writeRelayQueryAwareness(e)));
    await withTimeout(Promise.race([c.closed(20_000), c.next((m) => m.type === 'awareness', 20_000)]), 20_000, 'attack processed');
    return { code: c.closeCode ?? 0, reason };
  } finally {
    c.close();
  }
}

/** An honest stock writer in ROOM, with some content. */
async function honestRoom(server: TestServer): Promise<Y.Doc> {
  const doc = new Y.Doc();
  const p = stockProvider(3, server.wsUrl, ROOM, doc);
  scope.track(p, doc);
  await synced(p);
  doc.getText('text').insert(0, 'honest content');
  doc.getMap('m').set('nested', new Y.Map([['k', 'v']]));
  return doc;
}

/** The room is served fresh exactly as the honest writer has it, and the writer still writes. */
async function expectHealthy(server: TestServer, honest: Y.Doc): Promise<void> {
  expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  honest.getText('text').insert(0, '+');
  const fresh = new Y.Doc();
  const p = stockProvider(2, server.wsUrl, ROOM, fresh);
  scope.track(p, fresh);
  await synced(p);
  await docUntil(fresh, () => textOf(fresh) === textOf(honest));
  // What the attacker left pending (waiting for structs that never come) may be served along,
  // but never applies: everything that did apply is the honest document.
  if (!fresh.store.pendingStructs && !fresh.store.pendingDs) expect(Y.encodeStateAsUpdate(fresh)).toEqual(Y.encodeStateAsUpdate(honest));
  expect(fresh.getMap('m').toJSON()).toEqual(honest.getMap('m').toJSON());
  const errors = server.logs.filter((l) => (l['level'] as number) >= 50 || JSON.stringify(l).includes('"stack"'));
  expect(errors).toEqual([]);
}

const CLASSES: Array<[string, () => Uint8Array[], string]> = [
  ['types nested 20,000 deep in one update', () => [deepNesting(77, 20_000)], 'depth'],
  ['a delete set naming 30,000 unknown clients', () => [deleteSetOfStrangers(30_000)], 'delete_clients'],
  ['deletions of unknown clients that would be retried on every update', () => [deleteSetOfStrangers(5_000)], 'pending_deletes'],
  ['a map of 300,000 keys', () => [hugeMap(78, 300_000)], 'structs'],
  ['2,000 sub-documents', () => [manySubdocs(79, 2_000)], 'subdocs'],
  ['a plain value nested 100,000 deep', () => [updateOf(80, 0, [deepAnyItem({ root: 'm' }, 100_000, 'x')])], 'value_depth'],
  ['JSON content nested 100,000 deep', () => [updateOf(81, 0, [jsonItem({ root: 'm' }, '['.repeat(100_000) + ']'.repeat(100_000), 'x')])], 'value_depth'],
  ['a 1 MB map key', () => [updateOf(82, 0, [stringItem({ root: 'm' }, 'v', 'k'.repeat(1_000_000))])], 'key_bytes'],
];

describe('hostile relay updates', () => {
  it.each(CLASSES)('%s: refused with 4413 before it touches the room', async (_name, build, limit) => {
    const server = await scope.start({ MAX_MESSAGES_PER_SECOND: '100000' });
    const honest = await honestRoom(server);
    const closed = await attack(server, build());
    expect(closed).toEqual({ code: 4413, reason: `update over a cost limit: ${limit}` });
    expect(await metric(server.url, 'sync_rejected_messages_total', { endpoint: 'relay', reason: `update_${limit}` })).toBe(1);
    const line = server.logs.find((l) => l['msg'] === 'relay update refused' && l['limit'] === limit && l['level'] === 30);
    // The connection's logger is made on its first line (relay/connection.ts): it still names the connection and its room.
    expect(line?.['room']).toBe(ROOM);
    expect(line?.['conn']).toMatch(/^[0-9a-f-]{36}$/);
    await expectHealthy(server, honest);
  });

  it('a sub-document with null options (Yjs throws decoding it) is refused 4400 by the check; the room is not reloaded and its members stay connected', async () => {
    const server = await scope.start({ MAX_MESSAGES_PER_SECOND: '100000' });
    const honest = await honestRoom(server);
    const member = await RawClient.connect(`${server.wsUrl}/relay/${ROOM}`);
    scope.track(member);
    await member.next((m) => m.type === 'sync-step1');
    const poison = updateOf(94, 0, [subdocItem({ root: 'm' }, 'sub', null)]);
    expect(() => Y.applyUpdate(new Y.Doc(), poison)).toThrow(TypeError);
    const closed = await attack(server, [poison]);
    expect(closed.code).toBe(Errors.ERR_PROTOCOL.closeCode);
    expect(await metric(server.url, 'sync_rejected_messages_total', { endpoint: 'relay', reason: 'bad_update' })).toBe(1);
    // Refused by the check (update-reader.ts), not found out while applying (which reloads the room).
    expect(server.logs.some((l) => l['msg'] === 'relay update refused' && l['limit'] === 'malformed' && l['level'] === 30)).toBe(true);
    expect(server.logs.filter((l) => l['msg'] === 'update failed while applying; evicting the room')).toEqual([]);
    await expectHealthy(server, honest);
    expect(member.closeCode).toBeNull();
  });

  it('nesting built one level per update stops at RELAY_MAX_UPDATE_DEPTH; deleting the nest is harmless', async () => {
    const server = await scope.start({ MAX_MESSAGES_PER_SECOND: '100000', RELAY_MAX_UPDATE_DEPTH: '8', ROOM_IDLE_MS: '0' });
    const honest = await honestRoom(server);
    // Levels: the root map is 1, so 7 nested maps (clocks 0..6) reach 8; the 8th is refused.
    const steps = Array.from({ length: 12 }, (_, clock) => nestingStep(90, clock, 'nest'));
    expect(await attack(server, steps)).toEqual({ code: 4413, reason: 'update over a cost limit: depth' });
    // The accepted levels are there; deleting the outermost one deletes the nest (recursively in Yjs).
    const deletion = updateOf(0, 0, [], [[90, [[0, 1]]]]);
    expect((await attack(server, [deletion])).code).toBe(0);
    await expectHealthy(server, honest);
  });

  it('an update completing pending structs is checked with them (out-of-order nesting)', async () => {
    const server = await scope.start({ MAX_MESSAGES_PER_SECOND: '100000', RELAY_MAX_UPDATE_DEPTH: '8' });
    const honest = await honestRoom(server);
    // Levels 2..12 first (they wait for level 1), then level 1: together they are 12 deep.
    const steps = Array.from({ length: 12 }, (_, clock) => nestingStep(91, clock, 'nest'));
    const closed = await attack(server, [...steps.slice(1).reverse(), steps[0] as Uint8Array]);
    expect(closed).toEqual({ code: 4413, reason: 'update over a cost limit: depth' });
    await expectHealthy(server, honest);
  });

  it('a nest waiting for a plain item is checked when that item arrives', async () => {
    const server = await scope.start({ MAX_MESSAGES_PER_SECOND: '100000', RELAY_MAX_UPDATE_DEPTH: '8' });
    const honest = await honestRoom(server);
    // 12 nested maps whose outermost sits after a string of client 93 not sent yet: all pending.
    const nest = updateOf(92, 0, [mapAfter([93, 0]), ...Array.from({ length: 11 }, (_, i) => mapItem({ item: [92, i] }))]);
    expect((await attack(server, [nest])).code).toBe(0);
    // The string nests nothing itself, but completes the nest: 13 levels.
    const closed = await attack(server, [updateOf(93, 0, [stringItem({ root: 'list' }, 'x')])]);
    expect(closed).toEqual({ code: 4413, reason: 'update over a cost limit: depth' });
    await expectHealthy(server, honest);
  });
});
