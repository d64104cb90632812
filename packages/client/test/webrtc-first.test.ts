/**
 * Two SyncProviders (separate processes, node-datachannel on loopback)
 * sync peer to peer through the real server's /signal, and the relay sees no document update.
 */
import { afterEach, expect, it } from 'vitest';
import { serverPerTest, TEST_SECRET } from '../../../test/helpers/server.js';
import { PeerProcess } from './helpers/peer-process.js';
import { metric } from './helpers/metrics.js';

const scope = serverPerTest();
afterEach(() => scope.close());

it('syncs over WebRTC and the relay sees no document update', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
  const room = 'test-conversation-p2p';
  const env = { TOKEN_SECRET: TEST_SECRET };
  const [a, b] = [new PeerProcess('phone', env), new PeerProcess('desktop', env)];
  scope.track(a, b);
  // A generous grace so that two processes starting side by side meet over WebRTC first.
  const start = { serverUrl: server.url, room, relayGraceMs: 10_000, relayHoldMs: 500 };
  await Promise.all([a.send('start', start), b.send('start', start)]);
  await Promise.all([a.waitStatus('webrtc'), b.waitStatus('webrtc')]);
  // The first one may have met the relay while it was alone; it lets go once WebRTC carries the room.
  await Promise.all(
    [a, b].map((p) => p.waitFor((e) => e.ev === 'status' && e['status'] === 'webrtc' && e['relay'] === false && e['syncedWebrtcPeers'] === 1, `${p.name} on WebRTC only`)),
  );
  const updatesBefore = await metric(server, 'sync_relay_updates_total');
  await a.send('push', { text: 'hi from the phone' });
  await b.send('push', { text: 'hi from the desktop' });
  const both = ['hi from the phone', 'hi from the desktop'];
  await Promise.all([a.waitTexts(both), b.waitTexts(both)]);
  expect(await metric(server, 'sync_relay_updates_total')).toBe(updatesBefore);
  expect(updatesBefore).toBe(0);
  expect(await metric(server, 'sync_relay_connections')).toBe(0);
  // Presence crosses WebRTC too, through the one shared Awareness.
  const state = (await b.send('state')) as { awareness: string[]; status: string };
  expect(state.awareness).toEqual(['desktop', 'phone']);
  expect(state.status).toBe('webrtc');
});
