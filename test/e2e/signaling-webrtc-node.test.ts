/**
 * Two stock y-webrtc clients in two Node processes sync a Y.Text and awareness over a real
 * WebRTC data channel (node-datachannel, bound to 127.0.0.1), signaling through our
 * /signal?token=…, with and without a room password (encrypted signaling).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { serverPerTest, TEST_SECRET, testToken } from '../helpers/server.js';
import { withTimeout } from '../helpers/timeout.js';
import { RawClient, metricValue, publishesReceived } from '../../apps/server/test/signaling-client.js';
import { expectSyncedOverWebrtc, killPeers, startPeersInTurn, stopPeers, untilSynced, type PeerProcess } from './fixtures/signaling-peer-process.js';

const SYNC_MS = 30_000;
/** until the first peer's announce is out: a Node + tsx start-up, slow on a busy machine */
const START_MS = 20_000;

const scope = serverPerTest();
const peers: PeerProcess[] = [];
afterEach(async () => {
  killPeers(peers);
  await scope.close(); // the observers, then the server
});

async function syncPair(room: string, password?: string) {
  const server = scope.current;
  const url = async (sub: string) => `${server.wsUrl}/signal?token=${await testToken(sub, ['e2e-conversation-*'])}`;
  // An observer on the same topic sees what the signaling server relays.
  const observer = await RawClient.open(await url('observer'));
  scope.track(observer);
  observer.send({ type: 'subscribe', topics: [room] });
  await observer.roundTrip();
  // The desktop starts once the phone has announced itself: see startPeersInTurn.
  const from = observer.frames.length;
  const phoneAnnounced = () => observer.find(from, (m) => m['type'] === 'publish', START_MS);
  const [a, b] = await startPeersInTurn(peers, room, { phone: await url('phone'), desktop: await url('desktop') }, phoneAnnounced, password);
  const results = await untilSynced([a, b], SYNC_MS);
  const codes = await withTimeout(stopPeers([a, b]), 10_000, 'peers exit');
  const relayed = publishesReceived(observer);
  return { results, codes, relayed };
}

describe('stock y-webrtc over WS /signal (Node processes)', () => {
  it('syncs a Y.Text and awareness over WebRTC, signaling through /signal?token=…', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
    const { results, codes, relayed } = await syncPair('e2e-conversation-plain');
    expectSyncedOverWebrtc(results);
    expect(codes).toEqual([0, 0]);
    // Plain signaling: announces and SDP travel as JSON objects, the document text never does.
    expect(relayed.some((m) => (m['data'] as { type?: string }).type === 'announce')).toBe(true);
    expect(relayed.some((m) => JSON.stringify(m).includes('"sdp"'))).toBe(true);
    expect(JSON.stringify(relayed)).not.toContain('hello from');
    expect(await metricValue(server, 'signalingMessages', { type: 'publish' })).toBeGreaterThan(2);
    expect(await metricValue(server, 'authFailures')).toBe(0);
  });

  it('syncs with a room password: the server relays only ciphertext', async () => {
    await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
    const { results, codes, relayed } = await syncPair('e2e-conversation-secret', 'correct horse battery staple');
    for (const r of results) {
      expect(r.text).toEqual(['hello from desktop', 'hello from phone']);
      expect(r.awareness).toEqual(['desktop', 'phone']);
      expect(r.webrtcPeers).toBe(1);
    }
    expect(codes).toEqual([0, 0]);
    expect(relayed.length).toBeGreaterThan(2);
    for (const m of relayed) expect(typeof m['data']).toBe('string');
    // Quoted, as plain signals carry them ("type":"announce", "sdp", "candidate"): base64 ciphertext has
    // no quotes, but spells these words by chance (a CI run failed on "…NsdpX…" inside a ciphertext).
    expect(JSON.stringify(relayed)).not.toMatch(/"(announce|sdp|candidate)"/);
  });
});
