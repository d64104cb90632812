/**
 * Quotas: ROOM_MAX_BYTES refuses the update that would take a room's stored size above it (close
 * 4507), and MAX_NEW_ROOMS_PER_SUB_PER_HOUR refuses one sub's next room with nothing stored
 * (close 4429, its own reason) while rooms it already opened, stored rooms and other subs still work.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { encodeRelayMessage, writeRelayUpdate } from '@sync-suite/shared';
import { serverPerTest, TEST_SECRET, testToken, type TestServer } from '../../../test/helpers/server.js';
import { RawClient, metric } from '../../../test/fixtures/relay-clients.js';

const scope = serverPerTest();
afterEach(() => scope.close());

function updateOf(bytes: number): Uint8Array {
  const d = new Y.Doc();
  d.getText('t').insert(0, 'x'.repeat(bytes));
  return encodeRelayMessage((e) => writeRelayUpdate(e, Y.encodeStateAsUpdate(d)));
}

async function open(server: TestServer, room: string, token?: string): Promise<RawClient> {
  const c = await RawClient.connect(`${server.wsUrl}/relay/${room}${token ? `?token=${token}` : ''}`);
  scope.track(c);
  return c;
}

const ready = (c: RawClient) => c.next((m) => m.type === 'sync-step1', 5000, 'sync step 1');

describe('ROOM_MAX_BYTES', () => {
  it('closes 4507 on the update that would pass the limit, counted; the room keeps what it had', async () => {
    const server = await scope.start({ ROOM_MAX_BYTES: '2000' });
    const room = 'acme-conversation-quota';
    const writer = await open(server, room);
    const reader = await open(server, room);
    await Promise.all([ready(writer), ready(reader)]);
    for (let i = 0; i < 3; i++) writer.send(updateOf(600));
    await reader.next(() => reader.messages.filter((m) => m.type === 'update').length === 3, 5000, 'three updates relayed');
    writer.send(updateOf(600));
    expect(await writer.closed()).toBe(4507);
    expect(await metric(server.url, 'sync_quota_refusals_total', { quota: 'room_bytes' })).toBe(1);
    expect(reader.closeCode).toBeNull();
  });
});

describe('ROOM_MAX_BYTES after compaction', () => {
  it('counts what storage holds once the log is folded: a room that keeps overwriting one value is never refused', async () => {
    const server = await scope.start({ ROOM_MAX_BYTES: '4000', COMPACT_AFTER_UPDATES: '4', PERSIST_FLUSH_MS: '10' });
    const room = 'acme-conversation-overwrite';
    const writer = await open(server, room);
    const reader = await open(server, room);
    await Promise.all([ready(writer), ready(reader)]);
    const doc = new Y.Doc();
    const updates: Uint8Array[] = [];
    doc.on('update', (u: Uint8Array) => updates.push(encodeRelayMessage((e) => writeRelayUpdate(e, u))));
    // 24 updates of about 320 B each (7.7 KB in all); the document stays one value of 300 B.
    for (let batch = 1; batch <= 6; batch++) {
      for (let i = 0; i < 4; i++) doc.getMap('m').set('k', String(batch * 10 + i).repeat(150));
      for (const u of updates.splice(0)) writer.send(u);
      await reader.next(() => reader.messages.filter((m) => m.type === 'update').length === batch * 4, 5000, `batch ${batch} relayed`);
      await server.app.relayRooms?.drain(); // committed and compacted
    }
    expect(writer.closeCode).toBeNull();
    expect(await metric(server.url, 'sync_quota_refusals_total', { quota: 'room_bytes' })).toBe(0);
  });
});

describe('MAX_NEW_ROOMS_PER_SUB_PER_HOUR', () => {
  it('refuses a sub\'s third new room with 4429; its rooms, stored rooms and other subs still open', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, MAX_NEW_ROOMS_PER_SUB_PER_HOUR: '2' });
    const [alice, bob] = [await testToken('alice', ['acme-*']), await testToken('bob', ['acme-*'])];
    const r1 = await open(server, 'acme-conversation-n1', alice);
    await ready(r1);
    await ready(await open(server, 'acme-conversation-n2', alice));
    const third = await open(server, 'acme-conversation-n3', alice);
    expect(await third.closed()).toBe(4429);
    expect(await metric(server.url, 'sync_quota_refusals_total', { quota: 'new_rooms' })).toBe(1);

    await ready(await open(server, 'acme-conversation-n1', alice)); // the same room again
    const bobs = await open(server, 'acme-conversation-n3', bob);
    await ready(bobs);
    bobs.send(updateOf(10));
    await bobs.handled();
    await ready(await open(server, 'acme-conversation-n3', alice)); // now stored: not new
  });
});
