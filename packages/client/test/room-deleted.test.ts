/**
 * An admin DELETE closes the room's sockets with 4410: the device does not reconnect (its sync
 * step 2 or its outbox would upload the deleted document again), reports `error` with code 4410
 * once, no longer counts the relay as synced, and keeps its local copy (the app decides).
 * No fixed wait: the device reports its retry decision for the closed socket (`pace` events,
 * src/attempt-pacer.ts), which is `end` instead of the back-off a reconnect would wait.
 */
import { expect, it } from 'vitest';
import { TEST_SECRET, type TestServer } from '../../../test/helpers/server.js';
import { devicesPerTest } from './helpers/devices.js';
import { metric } from './helpers/metrics.js';

const { scope, peer } = devicesPerTest();
const ADMIN_TOKEN = 'admin-token-for-the-tests-0123456789';

async function admin(server: TestServer, method: string, path: string): Promise<number> {
  const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  return res.status;
}

interface PeerState {
  texts: string[];
  sockets: Array<{ path: string }>;
}

for (const sealed of [false, true]) {
  it(`${sealed ? 'sealed' : 'plain'} relay: 4410 is final: no reconnect, the room stays deleted, error 4410 once, local copy kept`, async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, ADMIN_TOKEN, PERSIST_FLUSH_MS: '10' });
    const room = `test-conversation-deleted-${sealed ? 'sealed' : 'plain'}`;
    const kind = sealed ? 'sealed' : 'relay';
    const path = `/${kind}/${room}`;
    const d = peer('device');
    await d.send('start', { serverUrl: server.url, room, relayGraceMs: 0, blockWebrtc: true, ...(sealed ? { sealedKey: '44'.repeat(32) } : {}) });
    await d.waitStatus('relay');
    await d.send('push', { text: 'private data' });
    await d.waitFor((e) => e.ev === 'status' && e['pending'] === 0 && e['relay'] === true, 'edit confirmed');
    expect(await admin(server, 'GET', `/admin/rooms/${room}`)).toBe(200);
    const mark = d.mark;
    expect(await admin(server, 'DELETE', `/admin/rooms/${room}`)).toBe(200);
    const err = await d.waitFor((e) => e.ev === 'error' && e['code'] === 4410, 'error 4410', 5000, mark);
    expect(err['source']).toBe('relay');
    expect(String(err['message'])).toMatch(/room deleted/);
    await d.waitFor((e) => e.ev === 'status' && e['relay'] === false, 'relay no longer synced', 5000, mark);
    // an edit after the delete stays on the device: pending, not uploaded
    await d.send('push', { text: 'after the delete' });
    await d.waitFor((e) => e.ev === 'status' && e['pending'] === 1, 'pending 1', 5000, mark);
    // The retry decision the close led to (src/attempt-pacer.ts, reported by the fixture): `end`,
    // where a reconnect would have been a `wait` (its back-off) and then an `attempt`.
    const decision = await d.waitFor((e) => e.ev === 'pace' && e['path'] === kind, `${kind} retry decision`, 10_000, mark);
    expect(decision['step']).toBe('end');
    // the server: the room is still deleted, and no socket of this kind is open on it
    expect(await admin(server, 'GET', `/admin/rooms/${room}`)).toBe(404);
    expect(await metric(server, `sync_${kind}_connections`)).toBe(0);
    const state = (await d.send('state')) as PeerState;
    expect(state.sockets.filter((s) => s.path === path)).toHaveLength(1);
    expect(state.texts.sort()).toEqual(['after the delete', 'private data']);
    expect(d.events.slice(mark).filter((e) => e.ev === 'error' && e['code'] === 4410)).toHaveLength(1);
    // nothing was decided for this path after the end (the state round trip came after the push)
    expect(d.events.slice(mark).filter((e) => e.ev === 'pace' && e['path'] === kind)).toHaveLength(1);
  });
}
