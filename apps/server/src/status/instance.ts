/**
 * One instance's figures for the status page, read from its metrics (the gauges the endpoints
 * keep, the counters they bump), the sampler and the storage size, and the cluster totals made by
 * adding several instances' figures. Counts only: no room names, tokens or contents. Each
 * instance's host name and pid travel between instances (over Redis) but /status.json shows
 * them only to a caller with METRICS_TOKEN (snapshot.ts); no network addresses at all.
 */
import { hostname } from 'node:os';
import type { Counter } from 'prom-client';
import type { ServerMetrics } from '@sync-suite/shared/node';
import { addBuckets, bucketCount, quantile, type Buckets } from './commit-time.js';
import { total, type RateSampler } from './sampler.js';
import type { StorageFigure, StorageSize } from './storage-size.js';

export interface EndpointFigures {
  rooms: number;
  connections: number;
}

export interface Endpoints {
  /** rooms: topics with a subscriber; connections: WebRTC peers */
  signal: EndpointFigures;
  relay: EndpointFigures;
  sealed: EndpointFigures;
}

export interface Rates {
  relayUpdates: number;
  signalingMessages: number;
  sealedEnvelopes: number;
}

export interface CommitFigures {
  /** storage commits (relay flushes, sealed commits) in the last minute */
  count: number;
  /** their 99th percentile in milliseconds, null when there were none */
  p99Ms: number | null;
  /** cumulative counts per upper bound in seconds, so instances add up */
  buckets: Buckets;
}

/** What every instance publishes and what the cluster totals add up. */
export interface Figures {
  endpoints: Endpoints;
  /** per second, over the last sampled second */
  rates: Rates;
  commit: CommitFigures;
  storage: StorageFigure;
  /** refused or closed for cause since start, by `kind:reason` */
  refusals: Record<string, number>;
  refusalsTotal: number;
  /** server-side failures since start, by `kind:what` */
  errors: Record<string, number>;
  errorsTotal: number;
  webhookBacklog: number;
}

export interface InstanceFigures extends Figures {
  id: string;
  host: string;
  pid: number;
  uptimeSeconds: number;
  /** unix ms when these figures were read */
  at: number;
}

export interface ClusterTotals extends Figures {
  instances: number;
}

/** Keeps what one instance publishes small whatever its counters hold (reasons are code-defined, but still). */
export const MAX_REASONS = 64;

export class InstanceReader {
  readonly host = hostname();

  constructor(
    readonly id: string,
    private readonly metrics: ServerMetrics,
    private readonly sampler: RateSampler,
    private readonly storage: StorageSize,
  ) {}

  async read(now = Date.now()): Promise<InstanceFigures> {
    const m = this.metrics;
    const last = this.sampler.series().at(-1);
    const buckets = await this.sampler.commitWindow();
    const refusals = byReason([
      ['auth', m.authFailures, 'reason'],
      ['rejected', m.rejectedMessages, 'reason'],
      ['quota', m.quotaRefusals, 'quota'],
      ['token', m.tokenClosures, 'reason'],
      ['client', m.clientErrors, 'reason'],
    ]);
    const errors = byReason([
      ['storage', m.storageErrors, 'op'],
      ['redis', m.redisErrors, undefined],
      ['quarantined', m.quarantinedUpdates, 'source'],
      ['webhook', m.webhookDeliveries, 'result', (r) => r === 'gave_up' || r === 'dropped'],
    ]);
    const [refusalMap, errorMap] = [await refusals, await errors];
    return {
      id: this.id,
      host: this.host,
      pid: process.pid,
      uptimeSeconds: Math.round(process.uptime()),
      at: now,
      endpoints: {
        signal: { rooms: await total(m.signalingTopics), connections: await total(m.signalingConnections) },
        relay: { rooms: await total(m.relayRooms), connections: await total(m.relayConnections) },
        sealed: { rooms: await total(m.sealedRooms), connections: await total(m.sealedConnections) },
      },
      rates: {
        relayUpdates: last?.relayUpdates ?? 0,
        signalingMessages: last?.signalingMessages ?? 0,
        sealedEnvelopes: last?.sealedEnvelopes ?? 0,
      },
      commit: commitFigures(buckets),
      storage: await this.storage.read(now),
      refusals: refusalMap,
      refusalsTotal: sum(refusalMap),
      errors: errorMap,
      errorsTotal: sum(errorMap),
      webhookBacklog: await total(m.webhookBacklog),
    };
  }
}

export function commitFigures(buckets: Buckets): CommitFigures {
  const p99 = quantile(0.99, buckets);
  return { count: bucketCount(buckets), p99Ms: p99 === null ? null : Math.round(p99 * 1000 * 100) / 100, buckets };
}

/** The cluster's figures: sums, except a shared database counted once and p99 from the summed buckets. */
export function clusterTotals(instances: readonly Figures[]): ClusterTotals {
  const endpoint = (k: keyof Endpoints): EndpointFigures => ({
    rooms: sumOf(instances, (i) => i.endpoints[k].rooms),
    connections: sumOf(instances, (i) => i.endpoints[k].connections),
  });
  const first = instances[0]?.storage;
  const sizes = instances.map((i) => i.storage.bytes).filter((b): b is number => b !== null);
  const storage: StorageFigure = {
    engine: first?.engine ?? 'unknown',
    shared: first?.shared ?? false,
    bytes: sizes.length === 0 ? null : first?.shared ? Math.max(...sizes) : sizes.reduce((a, b) => a + b, 0),
  };
  const refusals = mergeCounts(instances.map((i) => i.refusals));
  const errors = mergeCounts(instances.map((i) => i.errors));
  return {
    instances: instances.length,
    endpoints: { signal: endpoint('signal'), relay: endpoint('relay'), sealed: endpoint('sealed') },
    rates: {
      relayUpdates: round2(sumOf(instances, (i) => i.rates.relayUpdates)),
      signalingMessages: round2(sumOf(instances, (i) => i.rates.signalingMessages)),
      sealedEnvelopes: round2(sumOf(instances, (i) => i.rates.sealedEnvelopes)),
    },
    commit: commitFigures(instances.reduce<Buckets>((acc, i) => addBuckets(acc, i.commit.buckets), {})),
    storage,
    refusals,
    refusalsTotal: sum(refusals),
    errors,
    errorsTotal: sum(errors),
    // On a shared database the outbox is shared too (webhooks/outbox/postgres.ts): every instance sees all of it.
    webhookBacklog: storage.shared ? Math.max(0, ...instances.map((i) => i.webhookBacklog)) : sumOf(instances, (i) => i.webhookBacklog),
  };
}

type Source = [kind: string, metric: Pick<Counter, 'get'>, label: string | undefined, keep?: (value: string) => boolean];

/** Non-zero counts keyed `kind:reason` (or `kind` for an unlabelled counter), the largest MAX_REASONS. */
async function byReason(sources: Source[]): Promise<Record<string, number>> {
  const counts = new Map<string, number>();
  for (const [kind, metric, label, keep] of sources) {
    const { values } = await metric.get();
    for (const v of values) {
      if (v.value <= 0) continue;
      const value = label ? String((v.labels as Record<string, unknown>)[label] ?? 'unknown') : undefined;
      if (value !== undefined && keep && !keep(value)) continue;
      const key = value === undefined ? kind : `${kind}:${value}`;
      counts.set(key, (counts.get(key) ?? 0) + v.value);
    }
  }
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]).slice(0, MAX_REASONS));
}

function mergeCounts(maps: ReadonlyArray<Record<string, number>>): Record<string, number> {
  const out = new Map<string, number>();
  for (const m of maps) for (const [k, n] of Object.entries(m)) out.set(k, (out.get(k) ?? 0) + n);
  return Object.fromEntries([...out].sort((a, b) => b[1] - a[1]));
}

function sum(m: Record<string, number>): number {
  return Object.values(m).reduce((a, b) => a + b, 0);
}

function sumOf<T>(items: readonly T[], f: (item: T) => number): number {
  return items.reduce((n, item) => n + f(item), 0);
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}
