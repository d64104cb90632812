/**
 * Group commit: updates accepted during one window are appended in a single transaction.
 * The window starts with the oldest pending update and lasts half of PERSIST_FLUSH_MS, leaving
 * the other half for the commit itself, so an accepted update is durable within PERSIST_FLUSH_MS.
 * A failed commit keeps its updates (in order, ahead of newer ones) and retries; nothing is dropped.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { ServerMetrics } from '@sync-suite/shared/node';
import type { AppendBatch, DocStore } from './types.js';

export interface FlushQueueOptions {
  flushMs: number;
  metrics: ServerMetrics;
  log: FastifyBaseLogger;
  /** called after each successful commit, per room, with the updates committed */
  onCommitted?: (room: string, updates: readonly Uint8Array[]) => void;
  retryMs?: number;
}

export class FlushQueue {
  private pending = new Map<string, Uint8Array[]>();
  private oldestAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly store: DocStore,
    private readonly opts: FlushQueueOptions,
  ) {}

  enqueue(room: string, update: Uint8Array): void {
    if (this.pending.size === 0) this.oldestAt = performance.now();
    const list = this.pending.get(room);
    if (list) list.push(update);
    else this.pending.set(room, [update]);
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

  /** Forgets the room's updates not yet committed (the room was deleted). */
  discard(room: string): void {
    this.pending.delete(room);
  }

  /** Resolves once no commit is in flight (a failed one has put its updates back by then). */
  async idle(): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
  }

  /** Stops the timer; pending updates stay until a final flush(). */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async commit(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch: AppendBatch[] = [...this.pending].map(([room, updates]) => ({ room, updates }));
    this.pending = new Map();
    const end = this.opts.metrics.relayPersistSeconds.startTimer();
    try {
      await this.store.append(batch);
      end();
    } catch (err) {
      this.opts.metrics.storageErrors.inc({ op: 'append' });
      this.opts.log.error({ err, rooms: batch.length }, 'relay commit failed; keeping the updates and retrying');
      this.requeue(batch);
      if (!this.closed) this.schedule(this.opts.retryMs ?? 500);
      throw err;
    }
    for (const { room, updates } of batch) this.opts.onCommitted?.(room, updates);
  }

  private requeue(batch: AppendBatch[]): void {
    const newer = this.pending;
    this.pending = new Map(batch.map(({ room, updates }) => [room, [...updates]]));
    for (const [room, updates] of newer) {
      const list = this.pending.get(room);
      if (list) list.push(...updates);
      else this.pending.set(room, updates);
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
