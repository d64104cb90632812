/**
 * Webhook delivery: a bounded queue of signed POSTs, sent one at a time, retried with
 * exponential back-off. When the queue is full the oldest event is dropped (and counted): a
 * receiver that is down for long must not grow server memory without bound.
 *
 *   X-Sync-Signature: sha256=<hex HMAC-SHA256(WEBHOOK_SECRET, raw body)>
 */
import { createHmac } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { ServerMetrics } from '@sync-suite/shared/node';

export type WebhookEvent =
  | { type: 'room.changed'; room: string; at: number; updates: number }
  | { type: 'room.deleted'; room: string; at: number };

export interface DeliveryOptions {
  url: string;
  secret: string;
  queueSize: number;
  metrics: ServerMetrics;
  log: FastifyBaseLogger;
  /** first retry delay; doubles per attempt up to MAX_BACKOFF_MS */
  backoffMs?: number;
}

const MAX_BACKOFF_MS = 60_000;
/** about 6 minutes of retries with the default back-off */
const MAX_ATTEMPTS = 12;
const REQUEST_TIMEOUT_MS = 5000;

interface Job {
  body: string;
  attempts: number;
  due: number;
}

export function signature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export class WebhookDelivery {
  private readonly queue: Job[] = [];
  private timer: NodeJS.Timeout | null = null;
  private sending = false;
  private stopped = false;

  constructor(private readonly opts: DeliveryOptions) {}

  enqueue(event: WebhookEvent): void {
    if (this.stopped) return;
    if (this.queue.length >= this.opts.queueSize) {
      this.queue.shift();
      this.opts.metrics.webhookDeliveries.inc({ result: 'dropped' });
    }
    this.queue.push({ body: JSON.stringify(event), attempts: 0, due: Date.now() });
    this.opts.metrics.webhookBacklog.set(this.queue.length);
    this.schedule();
  }

  get backlog(): number {
    return this.queue.length;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Wakes up when the earliest job is due. */
  private schedule(): void {
    if (this.sending || this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const next = this.earliest();
    if (!next) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.sendDue();
    }, Math.max(0, next.due - Date.now()));
    this.timer.unref();
  }

  private earliest(): Job | undefined {
    let best: Job | undefined;
    for (const job of this.queue) if (!best || job.due < best.due) best = job;
    return best;
  }

  private async sendDue(): Promise<void> {
    const job = this.earliest();
    if (!job || this.stopped) return;
    this.sending = true;
    try {
      const ok = await this.post(job.body);
      this.settle(job, ok);
    } finally {
      this.sending = false;
      this.schedule();
    }
  }

  private settle(job: Job, ok: boolean): void {
    const { metrics } = this.opts;
    job.attempts++;
    if (ok || job.attempts >= MAX_ATTEMPTS) {
      const at = this.queue.indexOf(job);
      if (at >= 0) this.queue.splice(at, 1);
      metrics.webhookDeliveries.inc({ result: ok ? 'ok' : 'gave_up' });
    } else {
      job.due = Date.now() + Math.min(MAX_BACKOFF_MS, (this.opts.backoffMs ?? 500) * 2 ** (job.attempts - 1));
      metrics.webhookDeliveries.inc({ result: 'retry' });
    }
    metrics.webhookBacklog.set(this.queue.length);
  }

  private async post(body: string): Promise<boolean> {
    try {
      const res = await fetch(this.opts.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-sync-signature': signature(this.opts.secret, body), 'user-agent': 'sync-suite-webhook' },
        body,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      await res.body?.cancel();
      if (res.ok) return true;
      this.opts.log.warn({ status: res.status }, 'webhook receiver refused an event; retrying');
      return false;
    } catch (err) {
      this.opts.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'webhook delivery failed; retrying');
      return false;
    }
  }
}
