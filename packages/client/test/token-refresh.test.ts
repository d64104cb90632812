/**
 * 20-second tokens for a minute: each transport swaps its socket for one with a fresh token
 * before the token expires (the server closes sockets whose token expired), with no visible
 * status change and no edit lost, through the relay (one pair, WebRTC blocked) and over WebRTC
 * (another pair) at once.
 */
import { expect, it } from 'vitest';
import { TEST_SECRET } from '../../../test/helpers/server.js';
import { devicesPerTest } from './helpers/devices.js';
import type { PeerProcess } from './helpers/peer-process.js';

const { scope, peer } = devicesPerTest();

interface PeerState {
  sockets: Array<{ path: string; sub: string | undefined }>;
}

const RUN_MS = 60_000;
const EDIT_EVERY_MS = 3_000;

it('20 s tokens over a minute: status stays relay / webrtc, every edit arrives, sockets swapped with fresh tokens', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
  const pair = (room: string): [PeerProcess, PeerProcess] => [peer(`${room}-a`, { TOKEN_TTL: '20' }), peer(`${room}-b`, { TOKEN_TTL: '20' })];
  const relayPair = pair('relay');
  const rtcPair = pair('rtc');
  const peers = [...relayPair, ...rtcPair];
  const rooms = { relay: 'test-conversation-expiry-relay', rtc: 'test-conversation-expiry-rtc' };
  await Promise.all(relayPair.map((p) => p.send('start', { serverUrl: server.url, room: rooms.relay, blockWebrtc: true, relayGraceMs: 0 })));
  await Promise.all(rtcPair.map((p) => p.send('start', { serverUrl: server.url, room: rooms.rtc })));
  await Promise.all([...relayPair.map((p) => p.waitStatus('relay')), ...rtcPair.map((p) => p.waitStatus('webrtc'))]);
  const marks = new Map(peers.map((p) => [p, p.mark]));

  // The workload: an edit every few seconds from alternating devices of each pair, for a minute.
  const texts: string[] = [];
  for (let i = 0; i * EDIT_EVERY_MS < RUN_MS; i++) {
    const text = `edit ${i}`;
    texts.push(text);
    await Promise.all([relayPair[i % 2]?.send('push', { text }), rtcPair[i % 2]?.send('push', { text })]);
    await new Promise((r) => setTimeout(r, EDIT_EVERY_MS));
  }
  await Promise.all(peers.map((p) => p.waitTexts(texts)));

  for (const [p, expected] of [...relayPair.map((p) => [p, 'relay'] as const), ...rtcPair.map((p) => [p, 'webrtc'] as const)]) {
    const statuses = p.events.slice(marks.get(p)).filter((e) => e.ev === 'status').map((e) => e['status']);
    expect(new Set(statuses), p.name).toEqual(new Set([expected]));
    const state = (await p.send('state')) as PeerState;
    // Tokens live 20 s, so each socket was swapped several times (each with its own token).
    const path = expected === 'relay' ? `/relay/${rooms.relay}` : '/signal';
    expect(state.sockets.filter((s) => s.path === path).length, `${p.name} ${path} sockets`).toBeGreaterThanOrEqual(5);
  }
}, 150_000);
