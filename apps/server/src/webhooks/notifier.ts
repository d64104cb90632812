/**
 * Room changes -> webhook events. changed() only marks the room dirty (a Map update); one timer
 * looks at the dirty rooms a few times per debounce period and emits a room's event once it has
 * been quiet for WEBHOOK_DEBOUNCE_MS (or 5 × that after its first change, so a room that never
 * stops changing still notifies). With several instances, `claim` (a Redis SET NX PX per room)
 * lets one instance send the event of a burst that several of them committed. An event goes to
 * the delivery's outbox in storage when it is due; at shutdown close() stores the events of the
 * bursts still pending too, so the last commits before a restart are notified.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { ServerMetrics } from '@sync-suite/shared/node';
import type { RoomChangeNotifier } from './room-changes.js';
import type { WebhookDelivery } from './delivery.js';
import type { WebhookOutbox } from './outbox/types.js';

export interface NotifierOptions {
  debounceMs: number;
  delivery: WebhookDelivery;
  metrics: ServerMetrics;
  log: FastifyBaseLogger;
  /** true when this instance should send the room's event for this burst */
  claim?: (room: string) => Promise<boolean>;
}

interface Burst {
  updates: number;
  first: number;
  last: number;
}

const MAX_WAIT_FACTOR = 5;

export class WebhookNotifier implements RoomChangeNotifier {
  private readonly dirty = new Map<string, Burst>();
  /** bursts waiting for their Redis claim */
  private readonly claiming = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly opts: NotifierOptions) {}

  changed(room: string, updates: number): void {
    const now = Date.now();
    const burst = this.dirty.get(room);
    if (burst) {
      burst.updates += updates;
      burst.last = now;
    } else {
      this.dirty.set(room, { updates, first: now, last: now });
    }
    this.start();
  }

  deleted(room: string): void {
    this.dirty.delete(room);
    this.opts.delivery.enqueue({ type: 'room.deleted', room, at: Date.now() });
  }

  useOutbox(outbox: WebhookOutbox): void {
    this.opts.delivery.use(outbox);
  }

  async close(): Promise<void> {
    if (this.stopped) return;
    this.tick(Infinity);
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await Promise.allSettled([...this.claiming]);
    await this.opts.delivery.stop();
  }

  /** Emits the bursts that are over (all of them at `now` = Infinity); exposed for tests. */
  tick(now = Date.now()): void {
    const { debounceMs } = this.opts;
    for (const [room, burst] of this.dirty) {
      if (now - burst.last < debounceMs && now - burst.first < MAX_WAIT_FACTOR * debounceMs) continue;
      this.dirty.delete(room);
      this.emit(room, burst);
    }
    if (this.dirty.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  private start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => this.tick(), Math.max(10, Math.min(250, this.opts.debounceMs / 4)));
    this.timer.unref();
  }

  private emit(room: string, burst: Burst): void {
    const event = { type: 'room.changed' as const, room, at: burst.last, updates: burst.updates };
    const claim = this.opts.claim;
    if (!claim) return this.opts.delivery.enqueue(event);
    const claimed = claim(room)
      .then((mine) => {
        if (mine) this.opts.delivery.enqueue(event);
        else this.opts.metrics.webhookDeliveries.inc({ result: 'deduplicated' });
      })
      .catch((err: unknown) => {
        // Redis down: better a duplicate notification than a lost one.
        this.opts.log.warn({ err: err instanceof Error ? err.message : String(err), room }, 'webhook burst claim failed; sending anyway');
        this.opts.delivery.enqueue(event);
      })
      .finally(() => this.claiming.delete(claimed));
    this.claiming.add(claimed);
  }
}
