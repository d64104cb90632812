/**
 * Group commit of sealed envelopes (storage/group-commit.ts): what arrives during one window is
 * appended in one transaction. After the commit each room is told its entries with their seq
 * (acks, fan-out). A failed commit keeps its envelopes, ahead of newer ones, and retries.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { ServerMetrics } from '@sync-suite/shared/node';
import { GroupCommitQueue } from '../storage/group-commit.js';
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

export class SealedCommitQueue extends GroupCommitQueue<PendingEnvelope, number[]> {
  constructor(store: SealedStore, opts: CommitQueueOptions) {
    super({
      flushMs: opts.flushMs,
      metrics: opts.metrics,
      log: opts.log,
      retryMs: opts.retryMs,
      write: (batch) => store.append(batch.map(([room, items]) => ({ room, envelopes: items.map((i) => i.envelope) }))),
      committed: (room, items, firsts, i) => opts.onCommitted(room, firsts[i] as number, items),
      failure: { op: 'sealed_append', message: 'sealed commit failed; keeping the envelopes and retrying' },
    });
  }
}
