/**
 * Review probe (src/sealed/carried.ts): one stored envelope larger than `sealed.carry.maxBytes` can
 * never be carried, yet adding it dropped every older carried envelope first (the oldest go until
 * the bytes fit, and they fit only once it went too). So a writer without the key pushed an honest
 * newer-key entry out of the carried set with one envelope, and gained nothing for its own. Real
 * server, real SyncProviders, the attacker a raw socket with a write token.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { serverPerTest, TEST_SECRET } from '../../../test/helpers/server.js';
import { CarriedEnvelopes } from '../src/sealed/carried.js';
import { bobUnderNewerKey, compactPast, storeJunk } from './helpers/sealed-junk.js';
import { device, settled, texts, when } from './helpers/store-device.js';

const scope = serverPerTest();
afterEach(() => scope.close());
const SNAPSHOT_AFTER = 10;

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
    // bob got the rotated key first, writes one entry under k2 and leaves
    const { k1, k2, bobSeq } = await bobUnderNewerKey(scope, server, room);
    // one envelope just over the default maxBytes (256 KiB), under a key id nobody holds
    const junkSeq = await storeJunk(server, room, { bytes: 256 * 1024 + 64 });
    expect(junkSeq).toBeGreaterThan(bobSeq);

    const a = await device(scope, server.url, room, { key: k1, sub: 'alice' });
    const after = await compactPast(server, room, a, junkSeq, 'after', SNAPSHOT_AFTER);
    await a.stop();

    const c = await device(scope, server.url, room, { key: k2, previousKeys: [k1], sub: 'carol' });
    await when(() => settled(c) && texts(c.doc).length >= after.length, 'carol caught up');
    await when(() => texts(c.doc).includes('from bob under k2'), () => `carol reads bob's entry (has ${JSON.stringify(texts(c.doc))})`);
  });
});
