/**
 * Retry discipline on the sealed path (as test/retry.test.ts for /signal and /relay): a server
 * that opens the socket and then refuses it (4409 room full, 4403 token does not cover the room)
 * is retried with the client's back-off, not ten times a second; a refused token is not tried
 * again: the next socket waits for getToken() to return another one.
 */
import { expect, it } from 'vitest';
import { TEST_SECRET } from '../../../test/helpers/server.js';
import { devicesPerTest } from './helpers/devices.js';
import { metric } from './helpers/metrics.js';
import type { PeerEvent } from './helpers/peer-process.js';
import { until } from './helpers/until.js';

const { scope, peer } = devicesPerTest();
const KEY = '33'.repeat(32);

interface PeerState {
  sockets: Array<{ path: string }>;
}

const WINDOW_MS = 8_000;

it('4409 after opening: sealed reconnects backed off (a handful of sockets in 8 s, not ~80)', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET, MAX_PEERS_PER_ROOM: '1' });
  const room = 'test-conversation-sealed-full';
  const a = peer('first');
  await a.send('start', { serverUrl: server.url, room, relayGraceMs: 0, blockWebrtc: true, sealedKey: KEY });
  await a.waitStatus('relay');
  const b = peer('second');
  await b.send('start', { serverUrl: server.url, room, relayGraceMs: 0, blockWebrtc: true, sealedKey: KEY });
  const started = Date.now();
  await b.waitFor((e) => e.ev === 'error' && e['source'] === 'relay' && e['code'] === 4409, 'sealed error 4409');
  // Wait for the third attempt: back-off from 0.5–1 s doubling puts at least 0.5 + 1 s before it
  // (without back-off it comes within milliseconds).
  const sockets = async (): Promise<number> => ((await b.send('state')) as PeerState).sockets.filter((s) => s.path === `/sealed/${room}`).length;
  await until(async () => (await sockets()) >= 3, 'a third sealed socket', WINDOW_MS);
  expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
  expect(await sockets()).toBe(3);
});

it('4403 with a token that never changes: one sealed socket, getToken() asked again at the back-off pace', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
  const room = 'test-conversation-sealed-removed';
  const p = peer('removed', { TOKEN_ROOMS: 'test-conversation-someone-else', SAME_TOKEN: '1' });
  await p.send('start', { serverUrl: server.url, room, relayGraceMs: 0, blockWebrtc: true, sealedKey: KEY });
  await p.waitFor((e) => e.ev === 'error' && e['source'] === 'relay' && e['code'] === 4403, 'sealed error 4403');
  // The sealed socket's retry decisions (src/attempt-pacer.ts, reported by the fixture): after the
  // refused first attempt, twice a back-off wait, getToken() asked again, and the same token not
  // presented (`skip`, where a retry with it would be an `attempt`).
  const isSealed = (e: PeerEvent): boolean => e.ev === 'pace' && e['path'] === 'sealed';
  const sealed = (): PeerEvent[] => p.events.filter(isSealed);
  let tries = 0;
  await p.waitFor((e) => isSealed(e) && e['step'] !== 'wait' && ++tries === 3, 'two sealed retries after the refused attempt', 20_000);
  expect(sealed().slice(0, 5).map((e) => e['step'])).toEqual(['attempt', 'wait', 'skip', 'wait', 'skip']);
  const waits = sealed().filter((e) => e['step'] === 'wait').map((e) => e['ms'] as number);
  expect(waits[0]).toBeGreaterThanOrEqual(500);
  expect(waits[1]).toBeGreaterThanOrEqual(1000);
  // the server saw the refused token once: one sealed socket, one refusal
  expect(await metric(server, 'sync_auth_failures_total{endpoint="sealed"}')).toBe(1);
  const state = (await p.send('state')) as PeerState;
  expect(state.sockets.filter((s) => s.path === `/sealed/${room}`).length).toBe(1);
  expect(p.events.filter((e) => e.ev === 'error' && e['source'] === 'relay').length).toBe(1);
});
