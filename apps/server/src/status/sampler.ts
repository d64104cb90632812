/**
 * Once a second, turns the relay, signaling and sealed counters into per-second rates and keeps
 * the last minute of them for the status page's chart, with the commit-time histogram's buckets
 * at each sample so the page can give the p99 of the last minute. Reads only metric values: no
 * room names, no contents.
 */
import type { Counter } from 'prom-client';
import type { ServerMetrics } from '@sync-suite/shared/node';
import { bucketsBetween, readBuckets, type Buckets } from './commit-time.js';

export interface RatePoint {
  /** unix ms */
  t: number;
  relayUpdates: number;
  signalingMessages: number;
  sealedEnvelopes: number;
}

export class RateSampler {
  private readonly points: RatePoint[] = [];
  private last: { t: number; relayUpdates: number; signalingMessages: number; sealedEnvelopes: number } | undefined;
  /** cumulative commit buckets at each of the last `capacity` + 1 samples, oldest first */
  private readonly commits: Buckets[] = [];
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

  /** Commit-time buckets over the last `capacity` samples (a minute by default). */
  async commitWindow(): Promise<Buckets> {
    return bucketsBetween(await readBuckets(this.metrics.relayPersistSeconds), this.commits[0]);
  }

  async sample(now = Date.now()): Promise<void> {
    const current = {
      t: now,
      relayUpdates: await total(this.metrics.relayUpdates),
      signalingMessages: await total(this.metrics.signalingMessages),
      // Presence envelopes are not document changes, as awareness is not counted in relayUpdates.
      sealedEnvelopes: await total(this.metrics.sealedEnvelopes, { kind: 'update' }),
    };
    this.commits.push(await readBuckets(this.metrics.relayPersistSeconds));
    if (this.commits.length > this.capacity + 1) this.commits.shift();
    const prev = this.last;
    this.last = current;
    if (!prev || now <= prev.t) return;
    const seconds = (now - prev.t) / 1000;
    this.points.push({
      t: now,
      relayUpdates: round((current.relayUpdates - prev.relayUpdates) / seconds),
      signalingMessages: round((current.signalingMessages - prev.signalingMessages) / seconds),
      sealedEnvelopes: round((current.sealedEnvelopes - prev.sealedEnvelopes) / seconds),
    });
    if (this.points.length > this.capacity) this.points.shift();
  }
}

/** Sum over every label set of a counter (or gauge), or over those that carry `labels`. */
export async function total(metric: Pick<Counter, 'get'>, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await metric.get();
  const wanted = Object.entries(labels);
  return values.reduce((sum, v) => (wanted.every(([k, want]) => (v.labels as Record<string, unknown>)[k] === want) ? sum + v.value : sum), 0);
}

function round(n: number): number {
  return Math.round(Math.max(0, n) * 100) / 100;
}
