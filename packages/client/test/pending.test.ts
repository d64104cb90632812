/**
 * The status's `pending`: local changes nobody has confirmed. It rises while offline and returns
 * to 0 soon after the relay (first test) or a WebRTC peer (second test, no relay reachable)
 * confirmed them; edits made while connected are confirmed too. In a sealed room the relay
 * confirms by acking the envelopes it committed (third test).
 */
import { expect, it } from 'vitest';
import { freePort } from '../../../test/helpers/process.js';
import { TEST_SECRET } from '../../../test/helpers/server.js';
import { devicesPerTest } from './helpers/devices.js';
import type { PeerEvent, PeerProcess } from './helpers/peer-process.js';

const { scope, peer } = devicesPerTest();

const pendingIs = (n: number) => (e: PeerEvent) => e.ev === 'status' && e['pending'] === n;

/** Wait for `status` (synced), then for pending 0 within a second of it. */
async function confirmedAfter(p: PeerProcess, status: string): Promise<void> {
  const synced = await p.waitStatus(status, `status ${status}`, 30_000, p.mark);
  const since = p.events.indexOf(synced);
  await p.waitFor(pendingIs(0), `pending 0 within 1 s of ${status}`, 1_000, since);
}

/**
 * Two edits while the server is down (pending 2), then the server comes up: pending returns to 0
 * once the relay confirmed them, and an edit made online rises to 1 and returns to 0.
 */
async function offlineThenConfirmed(room: string, extra: Record<string, unknown> = {}): Promise<PeerProcess> {
  const port = await freePort();
  const start = { serverUrl: `http://127.0.0.1:${port}`, room, blockWebrtc: true, relayGraceMs: 0, ...extra };
  const a = peer('phone');
  await a.send('start', start);
  await a.send('push', { text: 'one' });
  await a.send('push', { text: 'two' });
  await a.waitFor(pendingIs(2), 'pending 2 while offline');
  expect(a.events.filter((e) => e.ev === 'status').every((e) => e['status'] !== 'relay')).toBe(true);

  await scope.start({ AUTH_SECRET: TEST_SECRET, PORT: String(port) });
  await confirmedAfter(a, 'relay');

  const mark = a.mark;
  await a.send('push', { text: 'three' });
  await a.waitFor(pendingIs(1), 'pending 1 after an edit online', 5_000, mark);
  await a.waitFor(pendingIs(0), 'pending 0 again', 5_000, mark);
  return a;
}

it('relay: pending counts offline edits and returns to 0 once the relay holds them', async () => {
  await offlineThenConfirmed('test-conversation-pending');
});

it('WebRTC: a peer confirms what was edited before it came (no relay reachable)', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
  // The relay and /turn-credentials are on a port nobody listens on; only /signal works.
  const start = { serverUrl: `http://127.0.0.1:${await freePort()}`, signalingUrl: `${server.wsUrl}/signal`, room: 'test-conversation-pending-rtc', relayGraceMs: 0 };
  const a = peer('phone');
  await a.send('start', start);
  await a.send('push', { text: 'alone' });
  await a.waitFor(pendingIs(1), 'pending 1 while alone');
  const b = peer('desktop');
  await b.send('start', start);
  await confirmedAfter(a, 'webrtc');
  await b.waitTexts(['alone']);
});

it('sealed relay: pending counts offline edits and returns to 0 once the server acked them', async () => {
  const a = await offlineThenConfirmed('test-conversation-pending-sealed', { sealedKey: '11'.repeat(32) });
  expect((await a.send('state')) as { sealedPending: number }).toMatchObject({ sealedPending: 0 });
});

for (const sealed of [false, true]) {
  it(`${sealed ? 'sealed' : 'plain'} relay, read-scope token: the server drops the edit, so pending stays 1`, async () => {
    await scope.start({ AUTH_SECRET: TEST_SECRET });
    const room = `test-conversation-pending-read-${sealed ? 'sealed' : 'plain'}`;
    const start = { serverUrl: scope.current.url, room, blockWebrtc: true, relayGraceMs: 0, ...(sealed ? { sealedKey: '12'.repeat(32) } : {}) };
    const r = peer('reader', { TOKEN_SCOPE: 'read' });
    await r.send('start', start);
    await r.waitStatus('relay');
    const mark = r.mark;
    await r.send('push', { text: 'only here' });
    await r.waitFor(pendingIs(1), 'pending 1', 5_000, mark);
    // the server did drop it: a device with a write token gets nothing
    const w = peer('writer');
    await w.send('start', start);
    await w.waitStatus('relay');
    await w.send('push', { text: 'from the writer' });
    await w.waitTexts(['from the writer']);
    // the server answered the reader's edit (a confirmation, if any) on the reader's socket before
    // it relayed the writer's later edit there: once that edit arrived, no confirmation can follow
    await r.waitTexts(['from the writer', 'only here']);
    expect(r.events.slice(mark).some(pendingIs(0))).toBe(false);
    expect(((await w.send('state')) as { texts: string[] }).texts).toEqual(['from the writer']);
  });
}
