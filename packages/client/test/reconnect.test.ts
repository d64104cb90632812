/**
 * WebRTC peers that lose each other meet again, and the provider counts them synced again:
 * after a dropped connection (y-webrtc's own synced flag stays false for every later peer, so
 * the status would never come back to `webrtc`), and after a connection that opens and carries
 * nothing (dropped by the provider after peerSyncTimeoutMs). Node processes, node-datachannel.
 */
import { afterEach, expect, it } from 'vitest';
import { serverPerTest, TEST_SECRET } from '../../../test/helpers/server.js';
import { PeerProcess, type PeerEvent } from './helpers/peer-process.js';

const scope = serverPerTest();
afterEach(() => scope.close());

const onWebrtcOnly = (e: PeerEvent): boolean => e.ev === 'status' && e['status'] === 'webrtc' && e['syncedWebrtcPeers'] === 1;

async function pair(room: string, extraA: Record<string, unknown> = {}): Promise<[PeerProcess, PeerProcess]> {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
  const env = { TOKEN_SECRET: TEST_SECRET };
  const [a, b] = [new PeerProcess('phone', env), new PeerProcess('desktop', env)];
  scope.track(a, b);
  const start = { serverUrl: server.url, room, relayGraceMs: 30_000, relayHoldMs: 500, peerSyncTimeoutMs: 2_000 };
  await a.send('start', { ...start, ...extraA });
  await b.send('start', start);
  return [a, b];
}

it('a dropped WebRTC connection is met again, synced, and carries edits', async () => {
  const [a, b] = await pair('test-conversation-drop');
  await Promise.all([a.waitFor(onWebrtcOnly, 'phone on WebRTC'), b.waitFor(onWebrtcOnly, 'desktop on WebRTC')]);
  const [ma, mb] = [a.mark, b.mark];
  await a.send('drop');
  await a.waitFor((e) => e.ev === 'status' && e['webrtcPeers'] === 0, 'phone lost its peer', 10_000, ma);
  await Promise.all([a.waitFor(onWebrtcOnly, 'phone back on WebRTC', 20_000, ma), b.waitFor(onWebrtcOnly, 'desktop back on WebRTC', 20_000, mb)]);
  await a.send('push', { text: 'after the drop' });
  await b.waitTexts(['after the drop']);
});

it('a connection that opens and carries nothing is dropped and met again', async () => {
  const [a, b] = await pair('test-conversation-mute', { muteFirstPeer: true });
  await a.waitFor((e) => e.ev === 'muted', 'phone muted its first peer');
  await Promise.all([a.waitFor(onWebrtcOnly, 'phone on WebRTC', 30_000), b.waitFor(onWebrtcOnly, 'desktop on WebRTC', 30_000)]);
  // The muted connection was open before it was dropped: the phone saw WebRTC without sync.
  const stuck = a.events.find((e) => e.ev === 'status' && (e['webrtcPeers'] as number) > 0 && e['syncedWebrtcPeers'] === 0);
  expect(stuck).toBeDefined();
  await b.send('push', { text: 'after the stuck pair' });
  await a.waitTexts(['after the stuck pair']);
});
