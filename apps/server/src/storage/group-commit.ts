/**
 * Group commit, for every kind of stored entry (relay updates: relay/persistence/flush-queue.ts;
 * sealed envelopes: sealed/commit-queue.ts). What is accepted during one window is written in a
 * single transaction. The window starts with the oldest pending item; an accepted item is durable
 * within PERSIST_FLUSH_MS. How long the window lasts (`window`):
 * - 'half': half of PERSIST_FLUSH_MS, leaving the other half for the commit itself. For queues
 *   whose commit holds output back (sealed acks and fan-out, the relay's publish to other
 *   instances): the commit's latency is theirs.
 * - 'bound': as long as the bound allows: PERSIST_FLUSH_MS minus the slowest of the last
 *   COMMIT_HISTORY commits and a tenth of PERSIST_FLUSH_MS for a late timer (half, until a
 *   commit has been timed). Fewer commits, each with its fsync; for the relay on one instance,
 *   whose output never waits for a commit. A slow disk shortens the window below half.
 * A failed commit keeps its items (in order, ahead of newer ones) and retries; nothing is dropped.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { ServerMetrics } from '@sync-suite/shared/node';

/** One window's items, per room, in arrival order. */
export type RoomBatch<Item> = Array<[room: string, items: Item[]]>;

export interface GroupCommitOptions<Item, Result> {
  flushMs: number;
  metrics: ServerMetrics;
  log: FastifyBaseLogger;
  /** writes one window in one transaction */
  write: (batch: RoomBatch<Item>) => Promise<Result>;
  /** called after each successful commit with what was committed and what `write` returned */
  committed?: (batch: RoomBatch<Item>, result: Result) => void;
  /** the `op` label of storage_errors_total and the words of the log line when a commit fails */
  failure: { op: string; message: string };
  retryMs?: number;
  /** how long a window lasts: 'half' (the default) or 'bound' (see above) */
  window?: CommitWindow;
  /** milliseconds, monotonic (performance.now by default; tests give their own) */
  now?: () => number;
}

export type CommitWindow = 'half' | 'bound';

/** how many of the last commits' durations the 'bound' window allows for */
export const COMMIT_HISTORY = 8;

export class GroupCommitQueue<Item, Result = void> {
  private pending = new Map<string, Item[]>();
  private oldestAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private closed = false;
  private readonly now: () => number;
  /** the last commits' durations, ms (a ring of COMMIT_HISTORY; 'bound' windows only) */
  private readonly durations: number[] = [];
  private nextDuration = 0;

  constructor(private readonly opts: GroupCommitOptions<Item, Result>) {
    this.now = opts.now ?? (() => performance.now());
  }

  /** which kind of window this queue keeps */
  get window(): CommitWindow {
    return this.opts.window ?? 'half';
  }

  /** How long a window lasts now, ms: from the oldest pending item to the start of its commit. */
  get windowMs(): number {
    const { flushMs } = this.opts;
    if (this.opts.window !== 'bound' || this.durations.length === 0) return flushMs / 2;
    return Math.max(0, flushMs - Math.max(...this.durations) - flushMs / 10);
  }

  /**
   * Takes `item` into the next commit; false (item not taken) once close() was called: nothing
   * would commit it (no timer runs after close, and the final flush may already be done), so the
   * caller must not count on it (sealed/connection.ts: no ack; the device sends it again).
   */
  enqueue(room: string, item: Item): boolean {
    if (this.closed) return false;
    if (this.pending.size === 0) this.oldestAt = this.now();
    const list = this.pending.get(room);
    if (list) list.push(item);
    else this.pending.set(room, [item]);
    if (!this.timer && !this.running) this.schedule(this.windowLeft());
    return true;
  }

  hasPending(room: string): boolean {
    return this.pending.has(room);
  }

  get size(): number {
    let n = 0;
    for (const list of this.pending.values()) n += list.length;
    return n;
  }

  /** Commits everything enqueued before the call; rejects if storage refuses it. */
  async flush(): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
    if (this.pending.size === 0) return;
    this.running = this.commit();
    try {
      await this.running;
    } finally {
      this.running = null;
      if (this.pending.size > 0 && !this.timer && !this.closed) this.schedule(this.windowLeft());
    }
  }

  /** Forgets the room's items not yet being committed (the room was deleted); returns them. */
  discard(room: string): Item[] {
    const items = this.pending.get(room) ?? [];
    this.pending.delete(room);
    return items;
  }

  /** Resolves once no commit is in flight (a failed one has put its items back by then). */
  async idle(): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
  }

  /** Stops the timer and refuses new items; pending items stay until a final flush(). */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async commit(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch: RoomBatch<Item> = [...this.pending];
    this.pending = new Map();
    const end = this.opts.metrics.relayPersistSeconds.startTimer();
    const started = this.now();
    let result: Result;
    try {
      result = await this.opts.write(batch);
      end();
      this.timed(this.now() - started);
    } catch (err) {
      this.opts.metrics.storageErrors.inc({ op: this.opts.failure.op });
      this.opts.log.error({ err, rooms: batch.length }, this.opts.failure.message);
      this.requeue(batch);
      if (!this.closed) this.schedule(this.opts.retryMs ?? 500);
      throw err;
    }
    this.opts.committed?.(batch, result);
  }

  private requeue(batch: RoomBatch<Item>): void {
    const newer = this.pending;
    this.pending = new Map(batch.map(([room, items]) => [room, [...items]]));
    for (const [room, items] of newer) {
      const list = this.pending.get(room);
      if (list) list.push(...items);
      else this.pending.set(room, items);
    }
    this.oldestAt = this.now();
  }

  private timed(ms: number): void {
    if (this.opts.window !== 'bound') return;
    this.durations[this.nextDuration] = ms;
    this.nextDuration = (this.nextDuration + 1) % COMMIT_HISTORY;
  }

  private windowLeft(): number {
    return Math.max(0, this.oldestAt + this.windowMs - this.now());
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush().catch(() => undefined); // counted and logged in commit()
    }, ms);
  }
}
