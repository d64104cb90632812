/**
 * Sealed rooms and the provider's policy: key rotation (reads accept previousKeys; the next
 * snapshot is sealed with the new key, so a device holding only the new key loads everything),
 * and the last device to lose its WebRTC peers hands what it holds to the sealed relay.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TEST_SECRET } from '../../../test/helpers/server.js';
import { sealedRegistry } from '../../../apps/server/src/routes/sealed/index.js';
import { devicesPerTest } from './helpers/devices.js';
import type { PeerProcess } from './helpers/peer-process.js';
import { metric } from './helpers/metrics.js';
import { until } from './helpers/until.js';

const { scope, peer } = devicesPerTest();

describe('sealed key rotation', () => {
  it('a rotated device reads old entries; its snapshot uses the new key; a device with only the new key then loads everything', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn', SEALED_SNAPSHOT_AFTER: '6', PERSIST_FLUSH_MS: '20' });
    const room = 'test-conversation-sealed-rotation';
    const [k1, k2] = [randomBytes(32).toString('hex'), randomBytes(32).toString('hex')];
    const base = { serverUrl: server.url, room, relayGraceMs: 300, blockWebrtc: true };
    // one entry per push (each acknowledged before the next), so the snapshot request comes when expected
    const pushAcked = async (p: PeerProcess, text: string): Promise<void> => {
      await p.send('push', { text });
      await until(async () => ((await p.send('state')) as { sealedPending: number }).sealedPending === 0, `${text} committed`);
    };
    const before = ['old 1', 'old 2', 'old 3', 'old 4'];
    const a = peer('phone');
    await a.send('start', { ...base, sealedKey: k1 });
    await a.waitStatus('relay');
    for (const text of before) await pushAcked(a, text);
    await a.send('exit');

    const b = peer('desktop');
    await b.send('start', { ...base, sealedKey: k2, previousKeys: [k1] });
    await b.waitTexts(before);
    const after = ['new 1', 'new 2', 'new 3'];
    for (const text of after) await pushAcked(b, text);
    const store = sealedRegistry(server.app)?.store;
    if (!store) throw new Error('no sealed store');
    // the snapshot (asked past 6 entries) covers every old-key entry
    await until(async () => (await store.stats(room)).snapshotCovers >= before.length, 'a snapshot covering the old entries');
    expect(b.events.some((e) => e.ev === 'error')).toBe(false);

    const c = peer('tablet');
    await c.send('start', { ...base, sealedKey: k2 });
    await c.waitTexts([...before, ...after]);
    expect(c.events.filter((e) => e.ev === 'error')).toEqual([]);
  });
});

describe('sealed handover', () => {
  it('edits made peer to peer reach the sealed relay when the last peer leaves, for the device that comes next', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
    const room = 'test-conversation-sealed-lastleaver';
    const key = randomBytes(32).toString('hex');
    const [a, b] = [peer('phone'), peer('desktop')];
    const start = { serverUrl: server.url, room, relayGraceMs: 10_000, relayHoldMs: 300, sealedKey: key };
    await Promise.all([a.send('start', start), b.send('start', start)]);
    await Promise.all([a, b].map((p) => p.waitFor((e) => e.ev === 'status' && e['status'] === 'webrtc' && e['relay'] === false, `${p.name} WebRTC only`)));
    const sealedBefore = await metric(server, 'sync_sealed_envelopes_total');
    await a.send('push', { text: 'p2p from phone' });
    await b.send('push', { text: 'p2p from desktop' });
    await a.waitTexts(['p2p from phone', 'p2p from desktop']);
    expect(await metric(server, 'sync_sealed_envelopes_total')).toBe(sealedBefore); // nothing went through the server
    const mark = a.mark;
    await b.send('exit'); // the desktop goes away; the phone is alone with edits the relay never saw
    await a.waitStatus('relay', 'sealed relay after the last peer left', 20_000, mark);
    await a.send('push', { text: 'while alone' });
    await a.send('exit');
    const c = peer('tablet');
    await c.send('start', { ...start, relayGraceMs: 300 });
    await c.waitTexts(['p2p from phone', 'p2p from desktop', 'while alone']);
  });
});
