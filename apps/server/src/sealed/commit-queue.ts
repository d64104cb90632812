/**
 * Group commit of sealed envelopes (storage/group-commit.ts): what arrives during one window is
 * appended in one transaction. After the commit each room is told its entries with their seq
 * (acks, fan-out). A failed commit keeps its envelopes, ahead of newer ones, and retries.
 * Each room's batch names the generation its envelopes were sent in; a batch the store refuses
 * for it (SEALED_FENCED: the room was deleted elsewhere) is not a failure: the other rooms of
 * the commit are stored, and that room's envelopes go to `onFenced`, never retried.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { ServerMetrics } from '@sync-suite/shared/node';
import { GroupCommitQueue } from '../storage/group-commit.js';
import { SEALED_FENCED, type SealedFenced, type SealedStore } from './store/types.js';

/** One accepted envelope and who to acknowledge once it is committed. */
export interface PendingEnvelope {
  envelope: Uint8Array;
  /** the sending connection and its clientMsgId */
  ack?: { peer: number; id: number };
  /**
   * the room's generation the sender was welcomed in (sealed/connection.ts; absent only where
   * tests enqueue directly). A room's pending envelopes all have the same: a delete discards
   * them before the room loads again (sealed/registry.ts purge).
   */
  generation?: number;
}

export interface CommitQueueOptions {
  flushMs: number;
  metrics: ServerMetrics;
  log: FastifyBaseLogger;
  onCommitted: (room: string, firstSeq: number, pending: readonly PendingEnvelope[]) => void;
  /** storage refused the room's envelopes: not the room's generation any more (nothing stored) */
  onFenced?: (room: string, pending: readonly PendingEnvelope[]) => void;
  retryMs?: number;
}

export class SealedCommitQueue extends GroupCommitQueue<PendingEnvelope, Array<number | SealedFenced>> {
  constructor(store: SealedStore, opts: CommitQueueOptions) {
    super({
      flushMs: opts.flushMs,
      metrics: opts.metrics,
      log: opts.log,
      retryMs: opts.retryMs,
      write: (batch) => store.append(batch.map(([room, items]) => ({ room, envelopes: items.map((i) => i.envelope), generation: items[0]?.generation }))),
      committed: (room, items, firsts, i) => {
        const first = firsts[i] as number | SealedFenced;
        if (first === SEALED_FENCED) opts.onFenced?.(room, items);
        else opts.onCommitted(room, first, items);
      },
      failure: { op: 'sealed_append', message: 'sealed commit failed; keeping the envelopes and retrying' },
    });
  }
}
