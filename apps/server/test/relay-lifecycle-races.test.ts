/**
 * The relay room lifecycle's racy transitions (rooms/lifecycle.ts) on a real server with stock
 * y-websocket clients: connections arriving while the room loads, an admin delete while it
 * loads, a reconnect while it is being evicted. Storage is the real memory engine; the test
 * holds one of its calls open (its result unchanged) to stand at the moment of the race.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import type { RoomRegistry } from '../src/relay/room-registry.js';
import type { RoomState } from '../src/rooms/lifecycle.js';
import { serverPerTest, type TestServer } from '../../../test/helpers/server.js';
import { holdFirstCall, type HeldCall } from '../../../test/helpers/hold-call.js';
import { docUntil, stockClient, synced, textOf, until } from '../../../test/fixtures/relay-clients.js';

const scope = serverPerTest();
afterEach(() => scope.close());

const ADMIN_TOKEN = 'admin-token-for-the-tests-0123456789';

function textUpdate(text: string): Uint8Array {
  const d = new Y.Doc();
  d.getText('text').insert(0, text);
  return Y.encodeStateAsUpdate(d);
}

/** Holds the first call of the store's `key` once answered (test/helpers/hold-call.ts). */
function holdFirst(store: object, key: 'load' | 'append'): HeldCall {
  return holdFirstCall(store as never, key, (closer) => scope.track(closer));
}

/** Counts calls of registry.join, the moment a connection asks for the room. */
function countJoins(registry: RoomRegistry): { count: () => number } {
  let n = 0;
  const real = registry.join.bind(registry);
  registry.join = (...args) => {
    n++;
    registry.emit('join-called');
    return real(...args);
  };
  return { count: () => n };
}

function stateIs(registry: RoomRegistry, room: string, state: RoomState | undefined): Promise<void> {
  return until(registry as never, 'state', () => registry.stateOf(room) === state, 10_000, `room ${room} ${String(state)}`);
}

const errors = (server: TestServer) => server.logs.filter((l) => typeof l.level === 'number' && l.level >= 50);

describe('relay room lifecycle races', () => {
  it('connections arriving while the room loads wait for that one load and sync what it read', async () => {
    const server = await scope.start({ PERSIST_FLUSH_MS: '5' });
    const registry = server.app.relayRooms;
    const name = 'acme-conversation-load-race';
    await registry.store.append([{ room: name, updates: [textUpdate('stored')] }]);
    const load = holdFirst(registry.store, 'load');
    const joins = countJoins(registry);
    let loaded = 0;
    registry.on('loaded', () => loaded++);

    const a = stockClient(3, server.wsUrl, name);
    const b = stockClient(2, server.wsUrl, name);
    scope.track(a, b);
    await load.entered;
    await until(registry as never, 'join-called', () => joins.count() === 2, 10_000, 'both connections asking for the room');
    expect(registry.stateOf(name)).toBe('loading');

    load.release();
    await Promise.all([synced(a.p), synced(b.p)]);
    expect([textOf(a.doc), textOf(b.doc)]).toEqual(['stored', 'stored']);
    expect([load.calls, loaded]).toEqual([1, 1]);
    expect(registry.stateOf(name)).toBe('open');
    expect(registry.rooms.get(name)?.conns.size).toBe(2);
    expect(errors(server)).toEqual([]);
  });

  it('an admin delete while the room loads throws that read away: the waiting client gets the deleted (empty) room', async () => {
    const server = await scope.start({ ADMIN_TOKEN, PERSIST_FLUSH_MS: '5' });
    const registry = server.app.relayRooms;
    const name = 'acme-conversation-delete-race';
    await registry.store.append([{ room: name, updates: [textUpdate('deleted text')] }]);
    const load = holdFirst(registry.store, 'load');

    const a = stockClient(3, server.wsUrl, name);
    scope.track(a);
    const closes: unknown[] = [];
    (a.p as { on(e: 'connection-close', f: (ev: unknown) => void): void }).on('connection-close', (ev) => closes.push(ev));
    await load.entered; // the read returned 'deleted text' and is held there
    const res = await fetch(`${server.url}/admin/rooms/${name}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ deleted: true, closed: 0 });
    expect(registry.stateOf(name)).toBe('loading');

    load.release();
    await synced(a.p);
    expect(textOf(a.doc)).toBe('');
    expect(load.calls).toBe(2); // read again after the delete
    expect(closes).toEqual([]); // the connection waited; it was never refused
    a.doc.getText('text').insert(0, 'after');
    const b = stockClient(3, server.wsUrl, name);
    scope.track(b);
    await docUntil(b.doc, () => textOf(b.doc) === 'after');
    expect(errors(server)).toEqual([]);
  });

  it('a client reconnecting while the room is being evicted keeps it: same room, nothing lost, no unload', async () => {
    // Commits happen only when the room is evicted (long flush window), and that commit is held.
    const server = await scope.start({ PERSIST_FLUSH_MS: '600000', ROOM_IDLE_MS: '20' });
    const registry = server.app.relayRooms;
    const name = 'acme-conversation-evict-race';
    const a = stockClient(3, server.wsUrl, name);
    scope.track(a);
    await synced(a.p);
    const room = registry.rooms.get(name);
    expect(room).toBeDefined();
    const append = holdFirst(registry.store, 'append');
    const unloaded: string[] = [];
    registry.on('unloaded', (r: string) => unloaded.push(r));

    a.doc.getText('text').insert(0, 'pending');
    await docUntil(room!.doc, () => textOf(room!.doc) === 'pending', 10_000, 'update accepted');
    a.destroy(); // last connection gone: idle, then evicting, whose commit is held
    await append.entered;
    expect(registry.stateOf(name)).toBe('evicting');

    const b = stockClient(2, server.wsUrl, name);
    scope.track(b);
    await synced(b.p);
    expect(textOf(b.doc)).toBe('pending');
    expect(registry.stateOf(name)).toBe('open');

    append.release();
    await registry.drain(); // the held commit is done; the eviction then sees the room open again
    await new Promise((resolve) => setImmediate(resolve));
    expect(registry.stateOf(name)).toBe('open');
    expect(registry.rooms.get(name)).toBe(room);
    expect(unloaded).toEqual([]);
    expect(errors(server)).toEqual([]);

    // Once b leaves too, the eviction completes and the room comes back from storage.
    b.destroy();
    await stateIs(registry, name, undefined);
    expect(unloaded).toEqual([name]);
    const c = stockClient(3, server.wsUrl, name);
    scope.track(c);
    await synced(c.p);
    expect(textOf(c.doc)).toBe('pending');
  });
});
