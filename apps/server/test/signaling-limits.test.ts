/** WS /signal limits (docs/PROTOCOL-signaling.md), each with its close code and rejection count; bad input closes 4400. */
import { afterEach, describe, expect, it } from 'vitest';
import { Errors } from '@sync-suite/shared';
import { serverPerTest, TEST_SECRET, testToken } from '../../../test/helpers/server.js';
import { upgradeStatus } from '../../../test/helpers/upgrade.js';
import { withTimeout } from '../../../test/helpers/timeout.js';
import { metricValue, openRawClient } from './signaling-client.js';

const ROOM = 'test-conversation-limits';
const room = (i: number) => `test-conversation-${i}`;

const scope = serverPerTest();
afterEach(() => scope.close());

const open = () => openRawClient(scope);
const rejected = (reason: string) => metricValue(scope.current, 'rejectedMessages', { endpoint: 'signal', reason });

describe('WS /signal limits', () => {
  it('accepts a frame at SIGNALING_MAX_MESSAGE_BYTES and closes 1009 above it', async () => {
    const server = await scope.start({ SIGNALING_MAX_MESSAGE_BYTES: '1024' });
    const c = await open();
    c.send({ type: 'subscribe', topics: [ROOM] });
    const envelope = JSON.stringify({ type: 'publish', topic: ROOM, data: '' });
    const atLimit = JSON.stringify({ type: 'publish', topic: ROOM, data: 'x'.repeat(1024 - envelope.length) });
    expect(Buffer.byteLength(atLimit)).toBe(1024);
    c.send(atLimit);
    expect(await c.find(0, (m) => m['type'] === 'publish')).toMatchObject({ clients: 1 });
    c.send(atLimit.replace('"x', '"xx'));
    expect((await c.closedWithin()).code).toBe(1009);
    expect(await rejected('too_big')).toBe(1);
    expect(await metricValue(server, 'signalingTopics')).toBe(0);
  });

  it('closes 4409 beyond MAX_TOPICS_PER_CONNECTION, counting duplicates once', async () => {
    const server = await scope.start({ MAX_TOPICS_PER_CONNECTION: '3' });
    const c = await open();
    c.send({ type: 'subscribe', topics: [room(1), room(2), room(1)] });
    c.send({ type: 'subscribe', topics: [room(3), room(2)] });
    await c.roundTrip();
    c.send({ type: 'subscribe', topics: [room(4)] });
    expect((await c.closedWithin()).code).toBe(Errors.ERR_TOO_MANY_TOPICS.closeCode);
    expect(Errors.ERR_TOO_MANY_TOPICS.closeCode).toBe(4409);
    expect(await rejected('too_many_topics')).toBe(1);
    expect(await metricValue(server, 'signalingTopics')).toBe(0);
  });

  it('closes 4429 past SIGNALING_TOPIC_JOINS_PER_MINUTE topic joins (burst at least MAX_TOPICS_PER_CONNECTION); topics held again cost nothing', async () => {
    const server = await scope.start({ SIGNALING_TOPIC_JOINS_PER_MINUTE: '5', MAX_TOPICS_PER_CONNECTION: '3' });
    const c = await open();
    c.send({ type: 'subscribe', topics: [room(1), room(2), room(3)] }); // 3 joins
    c.send({ type: 'subscribe', topics: [room(1), room(2), room(3)] }); // held: none
    c.send({ type: 'unsubscribe', topics: [room(1), room(2)] });
    c.send({ type: 'subscribe', topics: [room(1), room(2)] }); // 5 joins
    c.send({ type: 'unsubscribe', topics: [room(1)] });
    await c.roundTrip();
    c.send({ type: 'subscribe', topics: [room(1)] }); // the 6th within the minute
    const closed = await c.closedWithin();
    expect(closed).toEqual({ code: Errors.ERR_TOO_MANY_TOPIC_JOINS.closeCode, reason: Errors.ERR_TOO_MANY_TOPIC_JOINS.message });
    expect(closed.code).toBe(4429);
    expect(await rejected('topic_joins')).toBe(1);
    expect(await metricValue(server, 'signalingTopics')).toBe(0);
    // MAX_TOPICS_PER_CONNECTION above the setting: the burst is MAX_TOPICS_PER_CONNECTION
    await scope.close();
    await scope.start({ SIGNALING_TOPIC_JOINS_PER_MINUTE: '1', MAX_TOPICS_PER_CONNECTION: '3' });
    const d = await open();
    d.send({ type: 'subscribe', topics: [room(1), room(2), room(3)] });
    await d.roundTrip();
    d.send({ type: 'unsubscribe', topics: [room(3)] });
    d.send({ type: 'subscribe', topics: [room(3)] });
    expect((await d.closedWithin()).code).toBe(4429);
  });

  it('with auth on the topic-join budget is the token sub\'s: a new socket of the same sub does not start with a full one; another sub does', async () => {
    await scope.start({ AUTH_SECRET: TEST_SECRET, SIGNALING_TOPIC_JOINS_PER_MINUTE: '5', MAX_TOPICS_PER_CONNECTION: '3' });
    const rooms = Array.from({ length: 8 }, (_, i) => room(i));
    const as = async (sub: string) => openRawClient(scope, `/signal?token=${await testToken(sub, rooms, { ttlSeconds: 120 })}`);
    const first = await as('alice');
    first.send({ type: 'subscribe', topics: [room(1), room(2), room(3)] });
    first.send({ type: 'unsubscribe', topics: [room(1), room(2), room(3)] });
    first.send({ type: 'subscribe', topics: [room(4), room(5)] }); // 5 joins: alice's budget is spent
    await first.roundTrip();
    await first.close();
    const again = await as('alice'); // a reconnect: before, a full budget of its own
    again.send({ type: 'subscribe', topics: [room(6)] });
    expect((await again.closedWithin()).code).toBe(4429);
    const bob = await as('bob');
    bob.send({ type: 'subscribe', topics: [room(1), room(2), room(3)] });
    await bob.roundTrip(); // answered after the subscribe: not closed
  });

  it('closes 4409 when a topic already has MAX_PEERS_PER_ROOM subscribers', async () => {
    await scope.start({ MAX_PEERS_PER_ROOM: '2' });
    const [a, b, c] = [await open(), await open(), await open()];
    for (const x of [a, b]) {
      x.send({ type: 'subscribe', topics: [ROOM] });
      await x.roundTrip();
    }
    c.send({ type: 'subscribe', topics: [ROOM] });
    expect((await c.closedWithin()).code).toBe(4409);
    expect(await rejected('room_full')).toBe(1);
    a.send({ type: 'publish', topic: ROOM, data: 1 });
    expect(await b.find(0, (m) => m['type'] === 'publish')).toMatchObject({ clients: 2 });
  });

  it('slows a client above MAX_MESSAGES_PER_SECOND without closing it, and closes 4429 far above it', async () => {
    // pace: 20/s; abuse: more than 2 x 20/s for 1 s, i.e. 40 messages read at once
    const server = await scope.start({ MAX_MESSAGES_PER_SECOND: '20', RATE_LIMIT_ABUSE_FACTOR: '2', RATE_LIMIT_ABUSE_SECONDS: '1' });
    const polite = await open();
    for (let i = 0; i < 10; i++) polite.send({ type: 'ping' });
    await polite.find(9, (m) => m['type'] === 'pong');
    const busy = await open();
    for (let i = 0; i < 35; i++) busy.send({ type: 'ping' });
    // All 35 are answered (20 at once, the rest as the bucket refills), none refused.
    await busy.find(34, (m) => m['type'] === 'pong');
    expect(await metricValue(server, 'rateLimitPauses', { endpoint: 'signal' })).toBeGreaterThanOrEqual(1);
    const flood = await open();
    for (let i = 0; i < 200; i++) flood.send({ type: 'ping' });
    expect((await flood.closedWithin()).code).toBe(4429);
    // About the abuse bucket (40) is answered before the close, plus what it refilled (40/s) if the
    // 200 frames arrived over several reads on a loaded machine; never all 200.
    expect(flood.frames.length).toBeLessThan(100);
    expect(await rejected('rate_limited')).toBe(1);
    await polite.roundTrip();
    await busy.roundTrip();
  });

  // A refusal tears the connection down before its close handshake; a socket paused for its rate
  // must still read the client's close frame (signaling/connection.ts stopThrottle): the server
  // side reads it, resumed, rather than when ws destroys the still-paused socket after
  // CLOSE_TIMEOUT_MS (app.ts; ws then reads what was buffered, so the code alone cannot tell).
  it('a socket refused while paused for its rate still completes the close handshake', async () => {
    const server = await scope.start({ MAX_MESSAGES_PER_SECOND: '20' });
    const c = await open();
    await c.roundTrip();
    const serverSide = [...server.app.sync.admission.sockets].at(-1);
    const serverClosed = new Promise<{ code: number; paused: boolean | undefined }>((done) => serverSide?.once('close', (code: number) => done({ code, paused: serverSide?.isPaused })));
    // one write: the 21st message pauses reading; the frames already read still arrive, the last malformed
    const tcp = (c.ws as unknown as { _socket: { cork(): void; uncork(): void } })._socket;
    tcp.cork();
    for (let i = 0; i < 25; i++) c.send({ type: 'ping' });
    c.send('garbage{');
    tcp.uncork();
    expect((await c.closedWithin()).code).toBe(4400);
    expect(await withTimeout(serverClosed, 5000, 'server-side close')).toEqual({ code: 4400, paused: false });
    expect(await metricValue(server, 'rateLimitPauses', { endpoint: 'signal' })).toBeGreaterThanOrEqual(1);
  });

  it('refuses upgrades beyond MAX_CONNECTIONS with HTTP 503, before any WebSocket exists', async () => {
    const server = await scope.start({ MAX_CONNECTIONS: '3' });
    const open3 = [await open(), await open(), await open()];
    expect(await upgradeStatus(`${server.url}/signal`)).toBe(Errors.ERR_TOO_MANY_CONNECTIONS.httpStatus);
    expect(server.app.sync.admission.sockets.size).toBe(3);
    expect(await rejected('too_many_connections')).toBe(1);
    for (const c of open3) await c.roundTrip();
  });

  const malformed: Array<[string, string | Buffer, string]> = [
    ['invalid JSON', '{"type":"subscribe",', 'invalid_json'],
    ['random bytes', Buffer.from([0x7b, 0x00, 0x22]), 'invalid_json'],
    ['a JSON string', '"subscribe"', 'not_object'],
    ['null', 'null', 'not_object'],
    ['an array', '[{"type":"ping"}]', 'not_object'],
    ['no type', '{"topics":[]}', 'unknown_type'],
    ['an unknown type', '{"type":"shout"}', 'unknown_type'],
    ['a type that is not a string', '{"type":["ping"]}', 'unknown_type'],
    ['topics that is not an array', '{"type":"subscribe","topics":"test-conversation-1"}', 'topics_not_array'],
    ['missing topics', '{"type":"unsubscribe"}', 'topics_not_array'],
    ['non-string topics', '{"type":"subscribe","topics":[1,{}]}', 'topic_not_string'],
    ['publish without topic', '{"type":"publish","data":1}', 'missing_topic'],
    ['publish with a numeric topic', '{"type":"publish","topic":7}', 'topic_not_string'],
    ['unserializably deep publish', `{"type":"publish","topic":"${ROOM}","data":${'['.repeat(30000)}${']'.repeat(30000)}}`, 'unserializable'],
  ];

  it.each(malformed)('closes 4400 for %s and counts it', async (_name, frame, reason) => {
    const server = await scope.start({ MAX_MESSAGES_PER_SECOND: '1000' });
    const witness = await open();
    witness.send({ type: 'subscribe', topics: [ROOM] });
    await witness.roundTrip();
    const c = await open();
    c.send(frame);
    expect((await c.closedWithin()).code).toBe(4400);
    expect(await rejected(reason)).toBe(1);
    await witness.roundTrip();
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it('drops a receiver that stops reading instead of buffering for it without bound', async () => {
    const server = await scope.start({ SIGNALING_MAX_MESSAGE_BYTES: '4096', MAX_MESSAGES_PER_SECOND: '1000000' });
    const stalled = await open();
    stalled.send({ type: 'subscribe', topics: [ROOM] });
    await stalled.roundTrip();
    const serverSide = [...server.app.sync.admission.sockets][0];
    if (!serverSide) throw new Error('no server-side socket');
    const dropped = new Promise<void>((resolve) => serverSide.once('close', () => resolve()));
    let isDropped = false;
    void dropped.then(() => (isDropped = true));
    (stalled.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const publisher = await open();
    const frame = JSON.stringify({ type: 'publish', topic: ROOM, data: 'x'.repeat(4000) });
    // Bounded: at most 100 MB before the test fails.
    for (let batch = 0; batch < 250 && !isDropped; batch++) {
      for (let i = 0; i < 100; i++) publisher.send(frame);
      await publisher.roundTrip();
    }
    expect(isDropped).toBe(true);
    expect(await rejected('slow_consumer')).toBe(1);
    expect(await metricValue(server, 'signalingTopics')).toBe(0);
    await publisher.roundTrip();
    stalled.ws.terminate();
  });
});
