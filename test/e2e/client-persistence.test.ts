/**
 * Offline edits in a browser survive a reload: IndexedDB (indexedDbPersistence) keeps them and
 * their pending count, and they reach the relay once the server is up.
 */
import { expect, it } from 'vitest';
import { runInNetns } from '../helpers/netns.js';

interface Result {
  reloaded: string[];
  pendingAfterReload: number;
  readerTexts: string[];
}

it('Chromium: edit offline, reload offline (edit still there), go online: the relay gets every edit', async () => {
  const r = await runInNetns<Result>('test/e2e/fixtures/client-persist-netns.ts', [], { timeoutMs: 90_000 });
  expect(r.reloaded).toEqual(['before the reload']);
  expect(r.pendingAfterReload).toBe(1);
  expect([...r.readerTexts].sort()).toEqual(['after the reload', 'before the reload']);
});
