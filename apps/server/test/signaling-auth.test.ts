/** WS /signal auth (docs/PROTOCOL-signaling.md): 4401 at connect, 4403 outside the token's rooms, 4400 for non-room topics. */
import { afterEach, describe, expect, it } from 'vitest';
import { createRoomToken } from '@sync-suite/shared';
import { serverPerTest, TEST_SECRET } from '../../../test/helpers/server.js';
import { metricValue, openRawClient } from './signaling-client.js';

const ROOM = 'acme-conversation-1';

const scope = serverPerTest();
afterEach(() => scope.close());

const open = (query = '') => openRawClient(scope, `/signal${query}`);

const token = (rooms: string[], opts: { ttlSeconds?: number; now?: number; secret?: string; scope?: 'read' | 'write' } = {}) =>
  createRoomToken(opts.secret ?? TEST_SECRET, { sub: 'alice', rooms, ttlSeconds: opts.ttlSeconds ?? 600, ...(opts.now ? { now: opts.now } : {}), ...(opts.scope ? { scope: opts.scope } : {}) });

describe('WS /signal auth', () => {
  it('closes 4401 without a token, with a bad signature, with an expired token, and counts each', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
    const missing = await open();
    const forged = await open(`?token=${await token([ROOM], { secret: 'another-secret-that-is-32-bytes-long!!!!' })}`);
    const expired = await open(`?token=${await token([ROOM], { ttlSeconds: 60, now: Math.floor(Date.now() / 1000) - 3600 })}`);
    const garbage = await open('?token=not-a-jwt');
    for (const c of [missing, forged, expired, garbage]) expect((await c.closedWithin()).code).toBe(4401);
    expect(await metricValue(server, 'authFailures', { endpoint: 'signal', reason: 'missing' })).toBe(1);
    expect(await metricValue(server, 'authFailures', { endpoint: 'signal', reason: 'bad_signature' })).toBe(1);
    expect(await metricValue(server, 'authFailures', { endpoint: 'signal', reason: 'expired' })).toBe(1);
    expect(await metricValue(server, 'authFailures', { endpoint: 'signal', reason: 'malformed' })).toBe(1);
    expect(await metricValue(server, 'rejectedMessages', { endpoint: 'signal', reason: 'unauthorized' })).toBe(4);
    expect(await metricValue(server, 'signalingConnections')).toBe(0);
  });

  it('never processes frames sent before a refused token is checked', async () => {
    await scope.start({ AUTH_SECRET: TEST_SECRET });
    const member = await open(`?token=${await token([ROOM])}`);
    member.send({ type: 'subscribe', topics: [ROOM] });
    await member.roundTrip();
    const intruder = await open();
    intruder.send({ type: 'publish', topic: ROOM, data: 'injected' });
    expect((await intruder.closedWithin()).code).toBe(4401);
    await member.roundTrip();
    expect(member.frames.some((f) => f.includes('injected'))).toBe(false);
  });

  it('accepts topics the token covers, exactly or by prefix, and syncs', async () => {
    await scope.start({ AUTH_SECRET: TEST_SECRET });
    const a = await open(`?token=${await token([ROOM])}`);
    const b = await open(`?token=${await token(['acme-conversation-*'])}`);
    a.send({ type: 'subscribe', topics: [ROOM] });
    b.send({ type: 'subscribe', topics: [ROOM, 'acme-conversation-2'] });
    await b.roundTrip();
    a.send({ type: 'publish', topic: ROOM, data: 'hi' });
    expect(await b.find(0, (m) => m['type'] === 'publish')).toEqual({ type: 'publish', topic: ROOM, data: 'hi', clients: 2 });
  });

  it('closes 4403 when a subscribe or publish names a room outside the token', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
    const victim = await open(`?token=${await token(['acme-conversation-2'])}`);
    victim.send({ type: 'subscribe', topics: ['acme-conversation-2'] });
    await victim.roundTrip();
    const sub = await open(`?token=${await token([ROOM])}`);
    sub.send({ type: 'subscribe', topics: [ROOM, 'acme-conversation-2'] });
    expect((await sub.closedWithin()).code).toBe(4403);
    const pub = await open(`?token=${await token([ROOM])}`);
    pub.send({ type: 'publish', topic: 'acme-conversation-2', data: 'injected' });
    expect((await pub.closedWithin()).code).toBe(4403);
    await victim.roundTrip();
    expect(victim.frames.some((f) => f.includes('injected'))).toBe(false);
    expect(await metricValue(server, 'authFailures', { endpoint: 'signal', reason: 'room_not_covered' })).toBe(2);
    expect(await metricValue(server, 'rejectedMessages', { endpoint: 'signal', reason: 'forbidden' })).toBe(2);
    // The refused subscribe joined nothing: only the victim holds a topic.
    expect(await metricValue(server, 'signalingTopics')).toBe(1);
  });

  it('drops and counts publishes of a read token (no WebRTC signaling), which still receives and stays open', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
    const writer = await open(`?token=${await token([ROOM])}`);
    const reader = await open(`?token=${await token([ROOM], { scope: 'read' })}`);
    writer.send({ type: 'subscribe', topics: [ROOM] });
    reader.send({ type: 'subscribe', topics: [ROOM] });
    await writer.roundTrip();
    await reader.roundTrip();
    // y-webrtc's announce and an offer: either would start a peer connection with the writer.
    reader.send({ type: 'publish', topic: ROOM, data: { type: 'announce', from: 'reader' } });
    reader.send({ type: 'publish', topic: ROOM, data: { type: 'signal', from: 'reader', to: 'writer', signal: { type: 'offer' } } });
    await reader.roundTrip();
    await writer.roundTrip();
    expect(writer.frames.some((f) => f.includes('"from":"reader"'))).toBe(false);
    expect(reader.frames.some((f) => f.includes('"from":"reader"'))).toBe(false);
    expect(await metricValue(server, 'rejectedMessages', { endpoint: 'signal', reason: 'read_only' })).toBe(2);
    // It still hears the writers, and a topic outside its token still closes it.
    writer.send({ type: 'publish', topic: ROOM, data: { type: 'announce', from: 'writer' } });
    expect(await reader.find(0, (m) => m['type'] === 'publish')).toEqual({ type: 'publish', topic: ROOM, data: { type: 'announce', from: 'writer' }, clients: 2 });
    reader.send({ type: 'publish', topic: 'acme-conversation-2', data: 'x' });
    expect((await reader.closedWithin()).code).toBe(4403);
  });

  it('closes 4400 for topics that are not room names, with auth on or off', async () => {
    let server = await scope.start({ AUTH_SECRET: TEST_SECRET });
    const c = await open(`?token=${await token(['*'])}`);
    c.send({ type: 'subscribe', topics: ['not a room'] });
    expect((await c.closedWithin()).code).toBe(4400);
    await server.close();

    server = await scope.start({ ROOM_PREFIX: 'acme' });
    const wrongPrefix = await open();
    wrongPrefix.send({ type: 'subscribe', topics: ['other-conversation-1'] });
    expect((await wrongPrefix.closedWithin()).code).toBe(4400);
    const noType = await open();
    noType.send({ type: 'publish', topic: 'acme-nothing-1', data: 1 });
    expect((await noType.closedWithin()).code).toBe(4400);
    expect(await metricValue(server, 'rejectedMessages', { endpoint: 'signal', reason: 'room_name' })).toBe(2);
  });

  it('needs no token when AUTH_SECRET is unset', async () => {
    await scope.start();
    const c = await open();
    c.send({ type: 'subscribe', topics: [ROOM] });
    c.send({ type: 'publish', topic: ROOM, data: 'open' });
    expect(await c.find(0, (m) => m['type'] === 'publish')).toMatchObject({ data: 'open', clients: 1 });
  });
});
