/**
 * A sealed update over the server's message limit (RELAY_MAX_MESSAGE_BYTES, here 20 kB) does not
 * wedge the device: it is reported once and kept (pending, never dropped); nothing is merged into
 * it; later edits are still sent. The server says its limit in `welcome`, so whether the app
 * gives `maxMessageBytes` or not, or gives one above the server's, nothing too big is ever sent
 * (no 1009: before the limit was in welcome, a device without the option learned it from one
 * 1009 close, and one with a higher option was closed 1009 too).
 */
import { expect, it } from 'vitest';
import { TEST_SECRET } from '../../../test/helpers/server.js';
import { sealedRegistry } from '../../../apps/server/src/routes/sealed/index.js';
import { devicesPerTest } from './helpers/devices.js';
import { metric } from './helpers/metrics.js';
import { until } from './helpers/until.js';

const { scope, peer } = devicesPerTest();
const KEY = '55'.repeat(32);
const LIMIT = 20_000;

interface PeerState {
  sockets: Array<{ path: string }>;
  sealedPending: number;
}

const CASES: Array<[string, number | undefined]> = [
  ['no maxMessageBytes: the limit from welcome', undefined],
  ['maxMessageBytes = the limit', LIMIT],
  ['maxMessageBytes above the limit: the least of both', 1_000_000],
];

for (const [name, option] of CASES) {
  it(`a 30 kB offline edit, limit 20 kB, ${name}: reported once, kept pending, later edits still sent, no 1009`, async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, RELAY_MAX_MESSAGE_BYTES: String(LIMIT), PERSIST_FLUSH_MS: '10' });
    const room = `test-conversation-too-big-${option ?? 'welcome'}`;
    const a = peer('big');
    await a.send('push', { text: 'x'.repeat(30_000) });
    await a.send('start', { serverUrl: server.url, room, relayGraceMs: 0, blockWebrtc: true, sealedKey: KEY, ...(option !== undefined ? { maxMessageBytes: option } : {}) });
    await a.waitFor((e) => e.ev === 'error' && e['source'] === 'sealed' && /over the server's message limit/.test(String(e['message'])), 'the big update reported');
    await a.waitStatus('relay');
    const mark = a.mark;
    await a.send('push', { text: 'small, after it' });
    const store = sealedRegistry(server.app)?.store;
    if (!store) throw new Error('no sealed store');
    await until(async () => (await store.stats(room)).head >= 1, 'the small edit stored');
    // a later round trip on the same socket: a wedged device would have sent the big envelope
    // again ahead of it (and been closed 1009) before this edit could be stored
    await a.send('push', { text: 'second small edit' });
    await until(async () => (await store.stats(room)).head >= 2, 'the second small edit stored');
    expect(await metric(server, 'sync_rejected_messages_total')).toBe(0);
    const errors = a.events.filter((e) => e.ev === 'error');
    expect(errors.filter((e) => e['source'] === 'sealed')).toHaveLength(1);
    expect(errors.filter((e) => e['code'] === 1009)).toHaveLength(0);
    const state = (await a.send('state')) as PeerState;
    expect(state.sockets.filter((s) => s.path === `/sealed/${room}`)).toHaveLength(1);
    // the big edit is still on the device: the outbox holds it, and the edit made after it (whose
    // envelope was acked) is not counted as confirmed while the big one waits
    expect(state.sealedPending).toBeGreaterThanOrEqual(1);
    const one = a.events.findIndex((e, i) => i >= mark && e.ev === 'status' && e['pending'] === 1);
    expect(one).toBeGreaterThanOrEqual(0);
    expect(a.events.slice(one).some((e) => e.ev === 'status' && e['pending'] === 0)).toBe(false);
  });
}
