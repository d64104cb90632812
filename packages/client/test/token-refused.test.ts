/**
 * A token the server refused (4401/4403) is not presented again on /signal and /relay, as on
 * /sealed (src/attempt-pacer.ts): the next attempt waits for getToken() to return another one.
 * Here getToken() first keeps returning a cached token for another room (as an app whose cache
 * predates joining this one), then the right one: the server sees the stale token once per path,
 * and the device then connects.
 */
import { expect, it } from 'vitest';
import { TEST_SECRET } from '../../../test/helpers/server.js';
import { devicesPerTest } from './helpers/devices.js';
import { metric } from './helpers/metrics.js';

const { scope, peer } = devicesPerTest();

interface PeerState {
  sockets: Array<{ path: string; sub: string | undefined }>;
}

it('/signal and /relay: a refused token is presented once, then the next one from getToken() connects', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
  const room = 'test-conversation-refused-token';
  const p = peer('device', { STALE_TOKEN_CALLS: '6', STALE_TOKEN_ROOMS: 'test-conversation-someone-else' });
  await p.send('start', { serverUrl: server.url, room, relayGraceMs: 0 });
  await p.waitFor((e) => e.ev === 'error' && e['source'] === 'signaling' && e['code'] === 4403, 'signaling error 4403');
  await p.waitFor((e) => e.ev === 'error' && e['source'] === 'relay' && e['code'] === 4403, 'relay error 4403');
  // every stale token handed out, then a socket with a right one: alone on the topic, on the relay
  await p.waitFor((e) => e.ev === 'token' && e['stale'] === undefined, 'a token for the room', 30_000);
  await p.waitStatus('relay', 'relay with the right token', 30_000);
  const refused = (endpoint: string): Promise<number> => metric(server, `sync_auth_failures_total{endpoint="${endpoint}",reason="room_not_covered"}`);
  expect(await refused('signal')).toBe(1);
  expect(await refused('relay')).toBe(1);
  const state = (await p.send('state')) as PeerState;
  const stale = (path: string): number => state.sockets.filter((s) => s.path === path && s.sub === 'device-stale').length;
  expect(stale('/signal')).toBe(1);
  expect(stale(`/relay/${room}`)).toBe(1);
  expect(p.events.filter((e) => e.ev === 'error' && e['code'] === 4403)).toHaveLength(2);
});

it('a refused token that getToken() keeps returning is not presented again when it nears or passes its expiry', async () => {
  // The app caches one token (SAME_TOKEN) for another room, valid 4 s: the gate armed a refresh
  // for it at the attempt, and a refresh used to fetch and present it again at once, past the
  // back-off and the refused-token check (a reconnect storm once it had expired).
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
  const room = 'test-conversation-refused-cached';
  const p = peer('device', { SAME_TOKEN: '1', TOKEN_TTL: '4', TOKEN_ROOMS: 'test-conversation-someone-else' });
  await p.send('start', { serverUrl: server.url, room, relayGraceMs: 0, blockWebrtc: true });
  await p.waitFor((e) => e.ev === 'error' && e['source'] === 'relay' && e['code'] === 4403, 'relay error 4403');
  // four paced retries (0.5 + 1 + 2 + 4 s), each getToken() answering the refused token: the
  // token's refresh point (2 s) and its expiry (4 s) are behind us by then
  let skips = 0;
  await p.waitFor((e) => e.ev === 'pace' && e['path'] === 'relay' && e['step'] === 'skip' && ++skips === 4, 'four skipped retries on /relay', 30_000);
  const state = (await p.send('state')) as PeerState;
  expect(state.sockets.filter((s) => s.path === `/relay/${room}`)).toHaveLength(1);
  expect(await metric(server, `sync_auth_failures_total{endpoint="relay",reason="room_not_covered"}`)).toBe(1);
  expect(p.events.filter((e) => e.ev === 'error' && e['source'] === 'relay' && e['code'] === 4403)).toHaveLength(1);
});
