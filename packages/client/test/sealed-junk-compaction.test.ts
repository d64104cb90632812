/**
 * One envelope a writer without the room key stores (any write-scope token can) under a key id no
 * device holds: devices never claimed an entry they could not open, so every snapshot stopped
 * before it and the log grew until the room's quota closed it (4507). Devices now carry such an
 * entry inside their snapshot (src/sealed/carried.ts) and cover past it: the log shrinks back under
 * SEALED_SNAPSHOT_AFTER, and a device that does hold that key (one given a later rotation's key)
 * opens it when it loads the snapshot. Real server, real SyncProviders, the attacker a raw socket
 * with a write token.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import { serverPerTest, TEST_SECRET } from '../../../test/helpers/server.js';
import { keyId } from '../src/sealed/envelope.js';
import { bobUnderNewerKey, compactPast, pushAcked, stats, storeJunk } from './helpers/sealed-junk.js';
import { device, MemStore, settled, texts, when } from './helpers/store-device.js';

const scope = serverPerTest();
afterEach(() => scope.close());
const SNAPSHOT_AFTER = 10;

it('a junk envelope under an unknown key id does not stop compaction, and a fresh device reads everything', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn', SEALED_SNAPSHOT_AFTER: String(SNAPSHOT_AFTER), PERSIST_FLUSH_MS: '5' });
  const room = 'test-conversation-junk-compaction';
  const key = randomBytes(32);
  const a = await device(scope, server.url, room, { key, sub: 'alice' });
  const before = ['one', 'two', 'three'];
  for (const text of before) await pushAcked(a, text);
  const junkSeq = await storeJunk(server, room, { keyId: randomBytes(4) });
  const after = await compactPast(server, room, a, junkSeq, 'after', SNAPSHOT_AFTER);
  expect(a.errors.some((e) => e.source === 'sealed' && e.message.includes('unknown key'))).toBe(true);
  await a.stop();

  const fresh = await device(scope, server.url, room, { key, sub: 'carol' });
  await when(() => texts(fresh.doc).length === before.length + after.length, () => `the fresh device reads the room (has ${JSON.stringify(texts(fresh.doc))})`);
  expect(texts(fresh.doc)).toEqual([...before, ...after]);
});

it("a junk envelope under the room's own key id (its tag fails for every holder of the key) does not stop compaction either", async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn', SEALED_SNAPSHOT_AFTER: String(SNAPSHOT_AFTER), PERSIST_FLUSH_MS: '5' });
  const room = 'test-conversation-junk-known-id';
  const key = randomBytes(32);
  const a = await device(scope, server.url, room, { key, sub: 'alice' });
  await pushAcked(a, 'one');
  const junkSeq = await storeJunk(server, room, { keyId: keyId(key) });
  const after = await compactPast(server, room, a, junkSeq, 'after', SNAPSHOT_AFTER);
  expect(a.errors.some((e) => e.source === 'sealed' && e.message.includes('does not open'))).toBe(true);
  await a.stop();
  const fresh = await device(scope, server.url, room, { key, sub: 'carol' });
  await when(() => texts(fresh.doc).length === 1 + after.length, () => `the fresh device reads the room (has ${JSON.stringify(texts(fresh.doc))})`);
  expect(fresh.errors).toEqual([]);
});

it('an entry under a newer key is carried through the snapshot and opened by a device that holds that key', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn', SEALED_SNAPSHOT_AFTER: String(SNAPSHOT_AFTER), PERSIST_FLUSH_MS: '5' });
  const room = 'test-conversation-carried-newer-key';
  const [k1, k2] = [randomBytes(32), randomBytes(32)];
  const a = await device(scope, server.url, room, { key: k1, sub: 'alice' });
  for (const text of ['one', 'two']) await pushAcked(a, text);
  await a.stop();

  // bob got the rotated key first: he reads k1 entries and writes one under k2, then leaves
  const b = await device(scope, server.url, room, { key: k2, previousKeys: [k1], sub: 'bob' });
  await when(() => texts(b.doc).length === 2, 'bob read the room');
  await pushAcked(b, 'from bob under k2');
  const bobSeq = (await stats(server, room)).head;
  await b.stop();

  // alice (k1 only) compacts past bob's entry, which she cannot open
  const a2 = await device(scope, server.url, room, { key: k1, sub: 'alice', doc: a.doc });
  await when(() => settled(a2) && texts(a2.doc).length === 2, 'alice back');
  const after = await compactPast(server, room, a2, bobSeq, 'after', SNAPSHOT_AFTER);
  expect(texts(a2.doc)).not.toContain('from bob under k2');
  await a2.stop();

  // a device holding k2 loads alice's snapshot (sealed with k1) and opens what it carries
  const c = await device(scope, server.url, room, { key: k2, previousKeys: [k1], sub: 'carol' });
  await when(() => texts(c.doc).includes('from bob under k2') && texts(c.doc).length === 3 + after.length, () => `carol reads the room (has ${JSON.stringify(texts(c.doc))})`);
  expect(c.p.sealedRelay?.stats.carriedOpened).toBeGreaterThan(0);
});

it('a device that restarts from its persistence keeps carrying what its snapshot carried', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn', SEALED_SNAPSHOT_AFTER: String(SNAPSHOT_AFTER), PERSIST_FLUSH_MS: '5' });
  const room = 'test-conversation-carried-restart';
  const { k1, k2, bobSeq } = await bobUnderNewerKey(scope, server, room);

  const store = new MemStore();
  const a = await device(scope, server.url, room, { key: k1, sub: 'alice', store });
  const first = await compactPast(server, room, a, bobSeq, 'first', SNAPSHOT_AFTER);
  await a.stop();
  // the cursor stored stays below what alice carries: her next session reads her snapshot again
  expect(store.cursor()).toBeLessThan(bobSeq);
  const covers = (await stats(server, room)).snapshotCovers;

  const a2 = await device(scope, server.url, room, { key: k1, sub: 'alice', store });
  await when(() => settled(a2), 'alice back');
  const second = await compactPast(server, room, a2, covers, 'second', SNAPSHOT_AFTER);
  await a2.stop();

  const c = await device(scope, server.url, room, { key: k2, previousKeys: [k1], sub: 'carol' });
  await when(() => texts(c.doc).includes('from bob under k2') && texts(c.doc).length === 1 + first.length + second.length, () => `carol reads the room (has ${JSON.stringify(texts(c.doc))})`);
});
