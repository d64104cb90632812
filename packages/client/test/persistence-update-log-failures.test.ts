/**
 * persistence/update-log.ts when writes fail, over a store that fails on demand (no server):
 * every update is still appended, a failed write is retried by itself, close() writes what a
 * write that was still running lost, and no meta value is stored before the log holds what it
 * describes. A reviewer's probes of the first version of this code, each a lost edit.
 */
import { describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { createRequire } from 'node:module';
import { updateLogPersistence } from '../src/persistence/update-log.js';
import type { UpdateLogStore } from '../src/persistence/types.js';
import { SyncProvider } from '../src/sync-provider.js';
import { freePort } from '../../../test/helpers/process.js';

const turn = (ms = 5): Promise<void> => new Promise((r) => setTimeout(r, ms)); // a storage call's latency

class FailingStore implements UpdateLogStore {
  entries: Uint8Array[] = [];
  readonly meta = new Map<string, Uint8Array>();
  failAppends = 0;
  failReplaces = 0;
  replaceDelayMs = 5;
  appends = 0;
  closed = false;
  private readonly waiters = new Set<() => void>();

  load(): Promise<Uint8Array[]> {
    return Promise.resolve(this.entries.map((e) => e.slice()));
  }
  async append(update: Uint8Array): Promise<void> {
    this.appends++;
    await turn();
    if (this.failAppends > 0 && this.failAppends-- > 0) throw new Error('disk busy');
    this.entries.push(update.slice());
    this.changed();
  }
  async replaceAll(state: Uint8Array): Promise<void> {
    await turn(this.replaceDelayMs);
    if (this.failReplaces > 0 && this.failReplaces-- > 0) throw new Error('SQLITE_FULL');
    this.entries = [state.slice()];
    this.changed();
  }
  getMeta(key: string): Promise<Uint8Array | undefined> {
    return Promise.resolve(this.meta.get(key));
  }
  async setMeta(key: string, value: Uint8Array): Promise<void> {
    await turn();
    this.meta.set(key, value);
    this.changed();
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  /** The messages the stored log holds, as a restarted device would load them. */
  texts(): string[] {
    const doc = new Y.Doc();
    for (const e of this.entries) Y.applyUpdate(doc, e);
    return doc.getArray<string>('m').toArray();
  }

  /** Resolves once `probe` holds after a write (bounded). */
  until(probe: () => boolean, what: string, ms = 5000): Promise<void> {
    return new Promise((done, fail) => {
      const check = (): void => {
        if (!probe()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        done();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        fail(new Error(`${what}: not within ${ms} ms (stored ${JSON.stringify(this.texts())})`));
      }, ms);
      this.waiters.add(check);
      check();
    });
  }

  private changed(): void {
    for (const w of [...this.waiters]) w();
  }
}

async function opened(store: FailingStore, compactAfter?: number) {
  const persistence = updateLogPersistence(store, compactAfter === undefined ? {} : { compactAfter });
  const doc = new Y.Doc();
  const errors: string[] = [];
  await persistence.open(doc, (err) => errors.push(String(err)));
  return { persistence, doc, errors, messages: doc.getArray<string>('m') };
}

describe('update log when writes fail', () => {
  it('a nearly full disk (compactions fail, appends fit) still stores every message; meta waits', async () => {
    const store = new FailingStore();
    store.failReplaces = Infinity;
    const { persistence, messages, errors } = await opened(store, 5);
    for (let i = 0; i < 20; i++) {
      messages.push([`msg${i}`]);
      await store.until(() => store.texts().length === i + 1, `msg${i} stored`);
    }
    await persistence.setMeta('sync-suite:sealed', new Uint8Array([1]));
    expect(store.texts()).toHaveLength(20);
    expect(store.appends).toBe(20);
    expect(store.meta.has('sync-suite:sealed')).toBe(false); // the log may lack what it describes
    expect(errors).toHaveLength(1);
    store.failReplaces = 0; // space again: the next rewrite makes the log whole and writes the meta
    await store.until(() => store.meta.has('sync-suite:sealed'), 'held meta written after the rewrite');
    await persistence.close();
  });

  it('a failed append is written again without another change', async () => {
    const store = new FailingStore();
    const { persistence, messages, errors } = await opened(store);
    store.failAppends = 1;
    messages.push(['only edit']);
    await store.until(() => store.texts().includes('only edit'), 'the edit stored by the retry');
    expect(errors).toHaveLength(1);
    await persistence.close();
  });

  it('close() right after an edit whose append then fails still stores it', async () => {
    const store = new FailingStore();
    const { persistence, messages } = await opened(store);
    store.failAppends = 1;
    messages.push(['typed then closed']);
    await persistence.close();
    expect(store.texts()).toEqual(['typed then closed']);
    expect(store.closed).toBe(true);
  });

  it('an edit typed during a compaction after a failed append is stored, and the meta only with it', async () => {
    const store = new FailingStore();
    const { persistence, messages } = await opened(store, 2);
    store.failAppends = 1;
    store.replaceDelayMs = 100;
    messages.push(['e1']); // its append fails
    messages.push(['e2']); // compaction queued: covers e1 and e2
    await store.until(() => store.appends === 2, 'both appends tried');
    messages.push(['e3']); // while the compaction's replace runs
    const meta = persistence.setMeta('sync-suite:sealed', new Uint8Array([3]));
    await persistence.close();
    await meta;
    expect(store.texts().sort()).toEqual(['e1', 'e2', 'e3']);
    expect(store.meta.has('sync-suite:sealed')).toBe(true);
  });

  it('a second close() resolves only once the store is closed', async () => {
    const store = new FailingStore();
    const { persistence, messages } = await opened(store);
    store.failAppends = 1;
    messages.push(['last words']);
    void persistence.close();
    await persistence.close();
    expect(store.closed).toBe(true);
    expect(store.texts()).toEqual(['last words']);
  });

  it('a provider destroyed right after an edit whose append fails: whenClosed() resolves once it is stored', async () => {
    const store = new FailingStore();
    const doc = new Y.Doc();
    const port = await freePort(); // nothing listens: offline
    const provider = new SyncProvider(doc, {
      serverUrl: `http://127.0.0.1:${port}`,
      signalingUrl: `ws://127.0.0.1:${port}/signal`,
      room: 'test-conversation-closing',
      WebSocket: createRequire(import.meta.url)('ws') as unknown,
      persistence: updateLogPersistence(store),
    });
    provider.on('error', () => undefined);
    store.failAppends = 1; // the first write, whenever it comes (the load may still be running)
    doc.getArray<string>('m').push(['sent as the app was suspended']);
    provider.destroy();
    await provider.whenClosed();
    expect(store.closed).toBe(true);
    expect(store.texts()).toEqual(['sent as the app was suspended']);
  });
});
