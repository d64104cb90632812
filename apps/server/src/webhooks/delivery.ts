/**
 * Webhook delivery: signed POSTs of the events in the storage engine's outbox (webhooks/outbox/),
 * sent one at a time, retried with exponential back-off. An event is stored when it is due and
 * deleted once delivered (or given up), so an instance that stops or crashes loses none: it (or,
 * on PostgreSQL, another instance) sends it later. The outbox holds at most `queueSize` events:
 * past that the oldest are dropped (counted, and logged): a receiver that is down for long must
 * not grow storage without bound.
 *
 *   X-Sync-Signature: sha256=<hex HMAC-SHA256(WEBHOOK_SECRET, raw body)>
 *
 * Delivery is at least once: an instance that dies between the receiver's answer and the delete
 * leaves the event to be sent again (docs/operations.md says how receivers tell).
 */
import { createHmac } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { ServerMetrics } from '@sync-suite/shared/node';
import type { OutboxEntry, WebhookOutbox } from './outbox/types.js';

export type WebhookEvent =
  | { type: 'room.changed'; room: string; at: number; updates: number }
  | { type: 'room.deleted'; room: string; at: number };

export interface DeliveryOptions {
  url: string;
  secret: string;
  /** most events the outbox holds */
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
/** events claimed at once */
const BATCH = 8;
/** A claim outlives a batch whose every request times out, with a margin for storage calls. */
const LEASE_MS = BATCH * REQUEST_TIMEOUT_MS + 20_000;
/** how often an idle instance looks for events left by others (a stopped instance, an expired claim) */
const POLL_MS = 5000;
const MIN_WAIT_MS = 20;
/** how long stop() waits for events being stored and the claim of the one in flight to be released */
const STOP_TIMEOUT_MS = 3000;
/** at most one warning per period for a full outbox or failing storage */
const WARN_EVERY_MS = 60_000;

export function signature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export class WebhookDelivery {
  private outbox: WebhookOutbox | null = null;
  /** outbox size as last read plus what this instance added since (decides when to trim) */
  private size = 0;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private pumping: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private readonly adding = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private readonly lastWarning = new Map<string, number>();

  /** the URL as logged: scheme, host, port and path; never a user name, password or query */
  private readonly target: string;

  constructor(private readonly opts: DeliveryOptions) {
    this.target = loggableUrl(opts.url);
  }

  /** The storage engine's outbox; what it holds from an earlier run is sent from now on. */
  use(outbox: WebhookOutbox): void {
    this.outbox = outbox;
    this.wake(0);
  }

  /** Stores the event (asynchronously) and wakes the sender; never waits. */
  enqueue(event: WebhookEvent): void {
    if (this.stopped) return;
    const outbox = this.outbox;
    if (!outbox) {
      // Only before storage is open, when no room can change: never in practice.
      this.opts.metrics.webhookDeliveries.inc({ result: 'dropped' });
      return this.warn('no-outbox', {}, 'webhook event before storage was open; dropped');
    }
    const stored = this.store(outbox, JSON.stringify(event)).finally(() => this.adding.delete(stored));
    this.adding.add(stored);
  }

  get backlog(): number {
    return this.size;
  }

  /**
   * Bounded: waits for the events being stored, aborts the request in flight and releases its
   * claim, so the next start (or another instance) sends what is left.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    const adding = [...this.adding];
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.abort.abort();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...adding, this.pumping]),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, STOP_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
  }

  private async store(outbox: WebhookOutbox, body: string): Promise<void> {
    const max = this.opts.queueSize;
    try {
      const dropped = await outbox.add(body, Date.now(), this.size + 1 > max ? max : null);
      this.size = this.size + 1 - dropped;
      if (dropped > 0) {
        this.opts.metrics.webhookDeliveries.inc({ result: 'dropped' }, dropped);
        this.warn('full', { dropped, max }, 'webhook outbox full (WEBHOOK_QUEUE_SIZE): oldest events dropped');
      }
      this.opts.metrics.webhookBacklog.set(this.size);
      this.wake(0);
    } catch (err) {
      this.opts.metrics.webhookDeliveries.inc({ result: 'dropped' });
      this.warn('store', { err: message(err) }, 'webhook event could not be stored; dropped');
    }
  }

  /** Runs the sender in `delayMs` (or sooner if it was due sooner), or once more if it is running. */
  private wake(delayMs: number): void {
    if (this.stopped || !this.outbox) return;
    if (this.pumping) {
      if (delayMs === 0) this.again = true;
      return;
    }
    const at = Date.now() + delayMs;
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.run(), delayMs);
    this.timer.unref();
  }

  private run(): void {
    this.timer = null;
    this.timerAt = Infinity;
    const outbox = this.outbox;
    if (!outbox || this.stopped) return;
    this.again = false;
    // next() clears `pumping` before it schedules the next run.
    this.pumping = this.pump(outbox)
      .catch((err: unknown) => this.warn('pump', { err: message(err) }, 'webhook outbox could not be read; trying again'))
      .then(() => this.next(outbox));
  }

  /** Sends every due event this instance can claim. */
  private async pump(outbox: WebhookOutbox): Promise<void> {
    while (!this.stopped) {
      const batch = await outbox.claim(Date.now(), LEASE_MS, BATCH);
      if (batch.length === 0) return;
      for (const [i, entry] of batch.entries()) {
        if (this.stopped) return outbox.release(batch.slice(i).map((e) => e.id));
        await this.deliver(outbox, entry);
      }
    }
  }

  private async deliver(outbox: WebhookOutbox, entry: OutboxEntry): Promise<void> {
    const { metrics } = this.opts;
    const result = await this.post(entry.body);
    if (result === 'aborted') return outbox.release([entry.id]);
    const attempts = entry.attempts + 1;
    if (result === 'ok' || attempts >= MAX_ATTEMPTS) {
      await outbox.remove(entry.id);
      this.size = Math.max(0, this.size - 1);
      metrics.webhookDeliveries.inc({ result: result === 'ok' ? 'ok' : 'gave_up' });
    } else {
      await outbox.retry(entry.id, attempts, Date.now() + Math.min(MAX_BACKOFF_MS, (this.opts.backoffMs ?? 500) * 2 ** (attempts - 1)));
      metrics.webhookDeliveries.inc({ result: 'retry' });
    }
    metrics.webhookBacklog.set(this.size);
  }

  /** Reads the outbox's size and sleeps until its next due event (at most POLL_MS). */
  private async next(outbox: WebhookOutbox): Promise<void> {
    if (this.stopped) return;
    let wait = POLL_MS;
    try {
      const stats = await outbox.stats();
      this.size = stats.size;
      this.opts.metrics.webhookBacklog.set(stats.size);
      if (stats.nextDue !== null) wait = Math.min(POLL_MS, Math.max(MIN_WAIT_MS, stats.nextDue - Date.now()));
    } catch (err) {
      this.warn('pump', { err: message(err) }, 'webhook outbox could not be read; trying again');
    }
    this.pumping = null;
    this.wake(this.again ? 0 : wait);
  }

  private async post(body: string): Promise<'ok' | 'failed' | 'aborted'> {
    try {
      const res = await fetch(this.opts.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-sync-signature': signature(this.opts.secret, body), 'user-agent': 'sync-suite-webhook' },
        body,
        // Never followed: a 307/308 would re-POST the signed body to wherever the receiver (or
        // whoever answers for it) points, loopback and internal addresses included.
        redirect: 'manual',
        signal: AbortSignal.any([AbortSignal.timeout(REQUEST_TIMEOUT_MS), this.abort.signal]),
      });
      await res.body?.cancel();
      if (res.ok) return 'ok';
      if (res.status >= 300 && res.status < 400) {
        this.warn('redirect', { target: this.target, status: res.status }, 'webhook receiver answered a redirect, which is not followed; retrying');
        return 'failed';
      }
      this.warn('refused', { target: this.target, status: res.status }, 'webhook receiver refused an event; retrying');
      return 'failed';
    } catch (err) {
      if (this.abort.signal.aborted) return 'aborted';
      // An error code, never the error's text: fetch's messages can carry the URL, credentials and all.
      this.warn('failed', { target: this.target, err: fetchErrorCode(err) }, 'webhook delivery failed; retrying');
      return 'failed';
    }
  }

  private warn(kind: string, fields: Record<string, unknown>, text: string): void {
    const now = Date.now();
    if (now - (this.lastWarning.get(kind) ?? -Infinity) < WARN_EVERY_MS) return;
    this.lastWarning.set(kind, now);
    this.opts.log.warn(fields, text);
  }
}

/**
 * `scheme://host[:port]` of `url`, then `/…` when it has a path: no user name, password, path,
 * query or fragment. Receivers such as chat webhooks carry their secret in the path.
 */
export function loggableUrl(url: string): string {
  try {
    const u = new URL(url);
    return u.pathname === '/' ? `${u.origin}/` : `${u.origin}/…`;
  } catch {
    return '[invalid URL]';
  }
}

/** What failed, as a code: the system error's (ECONNREFUSED, UND_ERR_CONNECT_TIMEOUT, ...) or the error's name (TimeoutError). */
function fetchErrorCode(err: unknown): string {
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  if (typeof cause?.code === 'string' && /^[A-Z0-9_]{1,64}$/.test(cause.code)) return cause.code;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[A-Z0-9_]{1,64}$/.test(code)) return code;
  return err instanceof Error ? err.name : 'unknown';
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
