/**
 * A sealed room with sqlitePersistence: a restarted device resumes from its stored cursor (it
 * does not read the whole log again) and seals only what the server lacks (not its whole
 * document again); an edit made offline survives SIGKILL and reaches the other device.
 */
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { freePort } from '../../../test/helpers/process.js';
import { TEST_SECRET } from '../../../test/helpers/server.js';
import { devicesPerTest } from './helpers/devices.js';
import type { PeerEvent } from './helpers/peer-process.js';
import { tempDirPerTest } from './helpers/temp-dir.js';

const tempDir = tempDirPerTest('client-sealed-persist-');
const { scope, peer } = devicesPerTest();

interface SealedState {
  sealedPending: number;
  sealedStats: { applied: number; sealed: number; sealedBytes: number };
  docBytes: number;
}

const COUNT = 40;
const pendingIs = (n: number) => (e: PeerEvent) => e.ev === 'status' && e['pending'] === n;

it('sealed + persistence: resume from the stored cursor, reseal only what the server lacks, offline edit survives SIGKILL', async () => {
  const file = join(tempDir(), 'app.db');
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
  const room = 'test-conversation-sealed-persist';
  const online = { serverUrl: server.url, room, blockWebrtc: true, relayGraceMs: 0, sealedKey: '33'.repeat(32) };
  // Offline: the same room through a port nobody listens on.
  const offline = { ...online, serverUrl: `http://127.0.0.1:${await freePort()}` };
  const theirs = Array.from({ length: COUNT }, (_, i) => `desktop ${i}`);

  const desktop = peer('desktop');
  await desktop.send('start', online);
  await desktop.send('pushMany', { prefix: 'desktop ', count: COUNT });
  const phone = peer('phone', { PERSIST_FILE: file });
  await phone.send('start', online);
  await phone.waitTexts(theirs);
  const pushed = phone.mark;
  await phone.send('push', { text: 'phone online' });
  await phone.waitFor(pendingIs(1), 'phone pending', 5_000, pushed);
  await phone.waitFor(pendingIs(0), 'phone confirmed', 10_000, pushed);
  await desktop.waitTexts([...theirs, 'phone online']);
  const first = (await phone.send('state')) as SealedState;
  expect(first.sealedStats.applied).toBeGreaterThan(0);
  await phone.close(); // SIGKILL

  const away = peer('phone-offline', { PERSIST_FILE: file });
  await away.send('start', offline);
  await away.waitTexts([...theirs, 'phone online']);
  await away.send('push', { text: 'written offline' });
  await away.waitFor(pendingIs(1), 'pending 1 offline');
  await away.send('state'); // the edit is stored once the reply comes (the store writes in order)
  await away.close(); // SIGKILL

  const back = peer('phone-again', { PERSIST_FILE: file });
  const since = back.mark;
  await back.send('start', online);
  await back.waitFor(pendingIs(1), 'phone-again: the offline edit still pending', 10_000, since);
  await desktop.waitTexts([...theirs, 'phone online', 'written offline'], 30_000);
  await back.waitFor(pendingIs(0), 'phone-again confirmed', 30_000, since);
  const again = (await back.send('state')) as SealedState;
  // Nothing read again from the log, and only the offline edit sealed (not the whole document).
  expect(again.sealedStats.applied).toBe(0);
  expect(again.sealedStats.sealedBytes).toBeLessThan(again.docBytes / 4);
  expect(again.sealedPending).toBe(0);
}, 90_000);
