/**
 * Closes that refuse what the device sends (docs/errors.md): 4507 (the room's ROOM_MAX_BYTES),
 * 4413 (an update over a cost limit) on /relay, 4507 on /sealed. The socket synced before the
 * refusal, so it counted as accepted and the next one opened at once, resending the same content
 * (a sync sends what the server lacks): a reconnect storm, each refusal reported. Now they are
 * treated like 1009 (src/attempt-pacer.ts refusedContent): reported once per run, and each next
 * attempt waits the growing back-off. The device reports its retry decisions (`pace` events), so
 * the test checks the waits it decided rather than time windows; the server counts the refusals.
 *
 * And a run ends when the relay is seen accepting the document (src/relay-transport.ts accepted):
 * a 1009 after that is reported again.
 */
import { expect, it } from 'vitest';
import { TEST_SECRET } from '../../../test/helpers/server.js';
import { devicesPerTest } from './helpers/devices.js';
import { metric } from './helpers/metrics.js';
import type { PeerEvent, PeerProcess } from './helpers/peer-process.js';

const { scope, peer } = devicesPerTest();
const KEY = '55'.repeat(32);

const paceOf = (p: PeerProcess, path: string, since: number): PeerEvent[] => p.events.slice(since).filter((e) => e.ev === 'pace' && e['path'] === path);

interface Case {
  name: string;
  env: Record<string, string>;
  sealed: boolean;
  code: number;
  /** the server's count of these refusals */
  refusals: string;
}

const cases: Case[] = [
  { name: 'relay 4507 (ROOM_MAX_BYTES)', env: { ROOM_MAX_BYTES: '2000' }, sealed: false, code: 4507, refusals: 'sync_quota_refusals_total{quota="room_bytes"}' },
  {
    name: 'relay 4413 (RELAY_MAX_UPDATE_CONTENT_BYTES)',
    env: { RELAY_MAX_UPDATE_CONTENT_BYTES: '2000' },
    sealed: false,
    code: 4413,
    refusals: 'sync_rejected_messages_total{endpoint="relay",reason="update_content_bytes"}',
  },
  { name: 'sealed 4507 (ROOM_MAX_BYTES)', env: { ROOM_MAX_BYTES: '2000' }, sealed: true, code: 4507, refusals: 'sync_quota_refusals_total{quota="room_bytes"}' },
];

for (const c of cases) {
  it(`${c.name}: reported once, each reconnect after the growing back-off`, async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, PERSIST_FLUSH_MS: '10', LOG_LEVEL: 'warn', ...c.env });
    const room = `test-conversation-refused-${c.code}-${c.sealed ? 'sealed' : 'plain'}`;
    const path = c.sealed ? 'sealed' : 'relay';
    const d = peer('device');
    await d.send('start', { serverUrl: server.url, room, relayGraceMs: 0, blockWebrtc: true, ...(c.sealed ? { sealedKey: KEY } : {}) });
    await d.waitStatus('relay');
    const mark = d.mark;
    await d.send('push', { text: 'x'.repeat(5_000) });
    const err = await d.waitFor((e) => e.ev === 'error' && e['code'] === c.code, `error ${c.code}`, 10_000, mark);
    expect(err['source']).toBe('relay');
    // three reconnects, each refused again: each waited its back-off first (0.5–1 s, 1–2 s, 2–4 s)
    let attempts = 0;
    await d.waitFor((e) => e.ev === 'pace' && e['path'] === path && e['step'] === 'attempt' && ++attempts === 3, 'three reconnects', 30_000, mark);
    const waits = paceOf(d, path, mark).filter((e) => e['step'] === 'wait').map((e) => e['ms'] as number);
    expect(waits.length).toBeGreaterThanOrEqual(3);
    for (let i = 0; i < 3; i++) expect(waits[i]).toBeGreaterThanOrEqual(500 * 2 ** i);
    // the server refused the first socket and the two reconnects before the third: same content
    expect(await metric(server, c.refusals)).toBeGreaterThanOrEqual(3);
    expect(d.events.slice(mark).filter((e) => e.ev === 'error' && e['code'] === c.code)).toHaveLength(1);
  });
}

it('relay: a 1009 after the relay accepted the document again starts a new run, reported again', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET, RELAY_MAX_MESSAGE_BYTES: '20000', LOG_LEVEL: 'warn' });
  const room = 'test-conversation-refused-1009-again';
  const d = peer('device');
  await d.send('start', { serverUrl: server.url, room, relayGraceMs: 0, blockWebrtc: true });
  await d.waitStatus('relay');
  const is1009 = (e: PeerEvent): boolean => e.ev === 'error' && e['code'] === 1009;
  // a presence state over the limit: every socket sends it again on opening
  const mark = d.mark;
  await d.send('presence', { note: 'x'.repeat(30_000) });
  await d.waitFor(is1009, 'first 1009', 10_000, mark);
  // smaller now: the next socket (after the back-off) is accepted and stays open
  await d.send('presence', { note: 'small' });
  await d.waitFor((e) => e.ev === 'pace' && e['path'] === 'relay' && e['step'] === 'accepted', 'the relay accepts the document', 20_000, mark);
  const again = d.mark;
  await d.send('presence', { note: 'y'.repeat(30_000) });
  // the close's retry decision is taken after its report
  await d.waitFor((e) => e.ev === 'pace' && e['path'] === 'relay' && e['step'] === 'wait', 'retry decision after the second 1009', 10_000, again);
  expect(d.events.slice(again).filter(is1009)).toHaveLength(1);
  expect(d.events.slice(mark).filter(is1009)).toHaveLength(2);
  expect(await metric(server, 'sync_rejected_messages_total{endpoint="relay",reason="too_big"}')).toBeGreaterThanOrEqual(2);
});
