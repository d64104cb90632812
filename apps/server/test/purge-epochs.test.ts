/**
 * What the registries remember of admin deletes (rooms/purge-epochs.ts) is bounded: before, each
 * registry kept one entry per room ever deleted, for the life of the process. Forgetting errs one
 * way only: a read that started before a forgotten delete counts as overlapping it.
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createServerMetrics } from '@sync-suite/shared/node';
import type { DocStoreAdmin } from '../src/relay/persistence/types.js';
import { PURGE_EPOCHS_MAX, PurgeEpochs } from '../src/rooms/purge-epochs.js';
import { LocalSealedFanout } from '../src/sealed/fanout.js';
import { SealedRegistry } from '../src/sealed/registry.js';
import { MemorySealedStore } from '../src/sealed/store/memory.js';
import { serverPerTest } from '../../../test/helpers/server.js';

const scope = serverPerTest();
afterEach(() => scope.close());

/** The registry's record of deletes, whatever its type (a Map before the bound). */
const remembered = (registry: object): number => (registry as unknown as { purges: { size: number } }).purges.size;

describe('purge epochs', () => {
  it('tell a delete since a mark, for the rooms remembered; a forgotten one counts as since every older mark', () => {
    const epochs = new PurgeEpochs(2);
    const start = epochs.mark();
    expect(epochs.unchanged('a', start)).toBe(true);
    epochs.bump('a');
    const afterA = epochs.mark();
    expect([epochs.unchanged('a', start), epochs.unchanged('a', afterA), epochs.unchanged('b', start)]).toEqual([false, true, true]);
    epochs.bump('b');
    epochs.bump('a'); // 'a' again: now the most recent, 'b' the oldest
    epochs.bump('c'); // over the bound: 'b' is forgotten
    expect(epochs.size).toBe(2);
    const now = epochs.mark();
    // 'b' forgotten: a read from before its delete reads again; one from after it is not disturbed
    expect([epochs.unchanged('b', afterA), epochs.unchanged('b', now)]).toEqual([false, true]);
    // so is a room never deleted, for marks older than the forgotten delete only
    expect([epochs.unchanged('never', start), epochs.unchanged('never', now)]).toEqual([false, true]);
    expect([epochs.unchanged('a', afterA), epochs.unchanged('c', now)]).toEqual([false, true]);
  });

  it('the relay registry remembers at most PURGE_EPOCHS_MAX deleted rooms, and a forgotten deleted room opens again', async () => {
    const server = await scope.start();
    const registry = server.app.relayRooms;
    const store = registry.store as unknown as DocStoreAdmin; // the memory engine, as the admin API uses it
    const deletes = PURGE_EPOCHS_MAX + 50;
    for (let i = 0; i < deletes; i++) await registry.purge(`acme-conversation-deleted-${i}`, (room) => store.purgeRoom(room));
    expect(remembered(registry)).toBe(PURGE_EPOCHS_MAX);

    const name = 'acme-conversation-deleted-0'; // forgotten by now
    const peer = { id: 'peer', send: () => undefined, close: () => undefined };
    const room = await registry.join(name, peer);
    expect(registry.stateOf(name)).toBe('open');
    expect(room.conns.size).toBe(1);
    registry.leave(room, peer);
  });

  it('the sealed registry remembers at most PURGE_EPOCHS_MAX deleted rooms', async () => {
    const store = new MemorySealedStore();
    await store.init();
    const registry = new SealedRegistry({ store, fanout: new LocalSealedFanout(), metrics: createServerMetrics(), log: pino({ level: 'silent' }), flushMs: 10, idleMs: 0, snapshotAfter: 1000, maxPeersPerRoom: 10 });
    try {
      for (let i = 0; i < PURGE_EPOCHS_MAX + 50; i++) await registry.purge(`acme-conversation-sealed-${i}`);
      expect(remembered(registry)).toBe(PURGE_EPOCHS_MAX);
    } finally {
      registry.close();
    }
  });
});
