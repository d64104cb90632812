/**
 * The relay's group commit (storage/group-commit.ts): updates accepted during one window are
 * appended to the DocStore in a single transaction; a failed commit keeps them and retries.
 * Each room's batch names the generation its updates were accepted in (DocStore, types.ts); a
 * batch the store refuses for it is not a failure: the other rooms of the commit are stored, and
 * that room's updates go to `onFenced`, never retried.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { ServerMetrics } from '@sync-suite/shared/node';
import { GroupCommitQueue, type CommitWindow } from '../../storage/group-commit.js';
import type { DocStore } from './types.js';

export interface FlushQueueOptions {
  flushMs: number;
  metrics: ServerMetrics;
  log: FastifyBaseLogger;
  /** called after each successful commit, per room, with the updates committed and the generation they named */
  onCommitted?: (room: string, updates: readonly Uint8Array[], generation: number | undefined) => void;
  /** storage refused the room's updates: `generation`, which they named, is not the room's any more (nothing stored) */
  onFenced?: (room: string, generation: number | undefined, updates: readonly Uint8Array[]) => void;
  retryMs?: number;
  /** how long a window lasts (storage/group-commit.ts); 'half' by default */
  window?: CommitWindow;
  /** milliseconds, monotonic (tests) */
  now?: () => number;
}

export class FlushQueue extends GroupCommitQueue<Uint8Array, string[]> {
  /**
   * The generation of each room with updates here (enqueue). A room's waiting updates all have
   * the same: a delete or a refusal discards them before the room loads again (room-registry.ts).
   * Forgotten once none wait.
   */
  private readonly generations: Map<string, number>;

  constructor(store: DocStore, opts: FlushQueueOptions) {
    const { onCommitted, onFenced } = opts;
    const generations = new Map<string, number>();
    // the queue itself, for the callbacks given before it exists
    const self: { queue?: FlushQueue } = {};
    super({
      flushMs: opts.flushMs,
      metrics: opts.metrics,
      log: opts.log,
      retryMs: opts.retryMs,
      window: opts.window,
      now: opts.now,
      write: (batch) =>
        store.append(
          batch.map(([room, updates]) => {
            const generation = generations.get(room);
            return generation === undefined ? { room, updates } : { room, updates, generation };
          }),
        ),
      committed: (room, updates, fenced) => {
        const generation = generations.get(room);
        if (!self.queue?.waiting(room)) generations.delete(room);
        if (fenced.includes(room)) onFenced?.(room, generation, updates);
        else onCommitted?.(room, updates, generation);
      },
      failure: { op: 'append', message: 'relay commit failed; keeping the updates and retrying' },
    });
    this.generations = generations;
    self.queue = this;
  }

  /** Takes `update` into the next commit, naming the room's `generation` (absent: none, stored whatever it is). */
  override enqueue(room: string, update: Uint8Array, generation?: number): boolean {
    if (!super.enqueue(room, update)) return false;
    if (generation === undefined) this.generations.delete(room);
    else this.generations.set(room, generation);
    return true;
  }

  override discard(room: string): Uint8Array[] {
    const items = super.discard(room);
    if (!this.waiting(room)) this.generations.delete(room);
    return items;
  }
}
