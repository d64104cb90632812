/**
 * The TURN server's /metrics behind METRICS_TOKEN (src/health.ts), as the server's /metrics: with
 * it set, a scrape needs `Authorization: Bearer <METRICS_TOKEN>`; /healthz stays open. Without it
 * /metrics is open, and the endpoint listens on loopback unless TURN_METRICS_HOST says otherwise.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parseEnv, turnConfigSchema } from '@sync-suite/shared/node';
import { turnPerTest } from './helpers/turn.js';

const scope = turnPerTest();
afterEach(() => scope.close());

const TOKEN = 'turn-metrics-token-0123';

async function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers, signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}

describe('TURN /metrics and METRICS_TOKEN', () => {
  it('with METRICS_TOKEN: /metrics is 401 without it or with another, 200 with it; /healthz stays open', async () => {
    const t = await scope.start({ METRICS_TOKEN: TOKEN });
    const port = t.turn.metricsPort;
    const none = await get(port, '/metrics');
    expect(none.status).toBe(401);
    expect(none.body).not.toContain('turn_allocations');
    expect((await get(port, '/metrics', { authorization: `Bearer ${TOKEN}x` })).status).toBe(401);
    expect((await get(port, '/metrics', { authorization: `Bearer ${TOKEN.slice(0, -1)}` })).status).toBe(401);
    expect((await get(port, '/metrics', { authorization: TOKEN })).status).toBe(401);
    const ok = await get(port, '/metrics', { authorization: `Bearer ${TOKEN}` });
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('turn_allocations');
    expect(await get(port, '/healthz')).toEqual({ status: 200, body: '{"status":"ok"}' });
  });

  it('without METRICS_TOKEN: /metrics is open', async () => {
    const t = await scope.start();
    expect((await get(t.turn.metricsPort, '/metrics')).status).toBe(200);
  });

  it('TURN_METRICS_HOST defaults to loopback', () => {
    expect(parseEnv(turnConfigSchema, { TURN_SECRET: 'placeholder-secret-of-at-least-32-bytes' }).TURN_METRICS_HOST).toBe('127.0.0.1');
  });
});
