/**
 * What the GroupCommitQueue tests (group-commit-failures.test.ts, group-commit-sim.test.ts) need
 * around the queue: fake timers for each test (the queue's timers, its log budget's interval, and
 * Date, which is its clock here), and `queue(options)`, a GroupCommitQueue with a FLUSH_MS window,
 * fresh metrics, a silent log and a test failure label unless the options say otherwise. Queues it
 * made are closed after each test, before the real timers are back, so a failed test leaves none.
 * Call at the top of a test file or inside a describe block.
 */
import { afterEach, beforeEach, vi } from 'vitest';
import pino from 'pino';
import { createServerMetrics } from '@sync-suite/shared/node';
import { GroupCommitQueue, type GroupCommitOptions } from '../src/storage/group-commit.js';

export const FLUSH_MS = 100;

type QueueOptions<Item, Result> = Pick<GroupCommitOptions<Item, Result>, 'write'> & Partial<GroupCommitOptions<Item, Result>>;

export function useCommitQueues(): <Item, Result = void>(options: QueueOptions<Item, Result>) => GroupCommitQueue<Item, Result> {
  const queues: Array<{ close(): void }> = [];
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
  });
  afterEach(() => {
    for (const q of queues.splice(0)) q.close();
    vi.useRealTimers();
  });
  return <Item, Result = void>(options: QueueOptions<Item, Result>): GroupCommitQueue<Item, Result> => {
    const queue = new GroupCommitQueue<Item, Result>({
      flushMs: FLUSH_MS,
      metrics: createServerMetrics(),
      log: pino({ level: 'silent' }),
      now: () => Date.now(),
      failure: { op: 'test', message: 'test commit failed' },
      ...options,
    });
    queues.push(queue);
    return queue;
  };
}
