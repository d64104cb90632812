/**
 * When WebRTC cannot connect (no usable ICE candidates, or
 * signaling unreachable) both devices reach `relay` and sync; and the relay is the mailbox
 * that carries edits to a device that comes online after the author left.
 */
import { describe, expect, it } from 'vitest';
import { freePort } from '../../../test/helpers/process.js';
import { TEST_SECRET } from '../../../test/helpers/server.js';
import { devicesPerTest } from './helpers/devices.js';
import type { PeerProcess } from './helpers/peer-process.js';
import { metric } from './helpers/metrics.js';

const { scope, peer } = devicesPerTest();

async function bothOnRelay(room: string, extra: Record<string, unknown>): Promise<[PeerProcess, PeerProcess]> {
  const [a, b] = [peer('phone'), peer('desktop')];
  const start = { serverUrl: scope.current.url, room, relayGraceMs: 1000, ...extra };
  await Promise.all([a.send('start', start), b.send('start', start)]);
  await Promise.all([a.waitStatus('relay'), b.waitStatus('relay')]);
  await a.send('push', { text: 'one' });
  await b.send('push', { text: 'two' });
  await Promise.all([a.waitTexts(['one', 'two']), b.waitTexts(['one', 'two'])]);
  return [a, b];
}

describe('fallback to the relay', () => {
  it('WebRTC without usable candidates: both reach relay and sync, and WebRTC never connected', async () => {
    await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
    // iceTransportPolicy "relay" with no TURN server: no candidate at all.
    const [a, b] = await bothOnRelay('test-conversation-nocandidates', { blockWebrtc: true });
    for (const p of [a, b]) {
      expect(p.events.some((e) => e.ev === 'status' && e['status'] === 'webrtc')).toBe(false);
      const state = (await p.send('state')) as { status: string; awareness: string[] };
      expect(state.status).toBe('relay');
      // presence crosses the relay through the same Awareness
      expect(state.awareness).toEqual(['desktop', 'phone']);
    }
  });

  it('signaling unreachable: both reach relay and sync', async () => {
    await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
    const signalingUrl = `ws://127.0.0.1:${await freePort()}/signal`; // nothing listens there
    // a long grace: the relay must come because signaling failed, not because the grace ran out
    const [a] = await bothOnRelay('test-conversation-nosignal', { signalingUrl, relayGraceMs: 60_000 });
    const state = (await a.send('state')) as { status: string };
    expect(state.status).toBe('relay');
  });
});

describe('the relay as mailbox', () => {
  it('A edits while B is offline, A leaves, B comes online and gets every edit', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
    const room = 'test-conversation-mailbox';
    const a = peer('phone');
    await a.send('push', { text: 'written before connecting' });
    await a.send('start', { serverUrl: server.url, room, relayGraceMs: 60_000 });
    // alone on the topic: the relay connects at once, without waiting for the grace period
    await a.waitStatus('relay');
    for (const text of ['m1', 'm2', 'm3']) await a.send('push', { text });
    await a.send('exit');
    const b = peer('desktop');
    await b.send('start', { serverUrl: server.url, room, relayGraceMs: 60_000 });
    await b.waitTexts(['written before connecting', 'm1', 'm2', 'm3']);
    await b.waitStatus('relay');
  });

  it('edits made peer to peer reach the relay when the last peer leaves, for the device that comes next', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
    const room = 'test-conversation-lastleaver';
    const [a, b] = [peer('phone'), peer('desktop')];
    const start = { serverUrl: server.url, room, relayGraceMs: 10_000, relayHoldMs: 300 };
    await Promise.all([a.send('start', start), b.send('start', start)]);
    await Promise.all([a, b].map((p) => p.waitFor((e) => e.ev === 'status' && e['status'] === 'webrtc' && e['relay'] === false, `${p.name} WebRTC only`)));
    await a.send('push', { text: 'p2p from phone' });
    await b.send('push', { text: 'p2p from desktop' });
    await a.waitTexts(['p2p from phone', 'p2p from desktop']);
    expect(await metric(server, 'sync_relay_updates_total')).toBe(0);
    const mark = a.mark;
    await b.send('exit'); // the desktop goes away; the phone is now alone with edits the relay never saw
    await a.waitStatus('relay', 'relay after the last peer left', 20_000, mark);
    await a.send('push', { text: 'while alone' });
    await a.send('exit');
    const c = peer('tablet');
    await c.send('start', { serverUrl: server.url, room });
    await c.waitTexts(['p2p from phone', 'p2p from desktop', 'while alone']);
  });
});
