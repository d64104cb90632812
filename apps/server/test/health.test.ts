import { afterEach, describe, expect, it } from 'vitest';
import { SPEC_SERVER_METRICS } from '@sync-suite/shared/node';
import { scrapeMetrics } from '../../../test/helpers/prometheus.js';
import { serverPerTest } from '../../../test/helpers/server.js';

const scope = serverPerTest();
afterEach(() => scope.close());

describe('health, readiness and metrics', () => {
  it('answers /healthz and /readyz', async () => {
    const server = await scope.start();
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready' });
  });

  it('reports 503 naming the failing check', async () => {
    const server = await scope.start();
    server.app.sync.readiness.register('storage', () => {
      throw new Error('database down');
    });
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(503);
    // a fixed word: the error's text goes to the log (the endpoint needs no credentials)
    expect(await ready.json()).toMatchObject({ checks: { storage: 'failed' } });
    expect(server.logs.find((l) => l['msg'] === 'readiness check failed')).toMatchObject({ check: 'storage', err: 'database down' });
  });

  it('exposes every documented metric and the default process metrics', async () => {
    const server = await scope.start();
    const text = await scrapeMetrics(`${server.url}/metrics`);
    for (const name of SPEC_SERVER_METRICS) expect(text.has(name), name).toBe(true);
    expect(text.value('process_cpu_user_seconds_total')).toBeGreaterThan(0);
  });

  it('guards /metrics with METRICS_TOKEN', async () => {
    const server = await scope.start({ METRICS_TOKEN: 'scrape-me' });
    expect((await fetch(`${server.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    const ok = await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer scrape-me' } });
    expect(ok.status).toBe(200);
  });

  it('never logs tokens from query strings', async () => {
    const server = await scope.start();
    await fetch(`${server.url}/metrics?token=super-secret-value`);
    const text = JSON.stringify(server.logs);
    expect(text).toContain('/metrics?token=[REDACTED]');
    expect(text).not.toContain('super-secret-value');
  });

  it('does not log probes (/healthz, /readyz) at info: they come every few seconds', async () => {
    const server = await scope.start();
    await fetch(`${server.url}/readyz`);
    await fetch(`${server.url}/healthz`);
    await fetch(`${server.url}/metrics`);
    const urls = server.logs.map((l) => (l['req'] as { url?: string } | undefined)?.url).filter(Boolean);
    expect(urls).toContain('/metrics');
    expect(urls).not.toContain('/readyz');
    expect(urls).not.toContain('/healthz');
  });

  it('never logs tokens from unknown routes or authorization headers', async () => {
    const server = await scope.start({ LOG_LEVEL: 'trace' });
    const missing = await fetch(`${server.url}/nowhere?token=super-secret-value`, { headers: { authorization: 'Bearer other-secret-value' } });
    expect(missing.status).toBe(404);
    const text = JSON.stringify(server.logs);
    expect(text).toContain('/nowhere?token=[REDACTED]');
    expect(text).not.toContain('super-secret-value');
    expect(text).not.toContain('other-secret-value');
  });

  it('counts refused metrics scrapes', async () => {
    const server = await scope.start({ METRICS_TOKEN: 'scrape-me' });
    expect((await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const text = await scrapeMetrics(`${server.url}/metrics`, { authorization: 'Bearer scrape-me' });
    expect(text.value('sync_auth_failures_total{endpoint="metrics",reason="bad_metrics_token"}')).toBe(1);
  });

  it('answers /metrics in the Prometheus text format', async () => {
    const server = await scope.start();
    const res = await fetch(`${server.url}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  });
});
