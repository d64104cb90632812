/**
 * Conformance of WS /signal with the stock y-webrtc server's wire behaviour, over raw
 * WebSocket frames against the real server on port 0 (auth off).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { scrapeMetrics } from '../../../test/helpers/prometheus.js';
import { serverPerTest } from '../../../test/helpers/server.js';
import { RawClient, metricValue, openRawClient } from './signaling-client.js';

const ROOM = 'test-conversation-protocol';
const OTHER = 'test-conversation-other';

const scope = serverPerTest();
afterEach(() => scope.close());

const open = (path = '/signal') => openRawClient(scope, path);

async function subscribed(topics: string[]): Promise<RawClient> {
  const c = await open();
  c.send({ type: 'subscribe', topics });
  await c.roundTrip();
  return c;
}

describe('WS /signal protocol', () => {
  it('answers ping with a pong text frame', async () => {
    await scope.start();
    const c = await open();
    c.send({ type: 'ping' });
    expect(await c.frame(0)).toEqual({ type: 'pong' });
    expect(c.frames[0]).toBe('{"type":"pong"}');
  });

  it('forwards a publish unchanged to every subscriber, the sender included, with clients set', async () => {
    await scope.start();
    const a = await subscribed([ROOM]);
    const b = await subscribed([ROOM, OTHER]);
    const outsider = await subscribed([OTHER]);
    const publish = { type: 'publish', topic: ROOM, data: { type: 'announce', from: 'peer-a', nested: [1, 'x', null] }, extra: 7 };
    a.send(publish);
    const expected = { ...publish, clients: 2 };
    expect(await a.find(1, (m) => m['type'] === 'publish')).toEqual(expected);
    expect(await b.find(1, (m) => m['type'] === 'publish')).toEqual(expected);
    await outsider.roundTrip();
    expect(outsider.frames.map((f) => JSON.parse(f).type)).toEqual(['pong', 'pong']);
  });

  it('counts messages by type, connections and topics, and exposes them on /metrics', async () => {
    const server = await scope.start();
    const a = await subscribed([ROOM, OTHER]);
    a.send({ type: 'publish', topic: ROOM, data: 1 });
    a.send({ type: 'unsubscribe', topics: [OTHER] });
    await a.roundTrip();
    const text = await scrapeMetrics(`${server.url}/metrics`);
    for (const [type, n] of [['subscribe', 1], ['publish', 1], ['unsubscribe', 1], ['ping', 2]] as const) {
      expect(text.value('sync_signaling_messages_total', { type })).toBe(n);
    }
    expect(text.value('sync_signaling_connections')).toBe(1);
    expect(text.value('sync_signaling_topics')).toBe(1);
  });

  it('forwards the bytes of a publish as sent, with clients added before the closing brace', async () => {
    await scope.start();
    const a = await subscribed([ROOM]);
    const b = await subscribed([ROOM]);
    const text = `{ "type": "publish", "topic": "${ROOM}", "data": {"n": 1.50, "e": "\\n"} }\n`;
    a.send(text);
    await b.find(1, (m) => m['type'] === 'publish');
    expect(b.frames[1]).toBe(`{ "type": "publish", "topic": "${ROOM}", "data": {"n": 1.50, "e": "\\n"} ,"clients":2}`);
  });

  it('delivers a publish from a connection that did not subscribe, as the stock server does', async () => {
    await scope.start();
    const sub = await subscribed([ROOM]);
    const pub = await open();
    pub.send({ type: 'publish', topic: ROOM, data: 'hello' });
    expect(await sub.find(1, (m) => m['type'] === 'publish')).toEqual({ type: 'publish', topic: ROOM, data: 'hello', clients: 1 });
    await pub.roundTrip();
    expect(pub.frames).toEqual(['{"type":"pong"}']);
  });

  it('stops delivering after unsubscribe and forgets the empty topic', async () => {
    const server = await scope.start();
    const a = await subscribed([ROOM]);
    const b = await subscribed([ROOM]);
    expect(await metricValue(server, 'signalingTopics')).toBe(1);
    b.send({ type: 'unsubscribe', topics: [ROOM, 'never-subscribed'] });
    await b.roundTrip();
    a.send({ type: 'publish', topic: ROOM, data: 1 });
    expect(await a.find(1, (m) => m['type'] === 'publish')).toMatchObject({ clients: 1 });
    a.send({ type: 'unsubscribe', topics: [ROOM] });
    await a.roundTrip();
    expect(await metricValue(server, 'signalingTopics')).toBe(0);
    await b.roundTrip();
    expect(b.frames.some((f) => f.includes('"publish"'))).toBe(false);
  });

  it('reads binary frames as JSON text, as the stock server does', async () => {
    await scope.start();
    const c = await open();
    c.send(Buffer.from('{"type":"ping"}'));
    expect(await c.frame(0)).toEqual({ type: 'pong' });
  });

  it('handles messages sent right after the upgrade, before auth completes', async () => {
    await scope.start();
    const a = await subscribed([ROOM]);
    const b = await open();
    // No await between: these arrive while the connection is still being authenticated.
    b.send({ type: 'subscribe', topics: [ROOM] });
    b.send({ type: 'publish', topic: ROOM, data: 'early' });
    expect(await a.find(1, (m) => m['type'] === 'publish')).toEqual({ type: 'publish', topic: ROOM, data: 'early', clients: 2 });
  });

  it('pings every interval and terminates a socket that misses its pong', async () => {
    const server = await scope.start({ SIGNALING_PING_INTERVAL_MS: '100' });
    const live = await subscribed([ROOM]);
    let pings = 0;
    live.ws.on('ping', () => pings++);
    const dead = await RawClient.open(`${server.wsUrl}/signal`, { autoPong: false });
    scope.track(dead);
    dead.send({ type: 'subscribe', topics: [ROOM] });
    const closed = await dead.closedWithin(5000);
    expect(closed.code).toBe(1006);
    // Still open and pinged meanwhile: the well-behaved socket answered every ping.
    await live.roundTrip();
    expect(pings).toBeGreaterThanOrEqual(2);
    expect(await metricValue(server, 'signalingConnections')).toBe(1);
  });

  it('refuses new connections with 1012 while shutting down, and closes open ones with 1012', async () => {
    const server = await scope.start();
    const a = await subscribed([ROOM]);
    server.app.sync.lifecycle.shuttingDown = true;
    const late = await open();
    expect((await late.closedWithin()).code).toBe(1012);
    const closing = server.close();
    expect((await a.closedWithin()).code).toBe(1012);
    await closing;
  });
});
