/**
 * GroupCommitQueue (storage/group-commit.ts) simulated on fake timers: random arrivals over
 * several rooms, commits of random durations, some failing. Every item is written once, in its
 * room's order, none lost; the window is always a finite number within [0, PERSIST_FLUSH_MS].
 * The bound: when commits take between a and a + PERSIST_FLUSH_MS/10 with a <= 0.4 of it, every
 * item is committed within PERSIST_FLUSH_MS of its arrival, in either kind of window.
 */
import { describe, expect, it, vi } from 'vitest';
import { GroupCommitQueue, type CommitWindow } from '../src/storage/group-commit.js';
import { FLUSH_MS, useCommitQueues } from './group-commit-harness.js';

const commitQueue = useCommitQueues();

interface Item {
  n: number;
  at: number;
}

async function simulate(seed: number, window: CommitWindow, duration: (rand: () => number) => number, failRate: number) {
  let x = seed;
  const rand = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const committedAt = new Map<number, number>();
  const written: Array<[string, number]> = [];
  const windows: number[] = [];
  const queue: GroupCommitQueue<Item> = commitQueue<Item>({
    window,
    retryMs: 30,
    write: () =>
      new Promise<void>((resolve, reject) => {
        const fails = rand() < failRate;
        setTimeout(() => (fails ? reject(new Error('sim')) : resolve()), duration(rand));
      }),
    committed: (room, items, _result, index) => {
      for (const item of items) {
        expect(committedAt.has(item.n), `seed ${seed}: item ${item.n} committed twice`).toBe(false);
        committedAt.set(item.n, Date.now());
        written.push([room, item.n]);
      }
      if (index === 0) windows.push(queue.windowMs); // once per commit
    },
  });
  const arrivals: Array<[string, Item]> = [];
  let t = 0;
  for (let n = 0; n < 300; n++) {
    t += rand() < 0.8 ? rand() * 5 : rand() * 150;
    const room = `r${Math.floor(rand() * 4)}`;
    const item = { n, at: 0 };
    arrivals.push([room, item]);
    setTimeout(() => {
      item.at = Date.now();
      queue.enqueue(room, item);
    }, Math.round(t));
  }
  await vi.advanceTimersByTimeAsync(t + 50 * FLUSH_MS);
  await queue.idle();
  queue.close();
  return { arrivals, committedAt, written, windows };
}

describe('GroupCommitQueue simulated', () => {
  it.each<CommitWindow>(['bound', 'half'])("'%s': every item written once, in its room's order, though commits fail", async (window) => {
    for (let run = 0; run < 5; run++) {
      const seed = (Date.now() + run * 7919) % 1_000_000;
      const { arrivals, committedAt, written, windows } = await simulate(seed, window, (rand) => (rand() < 0.1 ? rand() * 300 : rand() * 30), 0.2);
      expect(committedAt.size, `seed ${seed}`).toBe(arrivals.length);
      for (const room of new Set(arrivals.map(([r]) => r))) {
        const order = written.filter(([r]) => r === room).map(([, n]) => n);
        expect(order, `seed ${seed}`).toEqual([...order].sort((a, b) => a - b));
      }
      for (const w of windows) expect(Number.isFinite(w) && w >= 0 && w <= FLUSH_MS, `seed ${seed}: window ${w}`).toBe(true);
    }
  });

  it.each<CommitWindow>(['bound', 'half'])("'%s': commits within a tenth of each other and under 0.5 of the bound keep every item within it", async (window) => {
    for (let run = 0; run < 5; run++) {
      const seed = (Date.now() + run * 7919) % 1_000_000;
      const a = ((run % 5) / 4) * 0.4 * FLUSH_MS;
      const { arrivals, committedAt } = await simulate(seed, window, (rand) => a + rand() * 0.1 * FLUSH_MS, 0);
      for (const [, item] of arrivals) {
        const latency = committedAt.get(item.n)! - item.at;
        expect(latency, `seed ${seed} run ${run}: item ${item.n} (commits ${a}-${a + 10} ms)`).toBeLessThanOrEqual(FLUSH_MS);
      }
    }
  });
});

// Shutdown (sealed/registry.ts drain): close(), then one final flush. An item offered after close
// is refused, not held where no timer would ever commit it, nor committed later by a timer (after
// the sockets closed: stored but never acked, so the device's resend would store it twice).
describe('GroupCommitQueue closed', () => {
  it('refuses items after close(): nothing held, no timer, nothing written later', async () => {
    const written: number[] = [];
    const queue = commitQueue<number>({
      write: (batch) => {
        for (const [, items] of batch) written.push(...items);
        return Promise.resolve();
      },
    });
    const first = queue.enqueue('a', 1);
    queue.close();
    await queue.flush();
    const late = queue.enqueue('a', 2);
    const held = queue.size;
    await vi.advanceTimersByTimeAsync(10 * FLUSH_MS);
    expect({ first, late, held, timers: vi.getTimerCount(), written }).toEqual({ first: true, late: false, held: 0, timers: 0, written: [1] });
  });
});
