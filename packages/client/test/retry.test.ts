/**
 * Retry discipline: a device whose token does not cover the room (removed from a conversation)
 * is refused by /signal and /relay. Each refusal is an `error` event with its source and code,
 * and the reconnects back off: a handful of getToken() calls and sockets in 10 s, not hundreds.
 */
import { expect, it } from 'vitest';
import { TEST_SECRET } from '../../../test/helpers/server.js';
import { devicesPerTest } from './helpers/devices.js';

const { scope, peer } = devicesPerTest();

interface PeerState {
  sockets: Array<{ path: string }>;
  tokenCalls: unknown[];
}

const WINDOW_MS = 10_000;

it('a token that does not cover the room: errors from signaling and relay, reconnects backed off', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
  const room = 'test-conversation-retry';
  const p = peer('removed', { TOKEN_ROOMS: 'test-conversation-someone-else' });
  await p.send('start', { serverUrl: server.url, room, relayGraceMs: 0 });
  const started = Date.now();
  await p.waitFor((e) => e.ev === 'error' && e['source'] === 'signaling' && e['code'] === 4403, 'signaling error 4403');
  await p.waitFor((e) => e.ev === 'error' && e['source'] === 'relay' && e['code'] === 4403, 'relay error 4403');
  // A measurement window, not a wait for an event: how many attempts 10 s of refusals cause.
  await new Promise((r) => setTimeout(r, Math.max(0, WINDOW_MS - (Date.now() - started))));
  const state = (await p.send('state')) as PeerState;
  const signaling = state.sockets.filter((s) => s.path === '/signal').length;
  const relay = state.sockets.filter((s) => s.path === `/relay/${room}`).length;
  // Back-off from 0.5–1 s doubling: at most 5 attempts per transport in 10 s (a first one, then 4 waits).
  expect(signaling).toBeGreaterThanOrEqual(2);
  expect(signaling).toBeLessThanOrEqual(6);
  expect(relay).toBeLessThanOrEqual(6);
  expect(state.tokenCalls.length).toBeLessThanOrEqual(14);
});
