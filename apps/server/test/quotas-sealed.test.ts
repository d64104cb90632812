/**
 * Quotas on /sealed, as on /relay: ROOM_MAX_BYTES refuses the update envelope that would take a
 * sealed room's stored bytes above it (close 4507; one that reaches it exactly is taken), and
 * MAX_NEW_ROOMS_PER_SUB_PER_HOUR counts a sealed room with nothing stored as new (close 4429),
 * together with the sub's plain rooms.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { serverPerTest, TEST_SECRET, testToken, type TestServer } from '../../../test/helpers/server.js';
import { RawSealed } from '../../../test/fixtures/sealed-raw.js';
import { metric, stockClient, synced } from '../../../test/fixtures/relay-clients.js';
import { sealedRegistry } from '../src/routes/sealed/index.js';

const scope = serverPerTest();
afterEach(() => scope.close());

async function device(server: TestServer, room: string, token?: string): Promise<RawSealed> {
  const c = await RawSealed.connect(server.wsUrl, `/sealed/${room}${token ? `?token=${token}` : ''}`);
  scope.track(c);
  c.hello(0);
  return c;
}

describe('ROOM_MAX_BYTES on sealed rooms', () => {
  it('takes envelopes up to the limit exactly, closes 4507 on the next byte; stored bytes count after a reload', async () => {
    const server = await scope.start({ ROOM_MAX_BYTES: '1000', PERSIST_FLUSH_MS: '10', ROOM_IDLE_MS: '0' });
    const room = 'acme-conversation-squota';
    const writer = await device(server, room);
    const reader = await device(server, room);
    await Promise.all([writer.next('caught-up'), reader.next('caught-up')]);
    writer.update(1, new Uint8Array(600));
    writer.update(2, new Uint8Array(400)); // exactly 1000: taken
    await writer.wait(() => writer.messages.filter((m) => m.type === 'ack').length === 2, 'two acks');
    writer.update(3, new Uint8Array(1));
    expect(await writer.closed()).toBe(4507);
    expect(await metric(server.url, 'sync_quota_refusals_total', { quota: 'room_bytes' })).toBe(1);
    expect(reader.messages.filter((m) => m.type === 'entry')).toHaveLength(2);
    reader.update(1, new Uint8Array(1));
    expect(await reader.closed()).toBe(4507);

    // Unloaded, then loaded again: the size comes from storage.
    const registry = sealedRegistry(server.app);
    for (let i = 0; i < 100 && registry?.rooms.has(room); i++) await new Promise((r) => setTimeout(r, 20));
    expect(registry?.rooms.has(room)).toBe(false);
    const later = await device(server, room);
    await later.next('caught-up');
    later.update(1, new Uint8Array(1));
    expect(await later.closed()).toBe(4507);
    expect(await metric(server.url, 'sync_quota_refusals_total', { quota: 'room_bytes' })).toBe(3);
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
    bobs.update(1, Uint8Array.from([1, 2, 3]));
    await bobs.next('ack');
    await (await device(server, 'acme-conversation-s3', alice)).next('caught-up'); // now stored: not new
  });
});
