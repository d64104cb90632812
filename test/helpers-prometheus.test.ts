/** test/helpers/prometheus.ts, the one Prometheus-text reader of the tests: sums, label matching, and a throw for a metric not exposed. */
import { describe, expect, it } from 'vitest';
import { Registry, Counter, Histogram } from 'prom-client';
import { parsePrometheus } from './helpers/prometheus.js';

async function exposition(): Promise<string> {
  const registry = new Registry();
  const c = new Counter({ name: 'x_requests_total', help: 'h', labelNames: ['method', 'code'], registers: [registry] });
  new Counter({ name: 'x_unused_total', help: 'h', labelNames: ['reason'], registers: [registry] });
  const h = new Histogram({ name: 'x_seconds', help: 'h', buckets: [1], registers: [registry] });
  c.inc({ method: 'get', code: '200' }, 3);
  c.inc({ method: 'get', code: '500' });
  c.inc({ method: 'put', code: '200' }, 2);
  h.observe(0.5);
  return registry.metrics();
}

describe('prometheus text helper', () => {
  it('sums every label set, or those that include the given labels', async () => {
    const text = parsePrometheus(await exposition());
    expect(text.value('x_requests_total')).toBe(6);
    expect(text.value('x_requests_total{method="get"}')).toBe(4);
    expect(text.value('x_requests_total', { method: 'get', code: '500' })).toBe(1);
    expect(text.value('x_seconds_count')).toBe(1);
    expect(text.types.get('x_seconds')).toBe('histogram');
  });

  it('reads a declared metric without samples as 0, and throws for one not exposed unless given a value for that', async () => {
    const text = parsePrometheus(await exposition());
    expect(text.value('x_unused_total{reason="a"}')).toBe(0);
    expect(text.value('x_requests_total{method="delete"}')).toBe(0);
    expect(() => text.value('x_missing_total')).toThrow(/x_missing_total is not exposed/);
    expect(text.value('x_missing_total', {}, { absent: 0 })).toBe(0);
  });
});
