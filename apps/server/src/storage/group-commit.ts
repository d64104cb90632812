/**
 * Group commit, for every kind of stored entry (relay updates: relay/persistence/flush-queue.ts;
 * sealed envelopes: sealed/commit-queue.ts). What is accepted during one window is written in a
 * single transaction. The window starts with the oldest pending item and lasts half of
 * PERSIST_FLUSH_MS, leaving the other half for the commit itself, so an accepted item is durable
 * within PERSIST_FLUSH_MS. A failed commit keeps its items (in order, ahead of newer ones) and
 * retries; nothing is dropped.
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
}

export class GroupCommitQueue<Item, Result = void> {
  private pending = new Map<string, Item[]>();
  private oldestAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private closed = false;

  constructor(private readonly opts: GroupCommitOptions<Item, Result>) {}

  enqueue(room: string, item: Item): void {
    if (this.pending.size === 0) this.oldestAt = performance.now();
    const list = this.pending.get(room);
    if (list) list.push(item);
    else this.pending.set(room, [item]);
    if (!this.timer && !this.running) this.schedule(this.windowLeft());
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

  /** Forgets the room's items not yet being committed (the room was deleted). */
  discard(room: string): void {
    this.pending.delete(room);
  }

  /** Resolves once no commit is in flight (a failed one has put its items back by then). */
  async idle(): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
  }

  /** Stops the timer; pending items stay until a final flush(). */
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
    let result: Result;
    try {
      result = await this.opts.write(batch);
      end();
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
    this.oldestAt = performance.now();
  }

  private windowLeft(): number {
    return Math.max(0, this.oldestAt + this.opts.flushMs / 2 - performance.now());
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush().catch(() => undefined); // counted and logged in commit()
    }, ms);
  }
}
