/**
 * A SyncProvider destroyed, then another for the same room with the same token in the same
 * process: y-webrtc keeps signaling connections in a process-wide map keyed by URL and removes
 * one on disconnect by reading its `url`, which the token gate (src/token-gate.ts) intercepts.
 * The second provider must get a fresh signaling connection and reach the server.
 */
import { expect, it } from 'vitest';
import { TEST_SECRET } from '../../../test/helpers/server.js';
import { devicesPerTest } from './helpers/devices.js';

const { scope, peer } = devicesPerTest();

it('a provider made after one for the same room and token was destroyed connects to signaling', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
  const p = peer('phone', { SAME_TOKEN: '1' });
  const start = { serverUrl: server.url, room: 'test-conversation-again' };
  await p.send('start', start);
  await p.waitFor((e) => e.ev === 'signaling' && e['conn'] === 1 && e['open'] === true, 'first signaling connection open');
  const mark = p.mark;
  await p.send('destroy');
  await p.send('start', start);
  // A new connection object: y-webrtc's map no longer held the destroyed one (1) for this URL.
  const first = await p.waitFor((e) => e.ev === 'signaling', 'second provider signaling', 10_000, mark);
  expect(first['conn']).toBe(2);
  await p.waitFor((e) => e.ev === 'signaling' && e['conn'] === 2 && e['open'] === true, 'second signaling connection open', 10_000, mark);
  // Both providers used the one token (the same signaling URL).
  const state = (await p.send('state')) as { tokenCalls: unknown[] };
  expect(state.tokenCalls).toHaveLength(1);
});
