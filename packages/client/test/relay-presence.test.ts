/**
 * Presence when a relay socket closes (src/relay-presence.ts): y-websocket's close handler
 * removed every awareness state but our own, so a peer still connected over WebRTC vanished from
 * the shared Awareness until its next renewal (15 s). Now only what the relay alone carried goes.
 * Devices run in their own processes (node-datachannel on loopback); each reports every awareness
 * removal it sees (`awareness-removed`).
 */
import { expect, it } from 'vitest';
import { TEST_SECRET } from '../../../test/helpers/server.js';
import { devicesPerTest } from './helpers/devices.js';
import type { PeerEvent, PeerProcess } from './helpers/peer-process.js';

const { scope, peer } = devicesPerTest();

interface PeerState {
  clientID: number;
  awareness: string[];
}

const removals = (p: PeerProcess, since: number): number[] =>
  p.events.slice(since).flatMap((e: PeerEvent) => (e.ev === 'awareness-removed' ? (e['removed'] as number[]) : []));

const relayIs = (open: boolean) => (e: PeerEvent) => e.ev === 'status' && e['relay'] === open;

it('the relay released once WebRTC carries the room: the WebRTC peer stays in awareness', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
  const room = 'test-conversation-presence-release';
  const a = peer('phone');
  await a.send('start', { serverUrl: server.url, room, relayGraceMs: 10_000, relayHoldMs: 500 });
  // alone on the topic: the relay connects at once
  await a.waitFor(relayIs(true), 'phone on the relay');
  const since = a.mark;
  const b = peer('desktop');
  await b.send('start', { serverUrl: server.url, room, relayGraceMs: 10_000, relayHoldMs: 500 });
  const bId = ((await b.send('state')) as PeerState).clientID;
  await a.waitFor((e) => e.ev === 'status' && e['syncedWebrtcPeers'] === 1 && e['peers'] === 1, 'phone meets the desktop over WebRTC', 20_000, since);
  // held for relayHoldMs, then released: the relay socket closes
  await a.waitFor((e) => relayIs(false)(e) && e['syncedWebrtcPeers'] === 1, 'phone releases the relay', 20_000, since);
  // a round trip: anything the close did is reported before the reply
  const state = (await a.send('state')) as PeerState;
  expect(removals(a, since)).not.toContain(bId);
  expect(state.awareness).toEqual(['desktop', 'phone']);
});

it('the relay socket drops while WebRTC carries the peer: neither side loses the other', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
  const room = 'test-conversation-presence-drop';
  // relay at once and held for good: both devices are on the relay and on WebRTC
  const start = { serverUrl: server.url, room, relayGraceMs: 0, relayHoldMs: 600_000 };
  const [a, b] = [peer('phone'), peer('desktop')];
  await Promise.all([a.send('start', start), b.send('start', start)]);
  const both = (p: PeerProcess): Promise<PeerEvent> =>
    p.waitFor((e) => e.ev === 'status' && e['relay'] === true && e['syncedWebrtcPeers'] === 1 && e['peers'] === 1, `${p.name} on both paths`);
  await Promise.all([both(a), both(b)]);
  const [aId, bId] = await Promise.all([a, b].map(async (p) => ((await p.send('state')) as PeerState).clientID));
  const [sinceA, sinceB] = [a.mark, b.mark];
  await a.send('closeRelay');
  await a.waitFor(relayIs(false), 'phone relay closed', 10_000, sinceA);
  // reconnected (a drop of an accepted socket reconnects at once): the server has announced the
  // old connection's departure to the desktop by then
  await a.waitFor(relayIs(true), 'phone relay back', 10_000, sinceA);
  await b.send('state');
  const [stateA, stateB] = (await Promise.all([a.send('state'), b.send('state')])) as PeerState[];
  expect(removals(a, sinceA)).not.toContain(bId);
  expect(removals(b, sinceB)).not.toContain(aId);
  expect(stateA?.awareness).toEqual(['desktop', 'phone']);
  expect(stateB?.awareness).toEqual(['desktop', 'phone']);
});

it('a peer only the relay carried still leaves at once when the relay socket closes', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
  const room = 'test-conversation-presence-relay-only';
  const [a, c] = [peer('phone'), peer('laptop')];
  // the laptop has no usable ICE candidates: the two meet on the relay only
  await Promise.all([
    a.send('start', { serverUrl: server.url, room, relayGraceMs: 0, relayHoldMs: 600_000 }),
    c.send('start', { serverUrl: server.url, room, relayGraceMs: 0, relayHoldMs: 600_000, blockWebrtc: true }),
  ]);
  await a.waitFor((e) => e.ev === 'status' && e['relay'] === true && e['peers'] === 1, 'phone sees the laptop over the relay');
  const cId = ((await c.send('state')) as PeerState).clientID;
  const since = a.mark;
  await a.send('closeRelay');
  await a.waitFor(relayIs(false), 'phone relay closed', 10_000, since);
  await a.send('state');
  expect(removals(a, since)).toContain(cId);
});
