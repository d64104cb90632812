/**
 * Quotas on /sealed, as on /relay: ROOM_MAX_BYTES refuses the update envelope that would take a
 * sealed room's stored bytes above it (close 4507; one that reaches it exactly is taken; each
 * stored entry also costs SEALED_ROW_OVERHEAD_BYTES), envelopes shorter than a sealed one are
 * malformed, and
 * MAX_NEW_ROOMS_PER_SUB_PER_HOUR counts a sealed room with nothing stored as new (close 4429),
 * together with the sub's plain rooms.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Errors, SEALED_ENVELOPE_MIN_BYTES } from '@sync-suite/shared';
import { serverPerTest, TEST_SECRET, testToken, type TestServer } from '../../../test/helpers/server.js';
import { fakeEnvelope, RawSealed } from '../../../test/fixtures/sealed-raw.js';
import { metric, stockClient, synced } from '../../../test/fixtures/relay-clients.js';
import { sealedRegistry } from '../src/routes/sealed/index.js';
import { SEALED_ROW_OVERHEAD_BYTES } from '../src/sealed/store/types.js';

const scope = serverPerTest();
afterEach(() => scope.close());

async function device(server: TestServer, room: string, token?: string): Promise<RawSealed> {
  const c = await RawSealed.connect(server.wsUrl, `/sealed/${room}${token ? `?token=${token}` : ''}`);
  scope.track(c);
  c.hello(0);
  return c;
}

describe('ROOM_MAX_BYTES on sealed rooms', () => {
  it('takes envelopes up to the limit exactly, each stored entry charged SEALED_ROW_OVERHEAD_BYTES; closes 4507 past it; stored bytes count after a reload', async () => {
    const server = await scope.start({ ROOM_MAX_BYTES: '1000', PERSIST_FLUSH_MS: '10', ROOM_IDLE_MS: '0' });
    const room = 'acme-conversation-squota';
    const writer = await device(server, room);
    const reader = await device(server, room);
    await Promise.all([writer.next('caught-up'), reader.next('caught-up')]);
    writer.update(1, fakeEnvelope([1], 400));
    await writer.next('ack');
    // each with its row's overhead: 400 + overhead + (1000 - 400 - 2 x overhead) + overhead is exactly 1000, taken
    writer.update(2, fakeEnvelope([2], 1000 - 400 - 2 * SEALED_ROW_OVERHEAD_BYTES));
    await writer.wait(() => writer.messages.filter((m) => m.type === 'ack').length === 2, 'two acks');
    // the smallest envelope is refused now
    writer.update(3, fakeEnvelope([3]));
    expect(await writer.closed()).toBe(4507);
    expect(await metric(server.url, 'sync_quota_refusals_total', { quota: 'room_bytes' })).toBe(1);
    expect(reader.messages.filter((m) => m.type === 'entry')).toHaveLength(2);
    reader.update(1, fakeEnvelope([4]));
    expect(await reader.closed()).toBe(4507);

    // Unloaded, then loaded again: the size (with the rows' overhead) comes from storage.
    const registry = sealedRegistry(server.app);
    for (let i = 0; i < 100 && registry?.rooms.has(room); i++) await new Promise((r) => setTimeout(r, 20));
    expect(registry?.rooms.has(room)).toBe(false);
    const later = await device(server, room);
    await later.next('caught-up');
    later.update(1, fakeEnvelope([5]));
    expect(await later.closed()).toBe(4507);
    expect(await metric(server.url, 'sync_quota_refusals_total', { quota: 'room_bytes' })).toBe(3);
  });

  it('charges envelopes not yet committed with their row overhead too', async () => {
    // One commit window for both: the second is checked while the first is still pending.
    const server = await scope.start({ ROOM_MAX_BYTES: '1000', PERSIST_FLUSH_MS: '200' });
    const writer = await device(server, 'acme-conversation-squota-pending');
    await writer.next('caught-up');
    // 400 + overhead + 100 + overhead > 1000, although 400 + 100 is not
    writer.update(1, fakeEnvelope([1], 400));
    writer.update(2, fakeEnvelope([2], 100));
    expect(await writer.closed()).toBe(4507);
    expect(await metric(server.url, 'sync_quota_refusals_total', { quota: 'room_bytes' })).toBe(1);
  });

  it('refuses an envelope shorter than the smallest a client can seal (46 bytes) as malformed, storing nothing', async () => {
    const server = await scope.start({ PERSIST_FLUSH_MS: '10' });
    const room = 'acme-conversation-sshort';
    const writer = await device(server, room);
    await writer.next('caught-up');
    writer.update(1, new Uint8Array(SEALED_ENVELOPE_MIN_BYTES - 1));
    expect(await writer.closed()).toBe(Errors.ERR_PROTOCOL.closeCode);
    const ok = await device(server, room);
    await ok.next('caught-up');
    ok.update(1, new Uint8Array(SEALED_ENVELOPE_MIN_BYTES));
    expect((await ok.next('ack')).seq).toBe(1);
  });
});

describe('MAX_NEW_ROOMS_PER_SUB_PER_HOUR on sealed rooms', () => {
  it('counts sealed rooms with nothing stored, with the sub\'s plain rooms; stored rooms and other subs still open', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, MAX_NEW_ROOMS_PER_SUB_PER_HOUR: '2', PERSIST_FLUSH_MS: '10' });
    const [alice, bob] = [await testToken('alice', ['acme-*']), await testToken('bob', ['acme-*'])];
    const s1 = await device(server, 'acme-conversation-s1', alice);
    await s1.next('caught-up');
    const plain = stockClient(3, server.wsUrl, 'acme-conversation-p1', { token: alice });
    scope.track(plain);
    await synced(plain.p); // the second new room, on /relay
    const third = await device(server, 'acme-conversation-s3', alice);
    expect(await third.closed()).toBe(4429);
    expect(await metric(server.url, 'sync_quota_refusals_total', { quota: 'new_rooms' })).toBe(1);

    await (await device(server, 'acme-conversation-s1', alice)).next('caught-up'); // the same room again
    const bobs = await device(server, 'acme-conversation-s3', bob);
    await bobs.next('caught-up');
    bobs.update(1, fakeEnvelope([1, 2, 3]));
    await bobs.next('ack');
    await (await device(server, 'acme-conversation-s3', alice)).next('caught-up'); // now stored: not new
  });
});
