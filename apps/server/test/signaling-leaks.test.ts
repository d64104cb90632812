/** Bookkeeping does not leak: every way a connection ends removes it from every topic. */
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { scrapeMetrics } from '../../../test/helpers/prometheus.js';
import { serverPerTest, type TestServer } from '../../../test/helpers/server.js';
import { RawClient, metricValue } from './signaling-client.js';

const scope = serverPerTest();
afterEach(() => scope.close());

/** Resolves when the server has processed the close of every socket it still holds. */
async function serverSocketsClosed(s: TestServer, except: ReadonlySet<unknown> = new Set()): Promise<void> {
  await Promise.all([...s.app.sync.admission.sockets].filter((ws) => !except.has(ws)).map((ws) => once(ws, 'close')));
}

/** One connect/subscribe/close cycle; `mode` varies how the connection ends. */
async function cycle(s: TestServer, i: number): Promise<void> {
  const c = await RawClient.open(`${s.wsUrl}/signal`);
  const topics = [`test-conversation-${i % 7}`, `test-assistant-${i}`];
  c.send({ type: 'subscribe', topics });
  c.send({ type: 'publish', topic: topics[0], data: i });
  await c.roundTrip();
  switch (i % 4) {
    case 0:
      return c.close();
    case 1:
      c.ws.terminate();
      await c.closed;
      return;
    case 2:
      c.send({ type: 'unsubscribe', topics });
      await c.roundTrip();
      return c.close();
    default:
      c.send('{"type":"subscribe","topics":"oops"}');
      await c.closedWithin();
  }
}

describe('WS /signal bookkeeping', () => {
  it('leaves no topics and no connections after 1,000 connect/subscribe/close cycles', async () => {
    const server = await scope.start({ MAX_MESSAGES_PER_SECOND: '1000' });
    const s = server;
    const watcher = await RawClient.open(`${s.wsUrl}/signal`);
    watcher.send({ type: 'subscribe', topics: ['test-conversation-0'] });
    await watcher.roundTrip();
    const watcherSide = new Set(s.app.sync.admission.sockets);
    const lanes = 10;
    await Promise.all(
      Array.from({ length: lanes }, async (_, lane) => {
        for (let i = lane; i < 1000; i += lanes) await cycle(s, i);
      }),
    );
    // The watcher saw the publishes to its topic: the cycles really subscribed and published.
    await serverSocketsClosed(s, watcherSide);
    await watcher.roundTrip();
    expect(watcher.frames.filter((f) => f.includes('"publish"')).length).toBeGreaterThan(100);
    expect(await metricValue(s, 'signalingTopics')).toBe(1);
    await watcher.close();
    await serverSocketsClosed(s);
    expect(await metricValue(s, 'signalingTopics')).toBe(0);
    expect(await metricValue(s, 'signalingConnections')).toBe(0);
    const text = await scrapeMetrics(`${s.url}/metrics`);
    expect(text.value('sync_signaling_topics')).toBe(0);
    expect(text.value('sync_signaling_connections')).toBe(0);
    expect(await metricValue(s, 'rejectedMessages', { endpoint: 'signal', reason: 'topics_not_array' })).toBe(250);
  });

  it('removes both sides on unsubscribe: the topic goes, and the connection may rejoin', async () => {
    const server = await scope.start({ MAX_TOPICS_PER_CONNECTION: '1' });
    const c = await RawClient.open(`${server.wsUrl}/signal`);
    c.send({ type: 'subscribe', topics: ['test-conversation-a'] });
    c.send({ type: 'unsubscribe', topics: ['test-conversation-a'] });
    await c.roundTrip();
    expect(await metricValue(server, 'signalingTopics')).toBe(0);
    // With a limit of one topic, this only passes if the connection forgot the first topic too.
    c.send({ type: 'subscribe', topics: ['test-conversation-b'] });
    c.send({ type: 'publish', topic: 'test-conversation-b', data: 1 });
    expect(await c.find(0, (m) => m['type'] === 'publish')).toMatchObject({ clients: 1 });
    expect(await metricValue(server, 'signalingTopics')).toBe(1);
    await c.close();
  });
});
