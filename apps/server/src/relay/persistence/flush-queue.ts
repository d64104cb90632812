/**
 * The relay's group commit (storage/group-commit.ts): updates accepted during one window are
 * appended to the DocStore in a single transaction; a failed commit keeps them and retries.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { ServerMetrics } from '@sync-suite/shared/node';
import { GroupCommitQueue, type CommitWindow } from '../../storage/group-commit.js';
import type { DocStore } from './types.js';

export interface FlushQueueOptions {
  flushMs: number;
  metrics: ServerMetrics;
  log: FastifyBaseLogger;
  /** called after each successful commit, per room, with the updates committed */
  onCommitted?: (room: string, updates: readonly Uint8Array[]) => void;
  retryMs?: number;
  /** how long a window lasts (storage/group-commit.ts); 'half' by default */
  window?: CommitWindow;
  /** milliseconds, monotonic (tests) */
  now?: () => number;
}

export class FlushQueue extends GroupCommitQueue<Uint8Array> {
  constructor(store: DocStore, opts: FlushQueueOptions) {
    const { onCommitted } = opts;
    super({
      flushMs: opts.flushMs,
      metrics: opts.metrics,
      log: opts.log,
      retryMs: opts.retryMs,
      window: opts.window,
      now: opts.now,
      write: (batch) => store.append(batch.map(([room, updates]) => ({ room, updates }))),
      committed: onCommitted && ((room, updates) => onCommitted(room, updates)),
      failure: { op: 'append', message: 'relay commit failed; keeping the updates and retrying' },
    });
  }
}
