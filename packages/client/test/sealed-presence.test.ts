/**
 * Presence over a sealed room when the sealed socket closes (src/sealed/presence.ts): the sealed
 * path drops the awareness states it learned when its socket closes (on this device) and when the
 * server says a connection left (`peer-left`, on the other device); a peer a WebRTC connection
 * still carries must stay, as on the plain relay (relay-presence.test.ts). Devices run in their own
 * processes (node-datachannel on loopback) and report every awareness removal they see.
 */
import { expect, it } from 'vitest';
import { TEST_SECRET } from '../../../test/helpers/server.js';
import { devicesPerTest } from './helpers/devices.js';
import type { PeerEvent, PeerProcess } from './helpers/peer-process.js';
import { until } from './helpers/until.js';

const { scope, peer } = devicesPerTest();
const KEY = '66'.repeat(32);

interface PeerState {
  clientID: number;
  awareness: string[];
  sealedPresence: Array<[number, number[]]>;
}

const removals = (p: PeerProcess, since: number): number[] =>
  p.events.slice(since).flatMap((e: PeerEvent) => (e.ev === 'awareness-removed' ? (e['removed'] as number[]) : []));
const stateOf = async (p: PeerProcess): Promise<PeerState> => (await p.send('state')) as PeerState;
/** the sealed server peer whose presence announced `client`, if any */
const sealedPeerOf = (s: PeerState, client: number): number | undefined => s.sealedPresence.find(([, ids]) => ids.includes(client))?.[0];
const relayIs = (open: boolean) => (e: PeerEvent) => e.ev === 'status' && e['relay'] === open;

it('the sealed socket drops while WebRTC carries the peer: neither side loses the other (close and peer-left)', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
  const room = 'test-conversation-sealed-presence-drop';
  // the sealed relay at once and held for good: both devices are on it and on WebRTC
  const start = { serverUrl: server.url, room, relayGraceMs: 0, relayHoldMs: 600_000, sealedKey: KEY };
  const [a, b] = [peer('phone'), peer('desktop')];
  await Promise.all([a.send('start', start), b.send('start', start)]);
  const both = (p: PeerProcess): Promise<PeerEvent> =>
    p.waitFor((e) => e.ev === 'status' && e['relay'] === true && e['syncedWebrtcPeers'] === 1 && e['peers'] === 1, `${p.name} on both paths`);
  await Promise.all([both(a), both(b)]);
  const [aId, bId] = await Promise.all([a, b].map(async (p) => (await stateOf(p)).clientID));
  // each heard the other's presence over the sealed relay too (so a close or peer-left concerns it)
  await until(async () => sealedPeerOf(await stateOf(a), bId as number) !== undefined, 'phone heard the desktop over the sealed relay');
  await until(async () => sealedPeerOf(await stateOf(b), aId as number) !== undefined, 'desktop heard the phone over the sealed relay');
  const oldPeer = sealedPeerOf(await stateOf(b), aId as number);
  const [sinceA, sinceB] = [a.mark, b.mark];
  await a.send('closeRelay');
  await a.waitFor(relayIs(false), 'phone sealed relay closed', 10_000, sinceA);
  await a.waitFor(relayIs(true), 'phone sealed relay back', 10_000, sinceA);
  // the desktop got peer-left for the phone's old connection before the new one's presence
  await until(async () => {
    const peerNow = sealedPeerOf(await stateOf(b), aId as number);
    return peerNow !== undefined && peerNow !== oldPeer;
  }, "desktop heard the phone's new sealed connection");
  const [stateA, stateB] = await Promise.all([stateOf(a), stateOf(b)]);
  // peer-left on the desktop, then the close on the phone
  expect(removals(b, sinceB)).not.toContain(aId);
  expect(removals(a, sinceA)).not.toContain(bId);
  expect(stateA.awareness).toEqual(['desktop', 'phone']);
  expect(stateB.awareness).toEqual(['desktop', 'phone']);
});
