/**
 * The status page's data without a browser: rates from counter deltas, the one-minute
 * ring, and TURN figures parsed from Prometheus text.
 */
import { describe, expect, it } from 'vitest';
import { createServerMetrics } from '@sync-suite/shared/node';
import { RateSampler } from '../../apps/server/src/status/sampler.js';
import { parseTurnMetrics } from '../../apps/server/src/status/turn-probe.js';

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
});
