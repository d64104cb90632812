/**
 * SealedRegistry.purge against a snapshot still being stored: the purge waits for it, so a
 * snapshot of the old room cannot land in the room that a new device starts afterwards.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createServerMetrics } from '@sync-suite/shared/node';
import { LocalSealedFanout } from '../src/sealed/fanout.js';
import { SealedRegistry } from '../src/sealed/registry.js';
import { MemorySealedStore } from '../src/sealed/store/memory.js';
import { SEALED_ROW_OVERHEAD_BYTES, type SealedFenced, type SealedStore } from '../src/sealed/store/types.js';

const env = (n: number): Uint8Array => Uint8Array.from([n, n]);

/** A memory store whose snapshots wait for `release()`. */
class GatedStore extends MemorySealedStore {
  private opened!: () => void;
  private readonly gate = new Promise<void>((r) => (this.opened = r));
  release(): void {
    this.opened();
  }
  override async replaceWithSnapshot(room: string, covers: number, envelope: Uint8Array, generation?: number, refuted?: number): Promise<boolean | SealedFenced> {
    await this.gate;
    return super.replaceWithSnapshot(room, covers, envelope, generation, refuted);
  }
}

/** A registry on `store` committing every `flushMs`, nothing else in it that these tests use. */
function registryOn(store: SealedStore, flushMs: number): SealedRegistry {
  return new SealedRegistry({ store, fanout: new LocalSealedFanout(), metrics: createServerMetrics(), log: pino({ level: 'silent' }), flushMs, idleMs: 0, snapshotAfter: 1000, maxPeersPerRoom: 10 });
}

describe('sealed purge', () => {
  it('waits for a snapshot being stored, then deletes it with the rest', async () => {
    const store = new GatedStore();
    await store.init();
    const registry = registryOn(store, 10);
    const room = 'acme-conversation-gated';
    await store.append([{ room, envelopes: [env(1), env(2), env(3)] }]);
    const snapshot = registry.storeSnapshot(room, 2, env(9));
    let purged = false;
    const purge = registry.purge(room).then(() => (purged = true));
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(purged).toBe(false);
    store.release();
    await Promise.all([snapshot, purge]);
    // A new device writes the room again: nothing of the old one comes back.
    expect(await store.append([{ room, envelopes: [env(4)] }])).toEqual([1]);
    expect(await store.read(room, 0)).toEqual({ snapshot: null, entries: [{ seq: 1, envelope: env(4) }], head: 1, generation: (await store.generation(room)).current });
    registry.close();
  });

  it('releases the pendingBytes of the queued envelopes it drops, those put back by a failed commit too', async () => {
    const store = new MemorySealedStore();
    await store.init();
    let failing = false;
    const append = store.append.bind(store);
    store.append = async (batches) => {
      if (failing) throw new Error('storage down');
      return append(batches);
    };
    const registry = registryOn(store, 60_000);
    const room = 'acme-conversation-pending';
    const conn = { peer: 1, sub: '', writable: true, caughtUp: true, deliver: () => undefined, send: () => undefined, close: () => undefined };
    const loaded = await registry.join(room, conn);
    /** What connection.update charges and enqueues. */
    const accept = (envelope: Uint8Array) => {
      expect(registry.queue.enqueue(room, { envelope })).toBe(true);
      loaded.pendingBytes += envelope.length + SEALED_ROW_OVERHEAD_BYTES;
    };
    accept(env(1));
    failing = true;
    await expect(registry.queue.flush()).rejects.toThrow('storage down'); // put back in the queue
    accept(env(2));
    expect(loaded.pendingBytes).toBe(2 * (2 + SEALED_ROW_OVERHEAD_BYTES));
    await registry.purge(room);
    expect(loaded.pendingBytes).toBe(0);
    registry.close();
  });
});
