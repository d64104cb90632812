/**
 * The pending count after a restart does not depend on when its last write landed: with the
 * count's write lost (a page reloaded or an app killed right after an edit), an edit stored in
 * the document still counts as pending; a document equal to the last confirmed one does not.
 */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import * as Y from 'yjs';
import { freePort } from '../../../test/helpers/process.js';
import { SyncProvider } from '../src/index.js';
import { updateLogPersistence } from '../src/persistence/update-log.js';
import type { UpdateLogStore } from '../src/persistence/types.js';
import { confirmedSnapshot } from '../src/pending-restore.js';

// The ws that y-webrtc resolves (as test/fixtures/peer.ts does).
const WebSocket: unknown = createRequire(resolve('node_modules/y-webrtc/package.json'))('ws').WebSocket;
const providers: SyncProvider[] = [];
afterEach(() => {
  for (const p of providers.splice(0)) p.destroy();
});

/** An in-memory store that loses every write of `lost` (as a kill before that write would). */
function memoryStore(lost: string): UpdateLogStore {
  const entries: Uint8Array[] = [];
  const meta = new Map<string, Uint8Array>();
  return {
    load: () => [...entries],
    append: (u) => void entries.push(u),
    replaceAll: (s) => void entries.splice(0, entries.length, s),
    getMeta: (k) => meta.get(k),
    setMeta: (k, v) => void (k === lost ? undefined : meta.set(k, v)),
    close: () => undefined,
  };
}

async function offlineProvider(doc: Y.Doc, store: UpdateLogStore): Promise<SyncProvider> {
  const serverUrl = `http://127.0.0.1:${await freePort()}`;
  const p = new SyncProvider(doc, { serverUrl, room: 'test-conversation-reload', WebSocket, persistence: updateLogPersistence(store), relayGraceMs: 0 });
  providers.push(p);
  return p;
}

const pendingOf = (p: SyncProvider): Promise<number> =>
  new Promise((done) => {
    // The status after the persistence loaded (the provider emits one once its transports exist).
    const check = (): void => {
      if (p.webrtc) done((p as unknown as { pending: { pending: number } }).pending.pending);
      else setTimeout(check, 10);
    };
    check();
  });

it('an edit whose pending count was never written still counts after a restart', async () => {
  const store = memoryStore('sync-suite:pending');
  const doc = new Y.Doc();
  const first = await offlineProvider(doc, store);
  doc.getArray<string>('m').push(['written offline']);
  expect(await pendingOf(first)).toBe(1);
  first.destroy();

  const reloaded = new Y.Doc();
  const again = await offlineProvider(reloaded, store);
  expect(await pendingOf(again)).toBe(1);
  expect(reloaded.getArray<string>('m').toArray()).toEqual(['written offline']);
});

it('a document equal to the last confirmed one restarts with nothing pending', async () => {
  const store = memoryStore('none');
  const doc = new Y.Doc();
  doc.getArray<string>('m').push(['confirmed earlier']);
  await store.append(Y.encodeStateAsUpdate(doc));
  await store.setMeta('sync-suite:pending', new TextEncoder().encode('0'));
  await store.setMeta('sync-suite:confirmed', confirmedSnapshot(doc));
  const reloaded = new Y.Doc();
  expect(await pendingOf(await offlineProvider(reloaded, store))).toBe(0);
  expect(reloaded.getArray<string>('m').toArray()).toEqual(['confirmed earlier']);
});
