/**
 * Once a second, turns the relay and signaling counters into per-second rates and keeps
 * the last minute of them for the status page's chart. Reads only metric values: no room
 * names, no contents.
 */
import type { Counter } from 'prom-client';
import type { ServerMetrics } from '@sync-suite/shared/node';

export interface RatePoint {
  /** unix ms */
  t: number;
  relayUpdates: number;
  signalingMessages: number;
}

export class RateSampler {
  private readonly points: RatePoint[] = [];
  private last: { t: number; relayUpdates: number; signalingMessages: number } | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly metrics: ServerMetrics,
    private readonly capacity = 60,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  start(intervalMs = 1000): void {
    if (this.timer) return;
    this.sample().catch(this.onError);
    this.timer = setInterval(() => void this.sample().catch(this.onError), intervalMs);
    // Sampling must never keep the process alive.
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Oldest first. */
  series(): RatePoint[] {
    return [...this.points];
  }

  async sample(now = Date.now()): Promise<void> {
    const current = {
      t: now,
      relayUpdates: await total(this.metrics.relayUpdates),
      signalingMessages: await total(this.metrics.signalingMessages),
    };
    const prev = this.last;
    this.last = current;
    if (!prev || now <= prev.t) return;
    const seconds = (now - prev.t) / 1000;
    this.points.push({
      t: now,
      relayUpdates: round((current.relayUpdates - prev.relayUpdates) / seconds),
      signalingMessages: round((current.signalingMessages - prev.signalingMessages) / seconds),
    });
    if (this.points.length > this.capacity) this.points.shift();
  }
}

/** Sum over every label set of a counter (or gauge). */
export async function total(metric: Pick<Counter, 'get'>): Promise<number> {
  const { values } = await metric.get();
  return values.reduce((sum, v) => sum + v.value, 0);
}

function round(n: number): number {
  return Math.round(Math.max(0, n) * 100) / 100;
}
