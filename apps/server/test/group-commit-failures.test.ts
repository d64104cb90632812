/**
 * GroupCommitQueue (storage/group-commit.ts) when commits fail, on fake timers: a room whose items
 * storage refuses is set aside and the other rooms keep committing; retries back off (doubling to
 * a cap, reset by a success); the log stays bounded however long the failures last, while
 * storage_errors_total counts each one. Nothing is dropped.
 */
import { describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import { createServerMetrics } from '@sync-suite/shared/node';
import type { RoomBatch } from '../src/storage/group-commit.js';
import { FLUSH_MS, useCommitQueues } from './group-commit-harness.js';

const commitQueue = useCommitQueues();

interface Line {
  level: number;
  msg: string;
}

/**
 * A queue whose write fails while `fail(batch)` says so (after `failAfterMs`: storage that hangs
 * until the driver's timeout); records writes, commits and log lines.
 */
function harness(fail: (batch: RoomBatch<string>) => boolean, failAfterMs = 0, throwsFor?: string) {
  const metrics = createServerMetrics();
  const lines: Line[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
  const attempts: Array<{ at: number; rooms: string[] }> = [];
  const committed = new Map<string, string[]>();
  const queue = commitQueue<string>({
    metrics,
    log,
    write: (batch) => {
      attempts.push({ at: Date.now(), rooms: batch.map(([r]) => r) });
      if (!fail(batch)) return Promise.resolve();
      if (failAfterMs === 0) return Promise.reject(new Error('refused'));
      return new Promise<void>((_, reject) => setTimeout(() => reject(new Error('query timeout')), failAfterMs));
    },
    committed: (room, items) => {
      if (room === throwsFor) throw new Error('a bug in the after-commit callback');
      committed.set(room, [...(committed.get(room) ?? []), ...items]);
    },
  });
  const errors = async () => (await metrics.storageErrors.get()).values.reduce((n, v) => n + v.value, 0);
  return { queue, lines, attempts, committed, errors };
}

describe('GroupCommitQueue failures', () => {
  it('a room whose items always fail is set aside: the other rooms of its batch, and later ones, commit; its items stay', async () => {
    const poisoned = { on: true };
    const { queue, committed, errors } = harness((batch) => poisoned.on && batch.some(([room]) => room === 'p'));
    queue.enqueue('a', 'a1');
    queue.enqueue('p', 'p1');
    queue.enqueue('b', 'b1');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(Object.fromEntries(committed)).toEqual({ a: ['a1'], b: ['b1'] });
    expect(queue.setAside).toEqual(['p']);

    // While p keeps failing, other rooms commit within PERSIST_FLUSH_MS; p's new items queue behind its old ones.
    for (let i = 2; i <= 5; i++) {
      queue.enqueue('a', `a${i}`);
      queue.enqueue('p', `p${i}`);
      await vi.advanceTimersByTimeAsync(FLUSH_MS);
      expect(committed.get('a')?.at(-1)).toBe(`a${i}`);
      await vi.advanceTimersByTimeAsync(60_000);
    }
    expect(queue.size).toBe(5); // p1..p5, nothing dropped
    expect(queue.hasPending('p')).toBe(true);
    expect(await errors()).toBeGreaterThan(4);

    poisoned.on = false;
    await vi.advanceTimersByTimeAsync(30_000);
    expect(committed.get('p')).toEqual(['p1', 'p2', 'p3', 'p4', 'p5']);
    expect(committed.get('a')).toEqual(['a1', 'a2', 'a3', 'a4', 'a5']);
    expect({ size: queue.size, setAside: queue.setAside }).toEqual({ size: 0, setAside: [] });
  });

  it('flush(room) rejects only for that room: a room set aside does not fail a flush of another', async () => {
    const { queue, committed } = harness((batch) => batch.some(([room]) => room === 'p'));
    queue.enqueue('p', 'p1');
    queue.enqueue('a', 'a1');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(queue.setAside).toEqual(['p']);
    queue.enqueue('b', 'b1');
    await expect(queue.flush('b')).resolves.toBeUndefined();
    await expect(queue.flush('p')).rejects.toThrow('refused');
    await expect(queue.flush()).rejects.toThrow('refused');
    expect(Object.fromEntries(committed)).toEqual({ a: ['a1'], b: ['b1'] });
    expect(queue.discard('p')).toEqual(['p1']);
  });

  it('retries back off, doubling to 5 s, and a success resets the back-off', async () => {
    const down = { on: true };
    const { queue, attempts, committed } = harness(() => down.on);
    queue.enqueue('a', 'a1');
    await vi.advanceTimersByTimeAsync(200_000);
    const gaps = attempts.slice(1).map((a, i) => a.at - attempts[i]!.at);
    expect(gaps.slice(0, 7)).toEqual([500, 1000, 2000, 4000, 5000, 5000, 5000]);

    down.on = false;
    await vi.advanceTimersByTimeAsync(5_000);
    expect(committed.get('a')).toEqual(['a1']);
    down.on = true;
    const from = attempts.length;
    queue.enqueue('a', 'a2');
    await vi.advanceTimersByTimeAsync(2_000);
    const again = attempts.slice(from);
    expect(again.slice(1).map((a, i) => a.at - again[i]!.at)).toEqual([500, 1000]);
  });

  it('over hours of failures: one error line and a bounded number of others; every failure counted', async () => {
    const { queue, lines, attempts, errors } = harness((batch) => batch.some(([room]) => room !== 'ok'));
    for (let i = 0; i < 20; i++) queue.enqueue(`r${i}`, 'x');
    const hours = 10;
    for (let m = 0; m < hours * 60; m++) {
      queue.enqueue('ok', `ok${m}`); // storage works for this room: the others are set aside, one by one
      await vi.advanceTimersByTimeAsync(60_000);
    }
    // 20 rooms set aside, each retried every 5 s at most
    const failures = attempts.filter((a) => a.rooms.some((r) => r !== 'ok')).length;
    expect(failures).toBeGreaterThan(hours * 60 * 20);
    expect(await errors()).toBe(failures);
    expect(lines.filter((l) => l.level >= 50)).toHaveLength(1);
    // at most 3 lines per kind (3 kinds) and one summary line per kind, per 10 minutes
    expect(lines.length).toBeLessThanOrEqual(1 + (hours * 6 + 1) * 3 * 4);
    expect(queue.size).toBe(20);
  });

  it('storage hanging (each write fails after a 15 s timeout): a round stops after two failed writes, not one timeout per room', async () => {
    const down = { on: true };
    const { queue, attempts, committed } = harness(() => down.on, 15_000);
    for (let i = 0; i < 40; i++) queue.enqueue(`r${i}`, `x${i}`);
    // two rounds fail together, then rounds write room by room
    await vi.advanceTimersByTimeAsync(3 * 60_000);
    const rounds = attempts.filter((a) => a.rooms.length === 1).length;
    expect(rounds).toBeGreaterThan(0);
    // shutdown's drain: flush() waits for the round in flight, then tries once more
    const before = attempts.length;
    let settled = false;
    const drained = queue.flush().finally(() => (settled = true));
    drained.catch(() => undefined);
    for (let i = 0; i < 10 * 60 && !settled; i++) await vi.advanceTimersByTimeAsync(1_000);
    await expect(drained).rejects.toThrow('query timeout');
    expect(attempts.length - before).toBeLessThanOrEqual(4);
    // storage down is no room's fault: none set aside, nothing dropped
    expect(queue.setAside).toEqual([]);
    expect(queue.size).toBe(40);
    down.on = false;
    await queue.flush();
    expect(committed.size).toBe(40);
  });

  it("a room whose after-commit callback throws does not keep the other rooms of the commit untold", async () => {
    const { queue, committed, lines } = harness(() => false, 0, 'a');
    queue.enqueue('a', 'a1');
    queue.enqueue('b', 'b1');
    queue.enqueue('c', 'c1');
    await queue.flush();
    expect(Object.fromEntries(committed)).toEqual({ b: ['b1'], c: ['c1'] });
    expect(lines.filter((l) => l.msg === 'after-commit callback threw')).toHaveLength(1);
  });

  it('storage down for hours: one error line, then a bounded number; one line when it is back', async () => {
    const down = { on: true };
    const { queue, lines, attempts, errors } = harness(() => down.on);
    for (let i = 0; i < 5; i++) queue.enqueue(`r${i}`, 'x');
    await vi.advanceTimersByTimeAsync(10 * 3600_000);
    expect(await errors()).toBe(attempts.length);
    expect(lines.filter((l) => l.level >= 50)).toHaveLength(1);
    expect(lines.length).toBeLessThanOrEqual(1 + 61 * 4);
    expect(queue.size).toBe(5);
    down.on = false;
    await vi.advanceTimersByTimeAsync(5_000);
    expect(queue.size).toBe(0);
    expect(lines.filter((l) => /succeed again/.test(l.msg))).toHaveLength(1);
  });
});
