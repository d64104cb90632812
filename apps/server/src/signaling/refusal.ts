/**
 * Closing a signaling socket for cause: the close code and reason come from the one error
 * table (packages/shared/src/errors.ts, docs/errors.md), and every refusal is counted by reason.
 */
import type { WebSocket } from 'ws';
import { closeWith, type ErrorCode } from '@sync-suite/shared';
import type { ServerMetrics } from '@sync-suite/shared/node';

export interface Refusal {
  code: ErrorCode;
  /** the `reason` label of sync_rejected_messages_total{endpoint="signal"} */
  reason: string;
  /** for the debug log only; never sent to the client */
  detail?: string;
}

export const refusal = (code: ErrorCode, reason: string, detail?: string): Refusal => ({ code, reason, ...(detail ? { detail } : {}) });

export function closeForCause(socket: WebSocket, metrics: ServerMetrics, r: Refusal): void {
  metrics.rejectedMessages.inc({ endpoint: 'signal', reason: r.reason });
  if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) socket.close(...closeWith(r.code));
}
