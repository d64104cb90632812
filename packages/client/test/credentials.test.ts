/**
 * Tokens and ICE servers: ICE servers come from GET /turn-credentials (TURN entries with REST
 * credentials when the server has TURN_SECRET), and getToken() is called again before the
 * token expires, refreshing the ICE servers given to new WebRTC connections.
 */
import { afterEach, expect, it } from 'vitest';
import { serverPerTest, TEST_SECRET } from '../../../test/helpers/server.js';
import { PeerProcess } from './helpers/peer-process.js';

const scope = serverPerTest();
afterEach(() => scope.close());

interface State {
  tokenCalls: Array<{ at: number; exp: number }>;
  iceServers: Array<{ urls: string[]; username?: string; credential?: string }>;
}

it('refreshes the token before it expires, and the TURN credentials with it', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET, TURN_SECRET: 'turn-secret-for-the-client-test-0123', TURN_URLS: 'turn:127.0.0.1:3478', LOG_LEVEL: 'warn' });
  const a = new PeerProcess('phone', { TOKEN_SECRET: TEST_SECRET, TOKEN_TTL: '4' });
  scope.track(a);
  await a.send('start', { serverUrl: server.url, room: 'test-conversation-tokens' });
  await a.waitStatus('relay'); // alone in the room
  const first = (await a.send('state')) as State;
  const turn = first.iceServers.find((s) => s.urls.includes('turn:127.0.0.1:3478'));
  expect(turn?.username).toMatch(/^\d+:phone-1$/);
  expect(first.iceServers.some((s) => s.urls.includes('stun:127.0.0.1:3478'))).toBe(true);

  // 4 s tokens: asked again half way (the margin is at most half a token's life)
  const calls = (await a.waitFor((e) => e.ev === 'token' && (e['calls'] as number) >= 4, '4 token calls', 15_000)) as unknown as { calls: number };
  expect(calls.calls).toBeGreaterThanOrEqual(4);
  const later = (await a.send('state')) as State;
  // Each scheduled refresh happened before the previous token expired. (The first calls are the
  // start-up call and the sockets' own; the timer's calls follow at ~2 s.)
  const timed = later.tokenCalls.filter((c, i) => i > 0 && c.at - (later.tokenCalls[i - 1]?.at ?? 0) > 1000);
  expect(timed.length).toBeGreaterThanOrEqual(1);
  for (const call of timed) {
    const before = later.tokenCalls[later.tokenCalls.indexOf(call) - 1] as { exp: number };
    expect(call.at).toBeLessThan(before.exp);
  }
  const newTurn = later.iceServers.find((s) => s.urls.includes('turn:127.0.0.1:3478'));
  expect(newTurn?.username).not.toBe(turn?.username);
});

it('reports a relay refusal (permission denied) as an error with its reason, not the token-carrying URL', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
  const a = new PeerProcess('phone', { TOKEN_SECRET: TEST_SECRET });
  scope.track(a);
  // The fixture's tokens cover test-conversation-*; this room is another type.
  await a.send('start', { serverUrl: server.url, room: 'test-assistant-not-mine' });
  // The permission-denied message (no close code) comes before the 4403 close.
  const refused = await a.waitFor((e) => e.ev === 'error' && e['source'] === 'relay' && e['code'] === undefined, 'relay permission denied');
  expect(String(refused['message'])).toMatch(/room|forbidden|not allowed|cover/i);
  expect(String(refused['message'])).not.toContain('token=');
});
