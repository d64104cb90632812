/**
 * One envelope a writer without the room key stores (any write-scope token can) under a key id no
 * device holds: devices never claimed an entry they could not open, so every snapshot stopped
 * before it and the log grew until the room's quota closed it (4507). Devices now carry such an
 * entry inside their snapshot (src/sealed/carried.ts) and cover past it: the log shrinks back under
 * SEALED_SNAPSHOT_AFTER, and a device that does hold that key (one given a later rotation's key)
 * opens it when it loads the snapshot. Real server, real SyncProviders, the attacker a raw socket
 * with a write token.
 */
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import type { WebSocket as WsSocket } from 'ws';
import { encodeSealedMessage, readSealedServerMessage, writeSealedHello, writeSealedUpdate } from '@sync-suite/shared';
import { serverPerTest, testToken, TEST_SECRET, type TestServer } from '../../../test/helpers/server.js';
import { sealedRegistry } from '../../../apps/server/src/routes/sealed/index.js';
import { keyId } from '../src/sealed/envelope.js';
import { device, MemStore, push, settled, texts, when, type Device } from './helpers/store-device.js';

const scope = serverPerTest();
afterEach(() => scope.close());
const WebSocket = createRequire(import.meta.url)('ws') as typeof WsSocket & (new (url: string) => WsSocket);
const SNAPSHOT_AFTER = 10;

async function stats(server: TestServer, room: string): Promise<{ head: number; snapshotCovers: number; entries: number }> {
  const store = sealedRegistry(server.app)?.store;
  if (!store) throw new Error('no sealed store');
  return store.stats(room);
}

/** One entry per push, each acked before the next, so the snapshot request comes when expected. */
async function pushAcked(d: Device, text: string): Promise<void> {
  push(d, text);
  await when(() => settled(d) && d.p.sealedRelay?.pending === 0, `${text} acked`);
}

/** Stores one envelope of 64 bytes under `id` (an unknown key id) through a raw socket with a write token; resolves with its seq. */
async function storeJunk(server: TestServer, room: string, id: Uint8Array): Promise<number> {
  const atk = new WebSocket(`${server.wsUrl}/sealed/${room}?token=${await testToken('mallory', ['test-*'])}`);
  try {
    const seq = new Promise<number>((resolve, reject) => {
      atk.on('open', () => atk.send(encodeSealedMessage((e) => writeSealedHello(e, 0, 0))));
      atk.on('message', (data: Buffer) => {
        const r = readSealedServerMessage(new Uint8Array(data));
        if (!r.ok) return;
        if (r.message.type === 'caught-up') {
          const junk = randomBytes(64);
          junk.set([1, 1, ...id]); // version 1, kind update, the key id
          atk.send(encodeSealedMessage((e) => writeSealedUpdate(e, 1, junk)));
        }
        if (r.message.type === 'ack') resolve(r.message.seq);
      });
      atk.on('close', (code) => reject(new Error(`mallory closed ${code}`)));
    });
    return await Promise.race([seq, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('junk not stored in 10 s')), 10_000))]);
  } finally {
    atk.close();
  }
}

/** Pushes until a snapshot covers `past` and the log is back under the threshold (bounded). */
async function compactPast(server: TestServer, room: string, d: Device, past: number, prefix: string): Promise<string[]> {
  const pushed: string[] = [];
  for (let i = 0; i < 3 * SNAPSHOT_AFTER; i++) {
    const s = await stats(server, room);
    if (s.snapshotCovers > past && s.entries < SNAPSHOT_AFTER) return pushed;
    const text = `${prefix} ${i}`;
    await pushAcked(d, text);
    pushed.push(text);
  }
  const s = await stats(server, room);
  throw new Error(`no snapshot past ${past}: snapshot covers ${s.snapshotCovers} with ${s.entries} entries left (head ${s.head})`);
}

it('a junk envelope under an unknown key id does not stop compaction, and a fresh device reads everything', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn', SEALED_SNAPSHOT_AFTER: String(SNAPSHOT_AFTER), PERSIST_FLUSH_MS: '5' });
  const room = 'test-conversation-junk-compaction';
  const key = randomBytes(32);
  const a = await device(scope, server.url, room, { key, sub: 'alice' });
  const before = ['one', 'two', 'three'];
  for (const text of before) await pushAcked(a, text);
  const junkSeq = await storeJunk(server, room, randomBytes(4));
  const after = await compactPast(server, room, a, junkSeq, 'after');
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
  const junkSeq = await storeJunk(server, room, keyId(key));
  const after = await compactPast(server, room, a, junkSeq, 'after');
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
  const after = await compactPast(server, room, a2, bobSeq, 'after');
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
  const [k1, k2] = [randomBytes(32), randomBytes(32)];
  const b = await device(scope, server.url, room, { key: k2, previousKeys: [k1], sub: 'bob' });
  await pushAcked(b, 'from bob under k2');
  const bobSeq = (await stats(server, room)).head;
  await b.stop();

  const store = new MemStore();
  const a = await device(scope, server.url, room, { key: k1, sub: 'alice', store });
  const first = await compactPast(server, room, a, bobSeq, 'first');
  await a.stop();
  // the cursor stored stays below what alice carries: her next session reads her snapshot again
  expect(store.cursor()).toBeLessThan(bobSeq);
  const covers = (await stats(server, room)).snapshotCovers;

  const a2 = await device(scope, server.url, room, { key: k1, sub: 'alice', store });
  await when(() => settled(a2), 'alice back');
  const second = await compactPast(server, room, a2, covers, 'second');
  await a2.stop();

  const c = await device(scope, server.url, room, { key: k2, previousKeys: [k1], sub: 'carol' });
  await when(() => texts(c.doc).includes('from bob under k2') && texts(c.doc).length === 1 + first.length + second.length, () => `carol reads the room (has ${JSON.stringify(texts(c.doc))})`);
});
