/**
 * A 1009 caused by a presence frame (the server's presence limit, SEALED_MAX_PRESENCE_BYTES, is
 * far below its message limit) lowers only the presence limit: an update larger than that
 * presence is still sent afterwards, not reported as over the server's message limit.
 */
import { expect, it } from 'vitest';
import { TEST_SECRET } from '../../../test/helpers/server.js';
import { sealedRegistry } from '../../../apps/server/src/routes/sealed/index.js';
import { devicesPerTest } from './helpers/devices.js';
import { until } from './helpers/until.js';

const { scope, peer } = devicesPerTest();
const KEY = '56'.repeat(32);

it('presence over SEALED_MAX_PRESENCE_BYTES closes 1009; a 30 kB edit after it is still sent and stored', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET, RELAY_MAX_MESSAGE_BYTES: '100000', SEALED_MAX_PRESENCE_BYTES: '4000', PERSIST_FLUSH_MS: '10' });
  const room = 'test-conversation-presence-too-big';
  const a = peer('presence-big');
  await a.send('start', { serverUrl: server.url, room, relayGraceMs: 0, blockWebrtc: true, sealedKey: KEY });
  await a.waitStatus('relay');
  let mark = a.mark;
  await a.send('presence', { note: 'p'.repeat(6000) });
  await a.waitFor((e) => e.ev === 'error' && e['code'] === 1009, 'the presence refused (1009)', 20_000, mark);
  mark = a.mark;
  await a.waitStatus('relay', 'back on the relay', 20_000, mark);
  mark = a.mark;
  await a.send('push', { text: 'x'.repeat(30_000) });
  const store = sealedRegistry(server.app)?.store;
  if (!store) throw new Error('no sealed store');
  // either the edit is stored (fixed) or the device reports it over the limit (the update cap was lowered)
  await until(
    async () => (await store.stats(room)).head >= 1 || a.events.slice(mark).some((e) => e.ev === 'error' && /update of \d+ bytes is over/.test(String(e['message']))),
    'the edit stored or reported too big',
  );
  expect(a.events.slice(mark).filter((e) => e.ev === 'error' && /update of \d+ bytes is over/.test(String(e['message'])))).toEqual([]);
  expect((await store.stats(room)).head).toBeGreaterThanOrEqual(1);
  expect(a.events.filter((e) => e.ev === 'error' && e['code'] === 1009)).toHaveLength(1);
});
