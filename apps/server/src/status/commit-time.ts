/**
 * Commit time for the status page, from the histogram every storage commit already feeds
 * (sync_relay_persist_seconds: relay flushes and sealed commits). Buckets are kept as cumulative
 * counts keyed by their upper bound (`le`), the way Prometheus exposes them, so that the windows
 * of several instances add up and the p99 of the whole cluster comes from their sum.
 */
import type { Histogram } from 'prom-client';

/** cumulative count per upper bound in seconds ('+Inf' last) */
export type Buckets = Record<string, number>;

/** The histogram's cumulative bucket counts now. */
export async function readBuckets(histogram: Pick<Histogram, 'get'>): Promise<Buckets> {
  const { values } = await histogram.get();
  const out: Buckets = {};
  for (const v of values) {
    const le = (v.labels as Record<string, unknown>)['le'];
    if (le === undefined || !String(v.metricName ?? '').endsWith('_bucket')) continue;
    out[String(le)] = (out[String(le)] ?? 0) + v.value;
  }
  return out;
}

/** Counts between two readings (`older` may be missing: counts since the start). */
export function bucketsBetween(newer: Buckets, older: Buckets | undefined): Buckets {
  const out: Buckets = {};
  for (const [le, n] of Object.entries(newer)) out[le] = Math.max(0, n - (older?.[le] ?? 0));
  return out;
}

export function addBuckets(a: Buckets, b: Buckets): Buckets {
  const out: Buckets = { ...a };
  for (const [le, n] of Object.entries(b)) out[le] = (out[le] ?? 0) + n;
  return out;
}

/** How many observations the buckets hold (the +Inf bucket). */
export function bucketCount(buckets: Buckets): number {
  return buckets['+Inf'] ?? 0;
}

/**
 * The q-quantile in seconds, as Prometheus's histogram_quantile estimates it: linear within the
 * bucket that holds the rank; in the +Inf bucket, the highest finite bound. null without data.
 */
export function quantile(q: number, buckets: Buckets): number | null {
  const bounds = Object.entries(buckets)
    .map(([le, n]) => ({ le: le === '+Inf' ? Infinity : Number(le), n }))
    .filter((b) => !Number.isNaN(b.le))
    .sort((a, b) => a.le - b.le);
  const total = bounds.at(-1)?.n ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevN = 0;
  for (const { le, n } of bounds) {
    if (n >= rank) {
      if (le === Infinity) return prevLe;
      const inBucket = n - prevN;
      return inBucket <= 0 ? le : prevLe + ((le - prevLe) * (rank - prevN)) / inBucket;
    }
    prevLe = le;
    prevN = n;
  }
  return prevLe;
}
