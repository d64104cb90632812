/**
 * Sealed rooms with 20-second tokens for ~45 s: the sealed transport swaps its socket for one
 * with a fresh token before the token expires, with no visible status change, no edit lost and
 * nothing left unconfirmed (what was in flight at a swap is resent on the next socket).
 */
import { expect, it } from 'vitest';
import { TEST_SECRET } from '../../../test/helpers/server.js';
import { devicesPerTest } from './helpers/devices.js';
import type { PeerEvent } from './helpers/peer-process.js';

const { scope, peer } = devicesPerTest();

interface PeerState {
  sockets: Array<{ path: string; sub: string | undefined }>;
  sealedPending: number;
}

const RUN_MS = 45_000;
const EDIT_EVERY_MS = 1_500;
const ROOM = 'test-conversation-expiry-sealed';

it('20 s tokens: sealed sockets swapped with fresh tokens, status stays relay, every edit arrives and is acked', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
  const pair = [peer('sealed-a', { TOKEN_TTL: '20' }), peer('sealed-b', { TOKEN_TTL: '20' })];
  await Promise.all(pair.map((p) => p.send('start', { serverUrl: server.url, room: ROOM, blockWebrtc: true, relayGraceMs: 0, sealedKey: '22'.repeat(32) })));
  await Promise.all(pair.map((p) => p.waitStatus('relay')));
  const marks = pair.map((p) => p.mark);

  const texts: string[] = [];
  for (let i = 0; i * EDIT_EVERY_MS < RUN_MS; i++) {
    const text = `edit ${i}`;
    texts.push(text);
    await pair[i % 2]?.send('push', { text });
    await new Promise((r) => setTimeout(r, EDIT_EVERY_MS));
  }
  await Promise.all(pair.map((p) => p.waitTexts(texts)));
  const pendingZero = (e: PeerEvent) => e.ev === 'status' && e['pending'] === 0;
  await Promise.all(pair.map((p, i) => p.waitFor(pendingZero, 'pending 0', 10_000, p.events.length > 0 ? (marks[i] ?? 0) : 0)));

  for (const [i, p] of pair.entries()) {
    const statuses = p.events.slice(marks[i]).filter((e) => e.ev === 'status').map((e) => e['status']);
    expect(new Set(statuses), p.name).toEqual(new Set(['relay']));
    const state = (await p.send('state')) as PeerState;
    const sealed = state.sockets.filter((s) => s.path === `/sealed/${ROOM}`);
    // Each token is swapped at half its life (10 s): at least 4 sockets in 45 s, each with its own token.
    expect(sealed.length, `${p.name} sealed sockets`).toBeGreaterThanOrEqual(4);
    expect(new Set(sealed.map((s) => s.sub)).size, `${p.name} distinct tokens`).toBe(sealed.length);
    expect(state.sealedPending, `${p.name} unacked updates`).toBe(0);
  }
}, 120_000);
