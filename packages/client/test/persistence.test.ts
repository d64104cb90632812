/**
 * Offline edits survive a crash: a device (its own process, sqlitePersistence) edits while the
 * server is down, is killed with SIGKILL, restarts still offline and finds its edits on disk,
 * edits again; then the server comes up and another device receives every edit.
 */
import { join } from 'node:path';
import { expect, it } from 'vitest';
import * as Y from 'yjs';
import { freePort } from '../../../test/helpers/process.js';
import { TEST_SECRET } from '../../../test/helpers/server.js';
import { updateLogPersistence } from '../src/persistence/update-log.js';
import type { UpdateLogStore } from '../src/persistence/types.js';
import { devicesPerTest } from './helpers/devices.js';
import { tempDirPerTest } from './helpers/temp-dir.js';

const tempDir = tempDirPerTest('client-persist-');
const { scope, peer } = devicesPerTest();

it('edits made offline survive SIGKILL and a restart, then reach another device', async () => {
  const file = join(tempDir(), 'app.db');
  const port = await freePort();
  const serverUrl = `http://127.0.0.1:${port}`;
  const room = 'test-conversation-persist';
  const start = { serverUrl, room, relayGraceMs: 500 };

  const first = peer('phone', { PERSIST_FILE: file });
  await first.send('start', start);
  await first.send('push', { text: 'written offline' });
  await first.send('stored'); // on disk (the kill must not race the store's load and write)
  await first.close(); // SIGKILL

  const again = peer('phone-again', { PERSIST_FILE: file });
  await again.send('start', start);
  await again.waitTexts(['written offline']);
  await again.send('push', { text: 'written after the restart' });

  await scope.start({ AUTH_SECRET: TEST_SECRET, PORT: String(port) });
  const other = peer('desktop');
  await other.send('start', start);
  await other.waitTexts(['written offline', 'written after the restart'], 40_000);
});

it('updateLogPersistence stores every update and compacts the log into one snapshot', async () => {
  const entries: Uint8Array[] = [];
  const meta = new Map<string, Uint8Array>();
  const store: UpdateLogStore = {
    load: () => [...entries],
    append: (u) => void entries.push(u),
    replaceAll: (s) => void entries.splice(0, entries.length, s),
    getMeta: (k) => meta.get(k),
    setMeta: (k, v) => void meta.set(k, v),
    close: () => undefined,
  };
  const doc = new Y.Doc();
  const persistence = updateLogPersistence(store, { compactAfter: 10 });
  await persistence.open(doc, (err) => {
    throw err;
  });
  for (let i = 0; i < 25; i++) doc.getArray<number>('a').push([i]);
  await persistence.setMeta('confirmed', new Uint8Array([7]));
  expect(entries.length).toBeLessThan(10);
  expect([...((await persistence.getMeta('confirmed')) ?? [])]).toEqual([7]);
  await persistence.close();

  const reloaded = new Y.Doc();
  await updateLogPersistence(store).open(reloaded, () => undefined);
  expect(reloaded.getArray<number>('a').toArray()).toEqual([...Array(25).keys()]);
});
