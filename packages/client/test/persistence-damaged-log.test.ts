/**
 * One damaged entry in an UpdateLogStore (a write torn by a kill, in a store an app implements).
 * Before, the whole log was set aside: the device started empty, its offline edits never left,
 * and nothing it did later was stored. Now (src/persistence/update-log.ts) only that entry is
 * skipped and reported once, the rest loads and goes up, storing goes on, and the log is
 * rewritten without it. Plain and sealed rooms; in-process server, real providers.
 */
import { afterEach, expect, it } from 'vitest';
import * as Y from 'yjs';
import { serverPerTest, TEST_SECRET } from '../../../test/helpers/server.js';
import { updateLogPersistence } from '../src/persistence/update-log.js';
import { device, MemStore, push, settled, texts, when } from './helpers/store-device.js';

const scope = serverPerTest();
afterEach(() => scope.close());

for (const sealed of [false, true]) {
  it(`${sealed ? 'sealed' : 'plain'}: a torn entry is skipped; the offline edits load and go up, later edits are stored`, async () => {
    const room = `test-conversation-torn-${sealed ? 's' : 'p'}`;
    const key = sealed ? new Uint8Array(32).fill(9) : undefined;
    // Edits made offline, stored, then a later write torn by a kill.
    const store = new MemStore();
    const offline = new Y.Doc();
    const persistence = updateLogPersistence(store);
    await persistence.open(offline, (err) => {
      throw err;
    });
    offline.getArray<string>('m').push(['offline-1']);
    offline.getArray<string>('m').push(['offline-2']);
    await persistence.close();
    expect(store.entries).toHaveLength(2);
    const whole = Y.encodeStateAsUpdate(offline);
    store.entries.push(whole.slice(0, whole.length - 3));

    const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
    const a = await device(scope, server.url, room, { ...(key ? { key } : {}), store });
    await when(() => texts(a.doc).length === 2, () => `the stored edits load (has ${JSON.stringify(texts(a.doc))}, errors ${JSON.stringify(a.errors)})`);
    expect(texts(a.doc)).toEqual(['offline-1', 'offline-2']);
    await when(() => settled(a), 'the offline edits confirmed by the relay');
    push(a, 'typed-after-restart');
    await when(() => store.texts().includes('typed-after-restart'), 'a later edit is stored');
    await when(() => settled(a), 'the later edit confirmed');
    expect(a.errors).toEqual([{ source: 'persistence', message: 'persistence: 1 of 3 stored entries did not load (damaged) and were skipped; the log is rewritten without them' }]);
    await a.stop();

    const b = await device(scope, server.url, room, { ...(key ? { key } : {}), sub: 'other' });
    await when(() => texts(b.doc).length === 3, () => `a fresh device gets all three (has ${JSON.stringify(texts(b.doc))})`);
    expect(texts(b.doc)).toEqual(['offline-1', 'offline-2', 'typed-after-restart']);
    await b.stop();

    // The log was rewritten without the torn entry: the next start loads it without an error.
    const again = new Y.Doc();
    const errors: unknown[] = [];
    const reopened = updateLogPersistence(store);
    await reopened.open(again, (err) => errors.push(err));
    await reopened.close();
    expect(errors).toEqual([]);
    expect(texts(again)).toEqual(['offline-1', 'offline-2', 'typed-after-restart']);
  });
}
