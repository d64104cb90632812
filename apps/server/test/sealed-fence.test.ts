/**
 * SealedRegistry when storage refuses a room's writes for their generation (the room was deleted
 * on another instance that this one did not hear from): the other rooms of the same group commit
 * are stored and acked, the refused room is dropped here as at a delete (4410), nothing is
 * retried or set aside, and the room's next load reads the new generation.
 */
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { createServerMetrics } from '@sync-suite/shared/node';
import { LocalSealedFanout } from '../src/sealed/fanout.js';
import { SealedRegistry } from '../src/sealed/registry.js';
import type { SealedPeer, SealedRoom } from '../src/sealed/room.js';
import { MemorySealedStore } from '../src/sealed/store/memory.js';

const env = (n: number): Uint8Array => Uint8Array.from([n, n]);

function peer(id: number): SealedPeer & { closes: number[]; frames: number } {
  const p = {
    peer: id,
    sub: `device-${id}`,
    writable: true,
    caughtUp: true,
    closes: [] as number[],
    frames: 0,
    deliver: () => void p.frames++,
    send: () => void p.frames++,
    close: (code: number) => void p.closes.push(code),
  };
  return p;
}

/** The room's generation as its devices are told it (the load not stale). */
async function generationOf(registry: SealedRegistry, room: SealedRoom): Promise<number> {
  const generation = await registry.generation(room);
  if (!generation) throw new Error(`load of ${room.name} is stale`);
  return generation.current;
}

async function setup(idleMs: number) {
  const store = new MemorySealedStore();
  await store.init();
  const registry = new SealedRegistry({ store, fanout: new LocalSealedFanout(), metrics: createServerMetrics(), log: pino({ level: 'silent' }), flushMs: 60_000, idleMs, snapshotAfter: 1000, maxPeersPerRoom: 10 });
  return { store, registry };
}

/**
 * Holds every answer of store.generationDeleted until release() (the read fenced() makes before it
 * drops a room); `calls` are their runs, to wait for once released.
 */
function holdDeletedReads(store: MemorySealedStore): { calls: Promise<boolean>[]; release(): void } {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const real = store.generationDeleted.bind(store);
  const calls: Promise<boolean>[] = [];
  store.generationDeleted = (room, generation) => {
    const run = released.then(() => real(room, generation));
    calls.push(run);
    return run;
  };
  return { calls, release };
}

/** Lets every held generationDeleted read answer, and what fenced() chains on it run (no timer: storage is memory). */
async function settleDeletedReads(held: { calls: Promise<boolean>[]; release(): void }): Promise<void> {
  held.release();
  await Promise.all(held.calls);
  await new Promise((r) => setImmediate(r));
}

describe('sealed registry: a write refused for its generation', () => {
  it('drops that room here as at a delete; the other rooms of the commit are stored; nothing retried', async () => {
    const store = new MemorySealedStore();
    await store.init();
    const metrics = createServerMetrics();
    const registry = new SealedRegistry({ store, fanout: new LocalSealedFanout(), metrics, log: pino({ level: 'silent' }), flushMs: 60_000, idleMs: 0, snapshotAfter: 1000, maxPeersPerRoom: 10 });
    const [x, y] = ['acme-conversation-fenced-x', 'acme-conversation-fenced-y'];
    const [px, py] = [peer(1), peer(2)];
    const [roomX, roomY] = [await registry.join(x, px), await registry.join(y, py)];
    const gx = await generationOf(registry, roomX);
    const gy = await generationOf(registry, roomY);
    expect(await store.append([{ room: x, envelopes: [env(1)], generation: gx }])).toEqual([1]);
    // another instance deletes x (this registry hears nothing) and x is written again there
    await store.purgeRoom(x);
    const g2 = (await store.generation(x)).current;
    expect(await store.append([{ room: x, envelopes: [env(2)], generation: g2 }])).toEqual([1]);

    registry.queue.enqueue(x, { envelope: env(3), ack: { peer: 1, id: 1 }, generation: gx });
    registry.queue.enqueue(y, { envelope: env(4), ack: { peer: 2, id: 1 }, generation: gy });
    roomX.pendingBytes = roomY.pendingBytes = 1;
    await registry.queue.flush(); // one commit for both rooms: not a failure
    expect((await store.read(y, 0)).entries.map((e) => e.envelope[0])).toEqual([4]);
    expect(py.frames).toBe(1); // its ack
    await vi.waitFor(() => expect(px.closes).toEqual([4410]), { timeout: 5000, interval: 5 });
    expect(py.closes).toEqual([]);
    expect(px.frames).toBe(0);
    expect((await store.read(x, 0)).entries.map((e) => e.envelope[0])).toEqual([2]); // the new room's, untouched
    expect(registry.queue.size).toBe(0);
    expect(registry.queue.setAside).toEqual([]);
    expect(roomX.unloaded).toBe(true);
    expect(registry.rooms.get(y)).toBe(roomY);
    // the next device of x loads the room again and is told the new generation
    const again = await registry.join(x, peer(3));
    expect(again).not.toBe(roomX);
    expect(await generationOf(registry, again)).toBe(g2);
    // a refusal arriving late (the room already loaded again in g2) leaves the new load alone
    registry.queue.enqueue(x, { envelope: env(5), generation: gx });
    await registry.queue.flush();
    await new Promise((r) => setTimeout(r, 20));
    expect(registry.rooms.get(x)).toBe(again);
    expect((await store.read(x, 0)).entries.map((e) => e.envelope[0])).toEqual([2]);
    registry.close();
  });

  it('a refusal that comes once the room was deleted here (a delete heard, its commit in flight) leaves the room loaded since, in the new generation, alone', async () => {
    const { store, registry } = await setup(60_000);
    const room = 'acme-conversation-fenced-heard';
    const p1 = peer(1);
    const r1 = await registry.join(room, p1);
    const g1 = await generationOf(registry, r1);
    // the commit of p1's update is in flight when the delete made on another instance is heard
    let appended!: () => void;
    const appending = new Promise<void>((r) => (appended = r));
    const append = store.append.bind(store);
    store.append = (batches) => appending.then(() => append(batches));
    registry.queue.enqueue(room, { envelope: env(1), ack: { peer: 1, id: 1 }, generation: g1 });
    const flushed = registry.queue.flush();
    await store.purgeRoom(room); // the initiator's purge (another instance)
    const deletedReads = holdDeletedReads(store);
    const heard = registry.purge(room, false);
    await vi.waitFor(() => expect(p1.closes).toEqual([4410]), { timeout: 5000, interval: 5 });
    expect(registry.stateOf(room)).toBeUndefined(); // out of the table; the purge waits for the commit
    appended();
    await flushed; // refused: fenced() with nothing held here
    await heard;
    store.append = append;
    // a device joins: a new load, in the new generation
    const p2 = peer(2);
    const r2 = await registry.join(room, p2);
    const g2 = await generationOf(registry, r2);
    expect(g2).not.toBe(g1);
    await settleDeletedReads(deletedReads);
    expect(p2.closes).toEqual([]);
    expect(registry.rooms.get(room)).toBe(r2);
    registry.queue.enqueue(room, { envelope: env(2), ack: { peer: 2, id: 1 }, generation: g2 });
    await registry.queue.flush();
    expect(p2.frames).toBe(1); // its ack
    expect((await store.read(room, 0)).entries.map((e) => e.envelope[0])).toEqual([2]);
    expect(p2.closes).toEqual([]);
    registry.close();
  });

  it('a refusal that comes once the room idled out (its device wrote, then left) leaves the room loaded since, in the new generation, alone', async () => {
    const { store, registry } = await setup(0);
    const room = 'acme-conversation-fenced-idle';
    const p1 = peer(1);
    const r1 = await registry.join(room, p1);
    const g1 = await generationOf(registry, r1);
    registry.queue.enqueue(room, { envelope: env(1), ack: { peer: 1, id: 1 }, generation: g1 });
    registry.leave(r1, p1);
    await vi.waitFor(() => expect(registry.stateOf(room)).toBeUndefined(), { timeout: 5000, interval: 5 }); // ROOM_IDLE_MS 0
    await store.purgeRoom(room); // deleted on another instance, not heard here
    const deletedReads = holdDeletedReads(store);
    await registry.queue.flush(); // refused
    const p2 = peer(2);
    const r2 = await registry.join(room, p2);
    const g2 = await generationOf(registry, r2);
    expect(g2).not.toBe(g1);
    await settleDeletedReads(deletedReads);
    expect(p2.closes).toEqual([]);
    expect(registry.rooms.get(room)).toBe(r2);
    registry.queue.enqueue(room, { envelope: env(2), ack: { peer: 2, id: 1 }, generation: g2 });
    await registry.queue.flush();
    expect(p2.frames).toBe(1);
    expect((await store.read(room, 0)).entries.map((e) => e.envelope[0])).toEqual([2]);
    expect(p1.frames).toBe(0); // the refused update was never acked
    registry.close();
  });

  it('a load whose head was read before a delete it did not hear of is not served: its generation read drops it, the next join loads the new room', async () => {
    const { store, registry } = await setup(60_000);
    const room = 'acme-conversation-fenced-stale-load';
    const g1 = (await store.generation(room)).current;
    expect(await store.append([{ room, envelopes: [env(1), env(2), env(3)], generation: g1 }])).toEqual([1]);
    // the load reads head 3 in g1; the first device's generation read comes after a delete
    let read!: () => void;
    const reading = new Promise<void>((r) => (read = r));
    const generation = store.generation.bind(store);
    store.generation = (name) => reading.then(() => generation(name));
    const p1 = peer(1);
    const r1 = await registry.join(room, p1);
    expect(r1.head).toBe(3);
    const asked = registry.generation(r1);
    await store.purgeRoom(room);
    const g2 = (await generation(room)).current;
    read();
    expect(await asked).toBeNull();
    expect(registry.stateOf(room)).toBeUndefined();
    expect(p1.closes).toEqual([]); // its connection joins again (connection.ts join)
    registry.leave(r1, p1);
    const r2 = await registry.join(room, p1);
    expect(r2).not.toBe(r1);
    expect(r2.head).toBe(0);
    expect(await generationOf(registry, r2)).toBe(g2);
    // the new log's first entry reaches the device
    registry.queue.enqueue(room, { envelope: env(4), generation: g2 });
    await registry.queue.flush();
    expect(r2.head).toBe(1);
    expect(p1.frames).toBe(1);
    registry.close();
  });
});
