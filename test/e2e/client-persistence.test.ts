/**
 * Offline edits in a browser survive a reload: IndexedDB (indexedDbPersistence) keeps them and
 * their pending count, and they reach the relay once the server is up. Meta values are written
 * in transactions that also span the updates store, so IndexedDB commits them after the updates.
 */
import { expect, it } from 'vitest';
import { runInNetns } from '../helpers/netns.js';

interface Result {
  reloaded: string[];
  pendingAfterReload: number;
  readerTexts: string[];
  /** the scope of each transaction that wrote a meta value, after the reload */
  metaScopes: string[][];
}

it('Chromium: edit offline, reload offline (edit still there), go online: the relay gets every edit', async () => {
  const r = await runInNetns<Result>('test/e2e/fixtures/client-persist-netns.ts', [], { timeoutMs: 90_000 });
  expect(r.reloaded).toEqual(['before the reload']);
  expect(r.pendingAfterReload).toBe(1);
  expect([...r.readerTexts].sort()).toEqual(['after the reload', 'before the reload']);
  // Meta values (the pending count, the confirmed snapshot) commit after the updates before them.
  expect(r.metaScopes.length).toBeGreaterThan(0);
  for (const scope of r.metaScopes) expect(scope).toEqual(['custom', 'updates']);
});
