/**
 * The relay's compactions (relay/compaction.ts), one at a time with a turn between them: storage
 * calls may be synchronous (SQLite), and rooms that cross the threshold in one commit would
 * otherwise block the event loop for all of them at once.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { ServerMetrics } from '@sync-suite/shared/node';
import { foldRoomLog, type LiveState } from './compaction.js';
import type { Quarantined } from './persistence/merge.js';
import type { DocStore } from './persistence/types.js';
import type { UpdateLimits } from './update-limits.js';

export interface Folded {
  folded: number;
  throughSeq: number;
  /** whether the snapshot written was the live state (compaction.ts), and its size */
  fromLive?: boolean;
  snapshotBytes?: number;
}

export interface CompactionQueueOptions {
  store: DocStore;
  limits: UpdateLimits;
  metrics: ServerMetrics;
  log: FastifyBaseLogger;
  /** entries set aside while folding */
  quarantined(room: string, entries: readonly Quarantined[]): void;
  /** storage is in another generation than `generation`, the one the compaction named: nothing was written */
  fenced?(room: string, generation: number): void;
  /** a compaction ran: entries folded, and whether from the live document */
  compacted(room: string, folded: number, fromLive: boolean): void;
}

const NOTHING: Folded = { folded: 0, throughSeq: 0 };

export class CompactionQueue {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: CompactionQueueOptions) {}

  /**
   * Queues a compaction of `room`. `wanted` is asked when its turn comes (a delete of the room
   * since it was queued must not see it written back); `live` gives the room's live state, or
   * null when the room left memory. Never rejects: a failure is logged and folds nothing.
   */
  run(room: string, wanted: () => boolean, live?: (withDeletions: boolean) => LiveState | null): Promise<Folded> {
    const run = this.tail
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(() => (wanted() ? this.now(room, live) : NOTHING));
    this.tail = run;
    return run;
  }

  /** Resolves once every compaction queued so far has finished. */
  idle(): Promise<void> {
    return this.tail.then(
      () => undefined,
      () => undefined,
    );
  }

  private async now(room: string, live?: (withDeletions: boolean) => LiveState | null): Promise<Folded> {
    try {
      const done = await foldRoomLog(this.opts.store, room, live, this.opts.limits);
      if (done.fenced !== undefined) {
        this.opts.fenced?.(room, done.fenced);
        return NOTHING;
      }
      if (done.quarantined.length > 0) this.opts.quarantined(room, done.quarantined);
      this.opts.compacted(room, done.folded, done.fromLive);
      return done;
    } catch (err) {
      this.opts.metrics.storageErrors.inc({ op: 'compact' });
      this.opts.log.error({ err, room }, 'relay compaction failed; the log stays as it is');
      return NOTHING;
    }
  }
}
