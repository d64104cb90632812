/**
 * The sealed room lifecycle's racy transitions (rooms/lifecycle.ts, sealed/registry.ts) on a real
 * server with raw /sealed devices: devices arriving while the room loads share that one load; an
 * admin delete during it throws the read away, so they get the deleted (empty) room.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { serverPerTest, TEST_SECRET, testToken } from '../../../test/helpers/server.js';
import { holdFirstCall } from '../../../test/helpers/hold-call.js';
import { withTimeout } from '../../../test/helpers/timeout.js';
import { fakeEnvelope, RawSealed } from '../../../test/fixtures/sealed-raw.js';

const scope = serverPerTest();
afterEach(() => scope.close());

const ADMIN_TOKEN = 'admin-token-for-the-tests-0123456789';
const ROOM = 'acme-conversation-sealed-race';
const env = (n: number): Uint8Array => fakeEnvelope([n, 0xee, n, 0xee]);

describe('sealed room lifecycle races', () => {
  it('devices arriving during a load wait for it; a delete meanwhile makes the load read again: they see the room empty', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, ADMIN_TOKEN, PERSIST_FLUSH_MS: '5' });
    const registry = server.app.sealedRooms;
    const token = await testToken('alice', ['acme-*']);
    const path = `/sealed/${ROOM}?token=${token}`;

    await registry.store.append([{ room: ROOM, envelopes: [env(1), env(2), env(3)] }]);

    const stats = holdFirstCall(registry.store as never, 'stats', (closer) => scope.track(closer));
    let joins = 0;
    let bothJoining!: () => void;
    const bothAsked = new Promise<void>((r) => (bothJoining = r));
    const join = registry.join.bind(registry);
    registry.join = (...args) => {
      if (++joins === 2) bothJoining();
      return join(...args);
    };
    const [b, c] = [await RawSealed.connect(server.wsUrl, path), await RawSealed.connect(server.wsUrl, path)];
    scope.track(b, c);
    b.hello(0);
    c.hello(0);
    await stats.entered; // the read answered head 3 and is held
    await withTimeout(bothAsked, 5000, 'both devices asking for the room');
    expect(registry.stateOf(ROOM)).toBe('loading');
    const res = await fetch(`${server.url}/admin/rooms/${ROOM}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ deleted: true, closed: 0 });
    expect(registry.stateOf(ROOM)).toBe('loading');

    stats.release();
    expect([(await b.next('caught-up')).seq, (await c.next('caught-up')).seq]).toEqual([0, 0]);
    expect(stats.calls).toBe(2); // one load, read again after the delete
    expect(b.messages.concat(c.messages).filter((m) => m.type === 'entry')).toEqual([]);
    expect(registry.stateOf(ROOM)).toBe('open');
    expect(registry.rooms.get(ROOM)?.conns.size).toBe(2);
  });
});
