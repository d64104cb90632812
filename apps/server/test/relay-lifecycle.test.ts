/** Room lifecycle: load on first connection, unload after ROOM_IDLE_MS once committed, compaction. */
import { once } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { encodeRelayMessage, writeRelayUpdate } from '@sync-suite/shared';
import type { RoomRegistry } from '../src/relay/room-registry.js';
import { mergeStoredRoom } from '../src/relay/persistence/merge.js';
import { serverPerTest } from '../../../test/helpers/server.js';
import { withTimeout } from '../../../test/helpers/timeout.js';
import { metric, RawClient, stockProvider, synced, until } from '../../../test/fixtures/relay-clients.js';

const scope = serverPerTest();
afterEach(() => scope.close());

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
function heapAfterGc(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

function textUpdate(text: string): Uint8Array {
  const d = new Y.Doc();
  d.getText('text').insert(0, text);
  return Y.encodeStateAsUpdate(d);
}

/** Opens a room, writes one update, waits until the server has handled it, closes. */
async function touchRoom(wsUrl: string, room: string): Promise<void> {
  const c = await RawClient.connect(`${wsUrl}/relay/${room}`);
  c.send(encodeRelayMessage((e) => writeRelayUpdate(e, textUpdate(room))));
  await c.handled();
  c.ws.close();
  await c.closed();
}

async function touchRooms(wsUrl: string, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, from + count - i) }, (_, k) => touchRoom(wsUrl, `acme-conversation-r${i + k}`)));
  }
}

const allUnloaded = (registry: RoomRegistry) => until(registry as never, 'unloaded', () => registry.rooms.size === 0, 30_000, 'every room to unload');

describe('relay room lifecycle', () => {
  it('reload() evicts a room and closes its connections with 1012; the next join loads it afresh from storage', async () => {
    const server = await scope.start({ PERSIST_FLUSH_MS: '5', ROOM_IDLE_MS: '60000' });
    const name = 'acme-conversation-reload';
    const [a, b] = [await RawClient.connect(`${server.wsUrl}/relay/${name}`), await RawClient.connect(`${server.wsUrl}/relay/${name}`)];
    a.send(encodeRelayMessage((e) => writeRelayUpdate(e, textUpdate('kept'))));
    await b.next((m) => m.type === 'update', 5000, 'update at b');
    const registry = server.app.relayRooms;
    await registry.drain();
    const room = registry.rooms.get(name);
    expect(room).toBeDefined();
    registry.reload(room!);
    expect(await Promise.all([a.closed(), b.closed()])).toEqual([1012, 1012]);
    expect(registry.rooms.get(name)).toBeUndefined();
    const c = await RawClient.connect(`${server.wsUrl}/relay/${name}`);
    await c.next((m) => m.type === 'sync-step1', 5000, 'sync step 1 from the reloaded room');
    const fresh = registry.rooms.get(name);
    expect(fresh).toBeDefined();
    expect(fresh).not.toBe(room);
    expect(fresh!.doc.getText('text').toString()).toBe('kept');
    c.ws.close();
    await c.closed();
  });

  it('opening and closing 1,000 rooms brings sync_relay_rooms back to 0 and memory back near its start', async () => {
    const server = await scope.start({ ROOM_IDLE_MS: '20', PERSIST_FLUSH_MS: '10' });
    const registry = server.app.relayRooms;
    await touchRooms(server.wsUrl, 0, 100); // warm-up: code paths, JIT, pools
    await allUnloaded(registry);
    const start = heapAfterGc();

    let loaded = 0;
    registry.on('loaded', () => loaded++);
    await touchRooms(server.wsUrl, 100, 1000);
    expect(loaded).toBe(1000);
    await allUnloaded(registry);
    expect(await metric(server.url, 'sync_relay_rooms')).toBe(0);
    expect(await metric(server.url, 'sync_relay_connections')).toBe(0);
    const growth = heapAfterGc() - start;
    // The memory store keeps each room's snapshot (~100 bytes each); rooms themselves must be gone.
    expect(growth).toBeLessThan(8 * 1024 * 1024);

    // Each room was committed and compacted on unload, and comes back from storage.
    const stored = await registry.store.load('acme-conversation-r777');
    expect(stored.snapshot).not.toBeNull();
    const doc = new Y.Doc();
    const p = stockProvider(3, server.wsUrl, 'acme-conversation-r777', doc);
    await synced(p);
    expect(doc.getText('text').toString()).toBe('acme-conversation-r777');
    p.destroy();
  });

  it('compacts the log once it passes COMPACT_AFTER_UPDATES; loading is snapshot plus tail', async () => {
    const server = await scope.start({ COMPACT_AFTER_UPDATES: '10', PERSIST_FLUSH_MS: '5', ROOM_IDLE_MS: '60000' });
    const registry = server.app.relayRooms;
    const room = 'acme-conversation-compact';
    const doc = new Y.Doc();
    const p = stockProvider(2, server.wsUrl, room, doc);
    await synced(p);
    const compacted = withTimeout(once(registry, 'compacted'), 10_000, 'compaction');
    for (let i = 0; i < 25; i++) doc.getArray('a').push([i]);
    const [, folded] = (await compacted) as [string, number];
    expect(folded).toBeGreaterThanOrEqual(10);
    await registry.persist.flush();
    const stored = await registry.store.load(room);
    expect(stored.snapshot).not.toBeNull();
    expect(stored.updates.length).toBeLessThan(25);
    const merged = new Y.Doc();
    Y.applyUpdate(merged, mergeStoredRoom(stored));
    expect(merged.getArray('a').toArray()).toEqual(Array.from({ length: 25 }, (_, i) => i));
    p.destroy();
  });
});
