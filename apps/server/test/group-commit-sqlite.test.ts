/**
 * The sealed group commit (sealed/commit-queue.ts over storage/group-commit.ts) on a real SQLite
 * file whose rows for one room SQLite itself refuses (a trigger raising ABORT, as a constraint
 * would): the other rooms of the same batches are committed with their seqs in order, the refused
 * room's envelopes stay pending (none dropped), and once SQLite takes them they get seqs 1.. in
 * their arrival order.
 */
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import pino from 'pino';
import { createServerMetrics } from '@sync-suite/shared/node';
import { SealedCommitQueue } from '../src/sealed/commit-queue.js';
import { SqliteSealedStore } from '../src/sealed/store/sqlite.js';
import { until } from '../../../test/fixtures/relay-clients.js';
import { eventually } from '../../../test/helpers/timeout.js';

const dir = mkdtempSync(join(tmpdir(), 'group-commit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sealed group commit, one room refused by SQLite', () => {
  it('commits the other rooms in seq order while the refused room waits, then commits it in order', async () => {
    const store = new SqliteSealedStore(dir);
    await store.init();
    const db = new Database(store.file);
    db.exec(`CREATE TRIGGER poison BEFORE INSERT ON sealed_entries WHEN NEW.room = 'p' BEGIN SELECT RAISE(ABORT, 'poison row'); END;`);
    const metrics = createServerMetrics();
    const events = new EventEmitter();
    const acks: Array<[room: string, seq: number, envelope: number]> = [];
    const queue = new SealedCommitQueue(store, {
      flushMs: 20,
      metrics,
      log: pino({ level: 'silent' }),
      retryMs: 10,
      onCommitted: (room, firstSeq, pending) => {
        pending.forEach((p, i) => acks.push([room, firstSeq + i, p.envelope[0]!]));
        events.emit('committed');
      },
    });
    const env = (n: number) => ({ envelope: new Uint8Array([n]) });
    try {
      queue.enqueue('a', env(1));
      queue.enqueue('p', env(2));
      queue.enqueue('b', env(3));
      queue.enqueue('a', env(4));
      await until(events, 'committed', () => acks.length >= 3, 10_000, 'a and b committed');
      queue.enqueue('p', env(5));
      queue.enqueue('a', env(6));
      await until(events, 'committed', () => acks.some(([r, , e]) => r === 'a' && e === 6), 10_000, 'a committed again');
      expect(acks.filter(([r]) => r !== 'p')).toEqual([
        ['a', 1, 1],
        ['a', 2, 4],
        ['b', 1, 3],
        ['a', 3, 6],
      ]);
      expect(queue.hasPending('p')).toBe(true);
      // set aside between its retries (during one it is being written, and not in the list)
      await eventually(async () => queue.setAside.join() === 'p', 10_000, 'p set aside');
      expect((await store.read('p', 0)).entries).toEqual([]);
      expect((await metrics.storageErrors.get()).values[0]?.value).toBeGreaterThanOrEqual(3);

      db.exec('DROP TRIGGER poison');
      await queue.flush('p');
      expect(acks.filter(([r]) => r === 'p')).toEqual([
        ['p', 1, 2],
        ['p', 2, 5],
      ]);
      expect((await store.read('p', 0)).entries.map((e) => [e.seq, e.envelope[0]])).toEqual([
        [1, 2],
        [2, 5],
      ]);
      expect((await store.read('a', 0)).entries.map((e) => [e.seq, e.envelope[0]])).toEqual([
        [1, 1],
        [2, 4],
        [3, 6],
      ]);
      expect({ size: queue.size, setAside: queue.setAside }).toEqual({ size: 0, setAside: [] });
    } finally {
      queue.close();
      db.close();
      await store.close();
    }
  });
});
