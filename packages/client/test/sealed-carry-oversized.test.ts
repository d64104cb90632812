/**
 * Review probe (src/sealed/carried.ts): one stored envelope larger than `sealed.carry.maxBytes` can
 * never be carried, yet adding it dropped every older carried envelope first (the oldest go until
 * the bytes fit, and they fit only once it went too). So a writer without the key pushed an honest
 * newer-key entry out of the carried set with one envelope, and gained nothing for its own. Real
 * server, real SyncProviders, the attacker a raw socket with a write token.
 */
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { WebSocket as WsSocket } from 'ws';
import { encodeSealedMessage, readSealedServerMessage, writeSealedHello, writeSealedUpdate } from '@sync-suite/shared';
import { serverPerTest, testToken, TEST_SECRET, type TestServer } from '../../../test/helpers/server.js';
import { sealedRegistry } from '../../../apps/server/src/routes/sealed/index.js';
import { CarriedEnvelopes } from '../src/sealed/carried.js';
import { device, push, settled, texts, when, type Device } from './helpers/store-device.js';

const scope = serverPerTest();
afterEach(() => scope.close());
const WebSocket = createRequire(import.meta.url)('ws') as typeof WsSocket & (new (url: string) => WsSocket);
const SNAPSHOT_AFTER = 10;

async function stats(server: TestServer, room: string): Promise<{ head: number; snapshotCovers: number; entries: number }> {
  const store = sealedRegistry(server.app)?.store;
  if (!store) throw new Error('no sealed store');
  return store.stats(room);
}

async function pushAcked(d: Device, text: string): Promise<void> {
  push(d, text);
  await when(() => settled(d) && d.p.sealedRelay?.pending === 0, `${text} acked`);
}

/** Stores one envelope of `bytes` under an unknown key id through a raw socket with a write token; resolves with its seq. */
async function storeJunk(server: TestServer, room: string, bytes: number): Promise<number> {
  const atk = new WebSocket(`${server.wsUrl}/sealed/${room}?token=${await testToken('mallory', ['test-*'])}`);
  try {
    const seq = new Promise<number>((resolve, reject) => {
      atk.on('open', () => atk.send(encodeSealedMessage((e) => writeSealedHello(e, 0, 0))));
      atk.on('message', (data: Buffer) => {
        const r = readSealedServerMessage(new Uint8Array(data));
        if (!r.ok) return;
        if (r.message.type === 'caught-up') {
          const junk = randomBytes(bytes);
          junk.set([1, 1]); // version 1, kind update, then a random (unknown) key id
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

describe('an envelope over maxBytes', () => {
  it('is not carried and drops nothing carried before it', () => {
    const c = new CarriedEnvelopes({ maxEnvelopes: 64, maxBytes: 1000, maxAgeSeqs: 10_000 });
    c.add(1, new Uint8Array(100));
    c.add(2, new Uint8Array(1001));
    expect(c.forSnapshot(10).map((e) => e.seq)).toEqual([1]);
  });

  it('stored by a writer without the key does not push an honest newer-key entry out of the snapshot', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn', SEALED_SNAPSHOT_AFTER: String(SNAPSHOT_AFTER), PERSIST_FLUSH_MS: '5' });
    const room = 'test-conversation-carry-oversized';
    const [k1, k2] = [randomBytes(32), randomBytes(32)];
    // bob got the rotated key first, writes one entry under k2 and leaves
    const b = await device(scope, server.url, room, { key: k2, previousKeys: [k1], sub: 'bob' });
    await pushAcked(b, 'from bob under k2');
    const bobSeq = (await stats(server, room)).head;
    await b.stop();
    // one envelope just over the default maxBytes (256 KiB), under a key id nobody holds
    const junkSeq = await storeJunk(server, room, 256 * 1024 + 64);
    expect(junkSeq).toBeGreaterThan(bobSeq);

    const a = await device(scope, server.url, room, { key: k1, sub: 'alice' });
    const after = await compactPast(server, room, a, junkSeq, 'after');
    await a.stop();

    const c = await device(scope, server.url, room, { key: k2, previousKeys: [k1], sub: 'carol' });
    await when(() => settled(c) && texts(c.doc).length >= after.length, 'carol caught up');
    await when(() => texts(c.doc).includes('from bob under k2'), () => `carol reads bob's entry (has ${JSON.stringify(texts(c.doc))})`);
  });
});
