/**
 * /relay closed 1009 (a frame over the server's RELAY_MAX_MESSAGE_BYTES): y-websocket cannot split
 * an update and sends what the relay lacks again at every reconnect, so it used to reconnect and
 * be refused again every few hundred milliseconds, silently. Now the 1009 is reported once
 * (`error {source: 'relay', code: 1009}`, as the sealed path reports it) and the reconnects wait
 * the client's back-off (src/attempt-pacer.ts): the sync before each 1009 does not count as proven.
 */
import { expect, it } from 'vitest';
import { TEST_SECRET } from '../../../test/helpers/server.js';
import { devicesPerTest } from './helpers/devices.js';
import { until } from './helpers/until.js';

const { scope, peer } = devicesPerTest();
const LIMIT = 20_000;

interface PeerState {
  sockets: Array<{ path: string }>;
}

it('a local edit over the relay limit: 1009 reported once, reconnects backed off', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET, RELAY_MAX_MESSAGE_BYTES: String(LIMIT), PERSIST_FLUSH_MS: '10' });
  const room = 'test-conversation-relay-too-big';
  const path = `/relay/${room}`;
  const d = peer('device');
  await d.send('start', { serverUrl: server.url, room, relayGraceMs: 0, blockWebrtc: true });
  await d.waitStatus('relay');
  const mark = d.mark;
  const sockets = async (): Promise<number> => ((await d.send('state')) as PeerState).sockets.filter((s) => s.path === path).length;
  const before = await sockets();
  const pushed = Date.now();
  await d.send('push', { text: 'x'.repeat(LIMIT + 10_000) });
  const err = await d.waitFor((e) => e.ev === 'error' && e['code'] === 1009, 'error 1009', 10_000, mark);
  expect(err['source']).toBe('relay');
  expect(String(err['message'])).toMatch(/too big/);
  // Three reconnects, each refused 1009 again: the back-off puts at least 0.5 + 1 + 2 s before
  // the third (without it, a reconnect follows each 1009 within ~200 ms).
  await until(async () => (await sockets()) >= before + 3, 'three relay reconnects', 20_000);
  expect(Date.now() - pushed).toBeGreaterThanOrEqual(3_400);
  expect(d.events.slice(mark).filter((e) => e.ev === 'error' && e['code'] === 1009)).toHaveLength(1);
});
