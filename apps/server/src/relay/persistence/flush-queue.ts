/**
 * The relay's group commit (storage/group-commit.ts): updates accepted during one window are
 * appended to the DocStore in a single transaction; a failed commit keeps them and retries.
 * Each update keeps the generation its room was loaded in when it was accepted (DocStore,
 * types.ts), through failed commits too, and a room's batch names it; a batch the store refuses
 * for it is not a failure: the other rooms of the commit are stored, and that room's updates go
 * to `onFenced`, never retried.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { ServerMetrics } from '@sync-suite/shared/node';
import { GroupCommitQueue, type CommitWindow } from '../../storage/group-commit.js';
import type { AppendBatch, DocStore } from './types.js';

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

/** An accepted update and the generation it was accepted in (absent: none, stored whatever it is). */
interface QueuedUpdate {
  update: Uint8Array;
  generation?: number;
}

export class FlushQueue {
  private readonly queue: GroupCommitQueue<QueuedUpdate, string[]>;

  constructor(store: DocStore, opts: FlushQueueOptions) {
    const { onCommitted, onFenced } = opts;
    this.queue = new GroupCommitQueue<QueuedUpdate, string[]>({
      flushMs: opts.flushMs,
      metrics: opts.metrics,
      log: opts.log,
      retryMs: opts.retryMs,
      window: opts.window,
      now: opts.now,
      write: (batch) => store.append(batch.map(([room, items]) => named(room, items))),
      committed: (room, items, fenced) => {
        const { updates, generation } = named(room, items);
        if (fenced.includes(room)) onFenced?.(room, generation, updates);
        else onCommitted?.(room, updates, generation);
      },
      failure: { op: 'append', message: 'relay commit failed; keeping the updates and retrying' },
    });
  }

  /** Takes `update` into the next commit, naming the room's `generation` (absent: none, stored whatever it is). */
  enqueue(room: string, update: Uint8Array, generation?: number): boolean {
    return this.queue.enqueue(room, generation === undefined ? { update } : { update, generation });
  }

  /**
   * Forgets the room's updates not yet being committed (the room was deleted); with `before`,
   * only those accepted in a generation older than it (a room loaded in `before` or later is
   * the new room: relay/room-registry.ts purge). Returns them.
   */
  discard(room: string, before?: number): Uint8Array[] {
    const drop = before === undefined ? undefined : (q: QueuedUpdate) => q.generation !== undefined && q.generation < before;
    return this.queue.discard(room, drop).map((q) => q.update);
  }

  /** Whether the room has updates not committed yet: waiting, set aside, or being written. */
  hasPending(room: string): boolean {
    return this.queue.hasPending(room);
  }

  /** storage/group-commit.ts flush */
  flush(room?: string): Promise<void> {
    return this.queue.flush(room);
  }

  /** Resolves once no commit is in flight (a failed one has put its updates back by then). */
  idle(): Promise<void> {
    return this.queue.idle();
  }

  /** Stops the timer and refuses new updates; pending ones stay until a final flush(). */
  close(): void {
    this.queue.close();
  }

  get size(): number {
    return this.queue.size;
  }

  get setAside(): string[] {
    return this.queue.setAside;
  }

  get window(): CommitWindow {
    return this.queue.window;
  }

  get windowMs(): number {
    return this.queue.windowMs;
  }
}

/**
 * The room's batch, naming the newest generation among its updates. A room is in one generation
 * at a time, so an update of an older one belongs to a room deleted since (a delete or a refusal
 * normally discards them first: relay/room-registry.ts); storage would refuse it, and it is left
 * out here rather than written with the new room's (never a batch of mixed generations).
 */
function named(room: string, items: readonly QueuedUpdate[]): AppendBatch & { updates: Uint8Array[] } {
  let generation: number | undefined;
  for (const q of items) if (q.generation !== undefined && (generation === undefined || q.generation > generation)) generation = q.generation;
  const updates = items.filter((q) => q.generation === undefined || q.generation === generation).map((q) => q.update);
  return generation === undefined ? { room, updates } : { room, updates, generation };
}
