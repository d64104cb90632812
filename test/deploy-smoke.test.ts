/**
 * Process-level smoke, as CI runs it: the server and TURN processes started with the
 * values of deploy/.env.example (secrets replaced, loopback, free ports). Both answer
 * health and metrics; credentials from the server open an allocation on the TURN server;
 * the status page sees it; SIGTERM stops both with exit code 0.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRoomToken } from '@sync-suite/shared';
import { SPEC_SERVER_METRICS, SPEC_TURN_METRICS } from '@sync-suite/shared/node';
import { SMOKE_SECRETS, startStack, type Stack } from '../deploy/ci/stack.js';
import { StunClient } from '../apps/turn/test/helpers/stun-client.js';
import { scrapeMetrics } from './helpers/prometheus.js';

const root = join(import.meta.dirname, '..');
const dataDir = mkdtempSync(join(tmpdir(), 'sync-smoke-'));
const bearer = { authorization: `Bearer ${SMOKE_SECRETS.METRICS_TOKEN}` };
let stack: Stack | undefined;

beforeAll(async () => {
  stack = await startStack({ root, cwd: root, dataDir, args: (app) => ['--import', 'tsx', `apps/${app}/src/main.ts`] });
});

afterAll(async () => {
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('smoke: server and TURN processes from .env.example', () => {
  it('both answer /healthz, and /metrics with every documented metric', async () => {
    const s = stack as Stack;
    expect(await (await fetch(`${s.serverUrl}/healthz`)).json()).toEqual({ status: 'ok' });
    expect((await fetch(`${s.serverUrl}/readyz`)).status).toBe(200);
    expect((await fetch(`${s.serverUrl}/metrics`)).status).toBe(401);
    const serverMetrics = await scrapeMetrics(`${s.serverUrl}/metrics`, bearer);
    for (const name of SPEC_SERVER_METRICS) expect(serverMetrics.has(name), name).toBe(true);

    const turnBase = s.turnMetricsUrl.replace(/\/metrics$/, '');
    expect(await (await fetch(`${turnBase}/healthz`)).json()).toEqual({ status: 'ok' });
    expect((await fetch(s.turnMetricsUrl)).status).toBe(401);
    const turnMetrics = await scrapeMetrics(s.turnMetricsUrl, bearer);
    for (const name of SPEC_TURN_METRICS) expect(turnMetrics.has(name), name).toBe(true);
  });

  it('TURN credentials from the server open an allocation that the status page reports', async () => {
    const s = stack as Stack;
    const token = await createRoomToken(SMOKE_SECRETS.AUTH_SECRET, { sub: 'smoke', rooms: ['acme-conversation-*'], ttlSeconds: 60 });
    const res = await fetch(`${s.serverUrl}/turn-credentials`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await res.json()) as { iceServers: Array<{ urls: string[]; username?: string; credential?: string }> };
    const turnEntry = body.iceServers.find((e) => e.username);
    expect(turnEntry?.urls).toContain(`turn:127.0.0.1:${s.turnPort}`);

    const client = await StunClient.open(s.turnPort, turnEntry?.username as string, turnEntry?.credential as string);
    try {
      expect((await client.allocate()).code).toBeUndefined();
      const status = (await (await fetch(`${s.serverUrl}/status.json`, { headers: bearer })).json()) as { turn: { allocations: number } };
      expect(status.turn).toMatchObject({ reachable: true, allocations: 1 });
    } finally {
      client.close();
    }
  });

  it('stops both gracefully on SIGTERM (exit code 0)', async () => {
    const codes = await (stack as Stack).stop();
    expect(codes).toEqual({ server: 0, turn: 0 });
    expect((stack as Stack).server.lines.some((l) => l['msg'] === 'stopped')).toBe(true);
  });
});
