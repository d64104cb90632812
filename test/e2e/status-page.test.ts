/**
 * GET /status in headless Chromium: a real server with a stock y-websocket client editing,
 * a raw signaling peer, and a real TURN server holding one allocation. The page must show
 * those figures, chart update rates on a labelled scale, commit p99 and storage size, refresh
 * itself, reveal no room name or token, and stay behind METRICS_TOKEN. Saves test-results/status-page.png.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
// The root ws is 6.x (pulled in by the stock servers): its default export is the client.
import WebSocket from 'ws';
import * as Y from 'yjs';
import { createTurnCredentials } from '@sync-suite/shared/node';
import { startServer, TEST_SECRET, testToken, type TestServer } from '../helpers/server.js';
import { scrapeMetrics } from '../helpers/prometheus.js';
import { launchBrowser, type TestBrowser } from '../helpers/browser.js';
import { stockProvider, synced } from '../fixtures/relay-clients.js';
import { startTurn, SECRET as TURN_SECRET, type TestTurn } from '../../apps/turn/test/helpers/turn.js';
import { StunClient } from '../../apps/turn/test/helpers/stun-client.js';

const ROOM = 'acme-conversation-status-secret-room-7f3c';
const METRICS_TOKEN = 'status-page-token-for-tests';
const cleanups: Array<() => unknown> = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(): Promise<{ server: TestServer; turn: TestTurn }> {
  const turn = await startTurn({ TURN_ALLOW_LOOPBACK_PEERS: 'true' });
  cleanups.push(() => turn.close());
  const server = await startServer({
    AUTH_SECRET: TEST_SECRET,
    METRICS_TOKEN,
    TURN_SECRET,
    TURN_METRICS_URL: `http://127.0.0.1:${turn.turn.metricsPort}/metrics`,
  });
  cleanups.push(() => server.close());
  return { server, turn };
}

/** A stock y-websocket client typing every 100 ms, so updates/s stays above zero. */
async function editingClient(server: TestServer, token: string): Promise<void> {
  const doc = new Y.Doc();
  const provider = stockProvider(3, server.wsUrl, ROOM, doc, { token });
  cleanups.push(() => (provider.destroy(), doc.destroy()));
  await synced(provider);
  const timer = setInterval(() => doc.getText('text').insert(0, 'x'), 100);
  cleanups.push(() => clearInterval(timer));
}

async function signalingPeer(server: TestServer, token: string): Promise<void> {
  const ws = new WebSocket(`${server.wsUrl}/signal?token=${token}`);
  cleanups.push(() => ws.close());
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  ws.send(JSON.stringify({ type: 'subscribe', topics: [ROOM] }));
  ws.send(JSON.stringify({ type: 'ping' }));
  // The pong comes after the subscribe was handled.
  await new Promise((resolve) => ws.on('message', (d) => String(d).includes('pong') && resolve(undefined)));
}

async function turnAllocation(turn: TestTurn): Promise<void> {
  const { username, credential } = createTurnCredentials(TURN_SECRET, 'status-device', 600);
  const client = await StunClient.open(turn.turn.port, username, credential);
  cleanups.push(() => client.close());
  const res = await client.allocate();
  expect(res.code).toBeUndefined();
}

describe('GET /status in Chromium', () => {
  it('shows live rooms, peers, relay connections, TURN allocations and an updates chart; no secrets', async () => {
    const { server, turn } = await setup();
    const token = await testToken('status-user', [ROOM], { ttlSeconds: 300 });
    await editingClient(server, token);
    await signalingPeer(server, token);
    await turnAllocation(turn);

    const browser: TestBrowser = await launchBrowser();
    cleanups.push(() => browser.close());
    const page = await browser.newPage();
    const response = await page.goto(`${server.url}/status?token=${METRICS_TOKEN}`);
    expect(response?.status()).toBe(200);

    const text = (id: string) => page.locator(`#${id}`).textContent();
    await page.waitForFunction(
      () => {
        const t = (id: string) => document.getElementById(id)?.textContent ?? '';
        const points = Number(document.getElementById('chart')?.dataset['points'] ?? 0);
        return t('relay-connections') === '1' && t('signaling-peers') === '1' && t('turn-allocations') === '1' && points >= 3 && Number(t('updates-rate')) > 0;
      },
      undefined,
      { timeout: 20_000 },
    );
    expect(await text('relay-rooms')).toBe('1');
    expect(await text('signaling-rooms')).toBe('1');
    expect(await text('state')).toBe('ready');
    expect(await page.locator('#relay-line').getAttribute('points')).toMatch(/^[\d.]+,[\d.]+( [\d.]+,[\d.]+){2,}/);
    // The chart's scale: a round maximum at the top of the value axis, its half in the middle.
    const max = Number(await page.locator('#chart').getAttribute('data-max'));
    expect(max).toBeGreaterThanOrEqual(10);
    expect(await text('y-top')).toBe(max.toLocaleString('en-US'));
    expect(await text('y-mid')).toBe((max / 2).toLocaleString('en-US'));
    expect(await text('chart-max')).toBe(`${max.toLocaleString('en-US')}/s`);
    // The client's edits are committed: a p99 and a storage size; one instance listed.
    expect(await text('commit-p99')).toMatch(/^[\d.]+ ms$/);
    expect(await text('storage-size')).toMatch(/^[\d.]+ (B|kB|MB)$/);
    expect(await text('instance-count')).toBe('1');
    expect(await page.locator('#instances tr').count()).toBe(1);
    expect(browser.logs.filter((l) => /error/i.test(l)).join('\n')).toBe('');

    mkdirSync(join(import.meta.dirname, '../../test-results'), { recursive: true });
    await page.screenshot({ path: join(import.meta.dirname, '../../test-results/status-page.png'), fullPage: true });

    // Auto-refresh: the "updated" line changes without a reload.
    const before = await text('updated');
    await page.waitForFunction((prev) => document.getElementById('updated')?.textContent !== prev, before, { timeout: 10_000 });

    const json = await (await fetch(`${server.url}/status.json`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    for (const secret of [ROOM, 'status-secret-room', token, TEST_SECRET, TURN_SECRET, 'status-device', 'status-user']) {
      expect(await page.content()).not.toContain(secret);
      expect(json).not.toContain(secret);
    }
  });

  it('is behind METRICS_TOKEN (bearer or ?token=), and counts refusals', async () => {
    const { server } = await setup();
    for (const path of ['/status', '/status.json']) {
      expect((await fetch(`${server.url}${path}`)).status).toBe(401);
      expect((await fetch(`${server.url}${path}?token=wrong`)).status).toBe(401);
      expect((await fetch(`${server.url}${path}`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
      expect((await fetch(`${server.url}${path}?token=${METRICS_TOKEN}`)).status).toBe(200);
      expect((await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).status).toBe(200);
    }
    const metrics = await scrapeMetrics(`${server.url}/metrics`, { authorization: `Bearer ${METRICS_TOKEN}` });
    expect(metrics.value('sync_auth_failures_total{endpoint="status",reason="bad_metrics_token"}')).toBe(6);
    expect(JSON.stringify(server.logs)).not.toContain(METRICS_TOKEN);
  });

  it('is open without METRICS_TOKEN and says when TURN is not configured or unreachable', async () => {
    const open = await startServer({});
    cleanups.push(() => open.close());
    const snapshot = (await (await fetch(`${open.url}/status.json`)).json()) as { turn: unknown; ready: boolean };
    expect(snapshot).toMatchObject({ ready: true, turn: { configured: false } });

    const unreachable = await startServer({ TURN_METRICS_URL: 'http://127.0.0.1:9/metrics' });
    cleanups.push(() => unreachable.close());
    const s2 = (await (await fetch(`${unreachable.url}/status.json`)).json()) as { turn: unknown };
    expect(s2.turn).toEqual({ reachable: false });
  });
});
