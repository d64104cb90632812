/**
 * GET /status.json and /status on one real server (SQLite on disk): rooms and connections per
 * endpoint match the stock clients connected (y-websocket on /relay, y-webrtc's signaling on
 * /signal) and a raw /sealed client; after writes the commit p99 is set and the storage size
 * grows; refusals are listed by reason; the page carries every tile.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { WebrtcProvider } from 'y-webrtc';
import { startServer, type TestServer } from '../../../test/helpers/server.js';
import { stockClient, synced, type StockClient } from '../../../test/fixtures/relay-clients.js';
import { RawSealed } from '../../../test/fixtures/sealed-raw.js';
import type { StatusSnapshot } from '../src/status/snapshot.js';
import { RawClient as SignalClient } from './signaling-client.js';

// y-webrtc's signaling opens a global WebSocket, which Node 20 lacks: its own ws (8.x) stands in.
const requireFromYWebrtc = createRequire(resolve('node_modules/y-webrtc/package.json'));
(globalThis as { WebSocket?: unknown }).WebSocket ??= requireFromYWebrtc('ws').WebSocket;

const METRICS_TOKEN = 'status-json-token-for-tests';
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function sqliteServer(): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'sync-status-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const server = await startServer({ STORAGE: 'sqlite', DATA_DIR: dir, METRICS_TOKEN, PERSIST_FLUSH_MS: '20' });
  cleanups.push(() => server.close());
  return server;
}

export async function status(server: TestServer): Promise<StatusSnapshot> {
  const res = await fetch(`${server.url}/status.json`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as StatusSnapshot;
}

/** Polls status.json until `check` holds; fails with the last snapshot after `ms`. */
export async function statusUntil(server: TestServer, check: (s: StatusSnapshot) => boolean, what: string, ms = 15_000): Promise<StatusSnapshot> {
  const end = Date.now() + ms;
  for (;;) {
    const s = await status(server);
    if (check(s)) return s;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last status: ${JSON.stringify(s.totals)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function relayClient(server: TestServer, room: string): StockClient {
  const c = stockClient(3, server.wsUrl, room);
  cleanups.push(() => c.destroy());
  return c;
}

function webrtcPeer(server: TestServer, room: string): WebrtcProvider {
  const doc = new Y.Doc();
  // No peerOpts: alone in its room, a provider never opens a WebRTC connection; it only signals.
  const provider = new WebrtcProvider(room, doc, { signaling: [`${server.wsUrl}/signal`] });
  cleanups.push(() => (provider.destroy(), doc.destroy()));
  return provider;
}

describe('status.json on one instance', () => {
  it('rooms and connections per endpoint match the clients connected, then follow them as they leave', async () => {
    const server = await sqliteServer();
    const a1 = relayClient(server, 'acme-conversation-status-a');
    const a2 = relayClient(server, 'acme-conversation-status-a');
    const b1 = relayClient(server, 'acme-conversation-status-b');
    await Promise.all([a1, a2, b1].map((c) => synced(c.p)));
    // Two stock providers on one signaling URL share one socket: two topics, one connection.
    webrtcPeer(server, 'acme-conversation-status-peer-1');
    webrtcPeer(server, 'acme-conversation-status-peer-2');
    const sealed = await RawSealed.connect(server.wsUrl, '/sealed/acme-conversation-status-sealed');
    cleanups.push(() => sealed.ws.close());
    sealed.hello(0);
    await sealed.next('caught-up');

    const s = await statusUntil(
      server,
      (x) => x.totals.endpoints.signal.rooms === 2 && x.totals.endpoints.relay.connections === 3,
      'every client counted',
    );
    expect(s.totals.endpoints).toEqual({
      relay: { rooms: 2, connections: 3 },
      signal: { rooms: 2, connections: 1 },
      sealed: { rooms: 1, connections: 1 },
    });
    expect(s.complete).toBe(true);
    expect(s.instances).toHaveLength(1);
    expect(s.instances[0]).toMatchObject({ id: s.instance, pid: process.pid, endpoints: s.totals.endpoints });
    expect(s.totals.instances).toBe(1);

    b1.destroy();
    const after = await statusUntil(server, (x) => x.totals.endpoints.relay.connections === 2, 'a relay client gone');
    expect(after.totals.endpoints.relay.connections).toBe(2);
  });

  it('after writes: a commit p99 of the last minute, and a storage size that grows', async () => {
    const server = await sqliteServer();
    const empty = await status(server);
    expect(empty.totals.commit).toMatchObject({ count: 0, p99Ms: null });
    expect(empty.totals.storage).toMatchObject({ engine: 'sqlite', shared: false });

    const c = relayClient(server, 'acme-conversation-status-writes');
    await synced(c.p);
    c.doc.getText('text').insert(0, 'first words');
    const written = await statusUntil(server, (x) => x.totals.commit.count > 0 && (x.totals.storage.bytes ?? 0) > 0, 'a commit and a size');
    expect(written.totals.commit.p99Ms).toBeGreaterThan(0);
    expect(written.instances[0]?.commit.p99Ms).toBe(written.totals.commit.p99Ms);
    const before = written.totals.storage.bytes as number;

    // 256 kB of text, in 64 updates: the database must grow by at least that much.
    for (let i = 0; i < 64; i++) c.doc.getText('text').insert(0, String(i % 10).repeat(4096));
    const grown = await statusUntil(server, (x) => (x.totals.storage.bytes ?? 0) >= before + 256 * 1024, 'the storage size to grow', 20_000);
    expect(grown.totals.commit.count).toBeGreaterThan(written.totals.commit.count);
  });

  it('memory engine: the storage size counts the bytes held for /relay and /sealed rooms', async () => {
    const server = await startServer({ METRICS_TOKEN, PERSIST_FLUSH_MS: '20' });
    cleanups.push(() => server.close());
    const before = (await status(server)).totals.storage;
    expect(before).toEqual({ engine: 'memory', bytes: 0, shared: false });
    const sealed = await RawSealed.connect(server.wsUrl, '/sealed/acme-conversation-status-sealed-bytes');
    cleanups.push(() => sealed.ws.close());
    sealed.hello(0);
    await sealed.next('caught-up');
    sealed.update(1, new Uint8Array(40_000).fill(7));
    await sealed.next('ack');
    await statusUntil(server, (x) => (x.totals.storage.bytes ?? 0) >= 40_000, 'the sealed bytes counted');
  });

  it('lists refusals by reason, and the page has a tile for each figure', async () => {
    const server = await startServer({ AUTH_SECRET: 'a-secret-that-is-at-least-32-bytes-long!!', METRICS_TOKEN });
    cleanups.push(() => server.close());
    const refused = await SignalClient.open(`${server.wsUrl}/signal?token=not-a-token`);
    cleanups.push(() => refused.close());
    await refused.closed;
    const s = await statusUntil(server, (x) => x.totals.refusalsTotal > 0, 'a refusal');
    expect(Object.keys(s.totals.refusals).some((k) => k.startsWith('auth:'))).toBe(true);
    expect(s.totals.refusalsTotal).toBe(Object.values(s.totals.refusals).reduce((a, b) => a + b, 0));
    expect(s.totals.errorsTotal).toBe(0);
    expect(s.turn).toEqual({ configured: false });

    const html = await (await fetch(`${server.url}/status?token=${METRICS_TOKEN}`)).text();
    for (const id of ['relay-rooms', 'relay-connections', 'signaling-rooms', 'signaling-peers', 'sealed-rooms', 'sealed-connections', 'updates-rate', 'commit-p99', 'storage-size', 'refusals', 'errors', 'webhook-backlog', 'turn-allocations', 'reasons', 'instances', 'y-top', 'y-mid']) {
      expect(html).toContain(`id="${id}"`);
    }
  });
});

describe('status.json without METRICS_TOKEN', () => {
  it('is open, so it lists instances without their host name or pid; with METRICS_TOKEN a caller that gives it sees them', async () => {
    const open = await startServer({ STORAGE: 'memory' });
    cleanups.push(() => open.close());
    const res = await fetch(`${open.url}/status.json`);
    expect(res.status).toBe(200);
    const text = await res.text();
    const s = JSON.parse(text) as StatusSnapshot;
    expect(s.instances).toHaveLength(1);
    expect(Object.keys(s.instances[0] ?? {})).not.toContain('host');
    expect(Object.keys(s.instances[0] ?? {})).not.toContain('pid');
    expect(text).not.toContain(`"${hostname()}"`);

    const guarded = await startServer({ STORAGE: 'memory', METRICS_TOKEN });
    cleanups.push(() => guarded.close());
    expect((await status(guarded)).instances[0]).toMatchObject({ host: hostname(), pid: process.pid });
  });
});
