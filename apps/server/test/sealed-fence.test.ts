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
import type { SealedPeer } from '../src/sealed/room.js';
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

describe('sealed registry: a write refused for its generation', () => {
  it('drops that room here as at a delete; the other rooms of the commit are stored; nothing retried', async () => {
    const store = new MemorySealedStore();
    await store.init();
    const metrics = createServerMetrics();
    const registry = new SealedRegistry({ store, fanout: new LocalSealedFanout(), metrics, log: pino({ level: 'silent' }), flushMs: 60_000, idleMs: 0, snapshotAfter: 1000, maxPeersPerRoom: 10 });
    const [x, y] = ['acme-conversation-fenced-x', 'acme-conversation-fenced-y'];
    const [px, py] = [peer(1), peer(2)];
    const [roomX, roomY] = [await registry.join(x, px), await registry.join(y, py)];
    const gx = (await registry.generation(roomX)).current;
    const gy = (await registry.generation(roomY)).current;
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
    expect((await registry.generation(again)).current).toBe(g2);
    // a refusal arriving late (the room already loaded again in g2) leaves the new load alone
    registry.queue.enqueue(x, { envelope: env(5), generation: gx });
    await registry.queue.flush();
    await new Promise((r) => setTimeout(r, 20));
    expect(registry.rooms.get(x)).toBe(again);
    expect((await store.read(x, 0)).entries.map((e) => e.envelope[0])).toEqual([2]);
    registry.close();
  });
});
