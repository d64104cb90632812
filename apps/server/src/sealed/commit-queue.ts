/**
 * Group commit of sealed envelopes, as the relay's flush queue (relay/persistence/flush-queue.ts):
 * what arrives during the first half of PERSIST_FLUSH_MS is appended in one transaction, leaving
 * the other half for the commit. After the commit each room is told its entries with their seq
 * (acks, fan-out). A failed commit keeps its envelopes, ahead of newer ones, and retries.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { ServerMetrics } from '@sync-suite/shared/node';
import type { SealedStore } from './store/types.js';

/** One accepted envelope and who to acknowledge once it is committed. */
export interface PendingEnvelope {
  envelope: Uint8Array;
  /** the sending connection and its clientMsgId */
  ack?: { peer: number; id: number };
}

export interface CommitQueueOptions {
  flushMs: number;
  metrics: ServerMetrics;
  log: FastifyBaseLogger;
  onCommitted: (room: string, firstSeq: number, pending: readonly PendingEnvelope[]) => void;
  retryMs?: number;
}

export class SealedCommitQueue {
  private pending = new Map<string, PendingEnvelope[]>();
  private oldestAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly store: SealedStore,
    private readonly opts: CommitQueueOptions,
  ) {}

  enqueue(room: string, item: PendingEnvelope): void {
    if (this.pending.size === 0) this.oldestAt = performance.now();
    const list = this.pending.get(room);
    if (list) list.push(item);
    else this.pending.set(room, [item]);
    if (!this.timer && !this.running) this.schedule(this.windowLeft());
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

  /** Forgets the room's envelopes not yet being committed (the room is being deleted). */
  discard(room: string): void {
    this.pending.delete(room);
  }

  /** Resolves once no commit is running (a failed one is back in pending, see discard). */
  async idle(): Promise<void> {
    while (this.running) await this.running.catch(() => undefined);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async commit(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = [...this.pending];
    this.pending = new Map();
    const end = this.opts.metrics.relayPersistSeconds.startTimer();
    let firsts: number[];
    try {
      firsts = await this.store.append(batch.map(([room, items]) => ({ room, envelopes: items.map((i) => i.envelope) })));
      end();
    } catch (err) {
      this.opts.metrics.storageErrors.inc({ op: 'sealed_append' });
      this.opts.log.error({ err, rooms: batch.length }, 'sealed commit failed; keeping the envelopes and retrying');
      this.requeue(batch);
      if (!this.closed) this.schedule(this.opts.retryMs ?? 500);
      throw err;
    }
    batch.forEach(([room, items], i) => this.opts.onCommitted(room, firsts[i] as number, items));
  }

  private requeue(batch: Array<[string, PendingEnvelope[]]>): void {
    const newer = this.pending;
    this.pending = new Map(batch);
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
