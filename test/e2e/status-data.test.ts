/**
 * The status page's data without a browser: rates from counter deltas, the one-minute
 * ring, TURN figures parsed from Prometheus text, p99 from histogram buckets, and cluster
 * totals from several instances' figures.
 */
import { describe, expect, it } from 'vitest';
import { createServerMetrics } from '@sync-suite/shared/node';
import { RateSampler } from '../../apps/server/src/status/sampler.js';
import { parseTurnMetrics } from '../../apps/server/src/status/turn-probe.js';
import { bucketsBetween, quantile, readBuckets } from '../../apps/server/src/status/commit-time.js';
import { clusterTotals, type Figures } from '../../apps/server/src/status/instance.js';
import { parseFigures } from '../../apps/server/src/status/cluster.js';

describe('status data', () => {
  it('turns counter deltas into per-second rates and keeps only the last `capacity` points', async () => {
    const metrics = createServerMetrics();
    const sampler = new RateSampler(metrics, 3);
    await sampler.sample(10_000);
    expect(sampler.series()).toEqual([]);
    metrics.relayUpdates.inc(30);
    metrics.signalingMessages.inc({ type: 'publish' }, 4);
    metrics.signalingMessages.inc({ type: 'subscribe' }, 2);
    await sampler.sample(12_000);
    expect(sampler.series()).toEqual([{ t: 12_000, relayUpdates: 15, signalingMessages: 3, sealedEnvelopes: 0 }]);
    for (const t of [13_000, 14_000, 15_000]) await sampler.sample(t);
    expect(sampler.series().map((p) => p.t)).toEqual([13_000, 14_000, 15_000]);
    expect(sampler.series().at(-1)).toMatchObject({ relayUpdates: 0, signalingMessages: 0 });
  });

  it('parses TURN allocations and relayed bytes, summing labelled series', () => {
    const text = [
      '# HELP turn_allocations Live TURN allocations',
      '# TYPE turn_allocations gauge',
      'turn_allocations 3',
      'turn_allocations_total 17',
      'turn_relayed_bytes_total{direction="to_peer"} 1000',
      'turn_relayed_bytes_total{direction="to_client"} 234',
      'turn_auth_failures_total{reason="expired"} 9',
    ].join('\n');
    expect(parseTurnMetrics(text)).toEqual({ allocations: 3, allocationsTotal: 17, relayedBytes: 1234 });
    expect(parseTurnMetrics('')).toEqual({ allocations: undefined, allocationsTotal: undefined, relayedBytes: undefined });
  });

  it('p99 from histogram buckets as Prometheus estimates it, over a window of two readings', async () => {
    const metrics = createServerMetrics();
    const h = metrics.relayPersistSeconds;
    for (let i = 0; i < 50; i++) h.observe(0.002);
    const before = await readBuckets(h);
    expect(quantile(0.99, before)).toBeGreaterThan(0.001);
    expect(quantile(0.99, before)).toBeLessThanOrEqual(0.0025);
    // 100 slow commits after the first reading: the window holds only them.
    for (let i = 0; i < 100; i++) h.observe(0.3);
    const window = bucketsBetween(await readBuckets(h), before);
    expect(window['+Inf']).toBe(100);
    // rank 99 of 100, all in (0.25, 0.5]: 0.25 + 0.25 * 99/100
    expect(quantile(0.99, window)).toBeCloseTo(0.4975, 6);
    expect(quantile(0.99, bucketsBetween(before, before))).toBeNull();
    // Beyond the last finite bound, the highest finite bound.
    h.observe(60);
    expect(quantile(1, bucketsBetween(await readBuckets(h), before))).toBe(5);
  });

  it('cluster totals: sums, a shared database and its webhook outbox once, p99 from the summed buckets, reasons merged', () => {
    const figures = (n: number, buckets: Record<string, number>, shared: boolean): Figures => ({
      endpoints: { signal: { rooms: n, connections: 2 * n }, relay: { rooms: n, connections: 3 * n }, sealed: { rooms: 0, connections: n } },
      rates: { relayUpdates: n, signalingMessages: 0.5, sealedEnvelopes: 0 },
      commit: { count: buckets['+Inf'] ?? 0, p99Ms: null, buckets },
      storage: { engine: shared ? 'postgres' : 'sqlite', bytes: 1000 * n, shared },
      refusals: { 'auth:expired': n },
      refusalsTotal: n,
      errors: n === 2 ? { redis: 1 } : {},
      errorsTotal: n === 2 ? 1 : 0,
      webhookBacklog: n,
    });
    const fast = { '0.001': 0, '0.0025': 99, '0.25': 99, '0.5': 99, '+Inf': 99 };
    const slow = { '0.001': 0, '0.0025': 0, '0.25': 0, '0.5': 1, '+Inf': 1 };
    const t = clusterTotals([figures(1, fast, true), figures(2, slow, true)]);
    expect(t).toMatchObject({
      instances: 2,
      endpoints: { signal: { rooms: 3, connections: 6 }, relay: { rooms: 3, connections: 9 }, sealed: { rooms: 0, connections: 3 } },
      rates: { relayUpdates: 3, signalingMessages: 1 },
      commit: { count: 100 },
      storage: { engine: 'postgres', bytes: 2000 },
      refusals: { 'auth:expired': 3 },
      refusalsTotal: 3,
      errors: { redis: 1 },
      errorsTotal: 1,
      webhookBacklog: 2, // the outbox is in the shared database: every instance sees all of it
    });
    // rank 99 of 100 falls in the fast bucket.
    expect(t.commit.p99Ms).toBeLessThanOrEqual(2.5);
    expect(clusterTotals([figures(1, fast, false), figures(2, slow, false)]).storage.bytes).toBe(3000);
  });

  it('another instance\'s figures are taken only with the expected shape', () => {
    expect(parseFigures('not json')).toBeNull();
    expect(parseFigures('{"id":"x","at":1}')).toBeNull();
    expect(parseFigures(JSON.stringify({ id: 'x', at: 1, endpoints: { signal: { rooms: 1, connections: 'many' } } }))).toBeNull();
  });
});
