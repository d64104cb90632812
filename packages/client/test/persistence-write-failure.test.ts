/**
 * A sealed room whose local store fails a write (disk full, quota) of an edit the server acked.
 * Before, the device's stored progress moved past that edit anyway (meta writes queued after the
 * failed append still landed): after a restart the device never read the edit again, and a
 * snapshot it later uploaded covered the edit's seq without it, so new devices never saw it.
 * Now (src/persistence/update-log.ts) no meta is written until the whole document is stored
 * again; a restart whose stored document waits on a missing entry reads the room from 0
 * (src/sealed/progress.ts, resumeFrom); and a document with unresolved dependencies answers no
 * snapshot request (src/sealed/transport.ts). In-process server, real providers and transports.
 */
import { createRequire } from 'node:module';
import { afterEach, expect, it } from 'vitest';
import type { WebSocket as WsSocket } from 'ws';
import * as Y from 'yjs';
import { Awareness } from 'y-protocols/awareness';
import { readSealedClientMessage, readSealedServerMessage } from '@sync-suite/shared';
import { serverPerTest, testToken, TEST_SECRET } from '../../../test/helpers/server.js';
import { decodeProgress, SEALED_META, type SealedProgress } from '../src/sealed/progress.js';
import { SealedTransport } from '../src/sealed/transport.js';
import { device, MemStore, push, settled, texts, when, type Device } from './helpers/store-device.js';

const scope = serverPerTest();
afterEach(() => scope.close());
const KEY = new Uint8Array(32).fill(7);

it('sealed: acked edits whose local writes failed until the app quit are read again after a restart', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
  const room = 'test-conversation-write-fail';
  const store = new MemStore();
  const a = await device(scope, server.url, room, { key: KEY, store });
  await when(() => settled(a) && store.cursor() !== undefined, 'a online, progress stored');
  const before = store.cursor();

  store.full = true; // from here until the app is gone, every write fails
  await pushAcked(a, 'msg1');
  await pushAcked(a, 'msg2');
  await a.stop();
  const stored = store.cursor();

  store.full = false; // the disk has room again
  const a2 = await device(scope, server.url, room, { key: KEY, store });
  await when(() => texts(a2.doc).length === 2, () => `the restarted device reads both again (has ${JSON.stringify(texts(a2.doc))})`);
  expect(texts(a2.doc)).toEqual(['msg1', 'msg2']);
  await when(() => store.texts().length === 2, 'both stored now');
  expect(a2.errors).toEqual([]);
  // no progress was stored past what the store held, and the run of failures was reported once
  expect(stored).toBe(before);
  expect(a.errors.filter((e) => e.source === 'persistence')).toHaveLength(1);
});

it('sealed: after one failed write the next change stores the whole document, then the progress held back', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
  const room = 'test-conversation-write-retry';
  const store = new MemStore();
  const a = await device(scope, server.url, room, { key: KEY, store });
  await when(() => settled(a), 'a online');
  store.failNext = 1;
  await pushAcked(a, 'msg1');
  const acked = a.p.sealedRelay?.stats.sealed;
  await pushAcked(a, 'msg2');
  expect(a.p.sealedRelay?.stats.sealed).toBe((acked ?? 0) + 1);
  // The log holds both again (msg1 came back with the rewrite), then the cursor of msg2's ack is stored.
  await when(() => store.texts().length === 2, () => `the log holds the whole document again (holds ${JSON.stringify(store.texts())})`);
  await when(() => (store.cursor() ?? 0) >= 2, 'progress stored after the rewrite');
  expect(a.errors.filter((e) => e.source === 'persistence')).toHaveLength(1);

  // What a kill now leaves is a whole document: the restart reads no entry again and has both.
  const disk = store.copy();
  await a.stop();
  const a2 = await device(scope, server.url, room, { key: KEY, store: disk });
  await when(() => settled(a2), 'a2 online');
  expect(texts(a2.doc)).toEqual(['msg1', 'msg2']);
  expect(a2.p.sealedRelay?.stats.applied).toBe(0);
  expect(a2.errors).toEqual([]);
});

/** A store as a failed append left it before the fix: one acked edit missing, the progress past it. */
async function storeMissingMsg1(url: string, room: string, sub: string): Promise<{ store: MemStore; msg2: Uint8Array; progress: SealedProgress }> {
  const store = new MemStore();
  const a = await device(scope, url, room, { key: KEY, store, sub });
  await when(() => settled(a), 'a online');
  const updates: Uint8Array[] = [];
  a.doc.on('update', (u: Uint8Array) => updates.push(u));
  await pushAcked(a, 'msg1');
  await pushAcked(a, 'msg2');
  await when(() => (store.cursor() ?? 0) >= 2, 'progress past both stored');
  await a.stop();
  const [msg1, msg2] = updates as [Uint8Array, Uint8Array];
  const lost = store.entries.findIndex((e) => e.length === msg1.length && e.every((b, i) => b === msg1[i]));
  expect(lost).toBeGreaterThanOrEqual(0);
  store.entries.splice(lost, 1);
  const progress = decodeProgress(store.meta.get(SEALED_META));
  if (!progress) throw new Error('no progress stored');
  return { store, msg2, progress };
}

it('sealed: a stored document waiting on a missing entry reads the room from 0 again', async () => {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
  const room = 'test-conversation-write-gap';
  const { store } = await storeMissingMsg1(server.url, room, 'phone');
  const a2 = await device(scope, server.url, room, { key: KEY, store, sub: 'phone' });
  await when(() => texts(a2.doc).length === 2, () => `the restarted device has both (has ${JSON.stringify(texts(a2.doc))}, pendingStructs ${a2.doc.store.pendingStructs !== null})`);
  expect(texts(a2.doc)).toEqual(['msg1', 'msg2']);
  expect(a2.doc.store.pendingStructs).toBeNull();
});

const WebSocket = createRequire(import.meta.url)('ws') as typeof WsSocket;

/** Pushes `text`, waits until it is pending, then acked (the device settled again). */
async function pushAcked(a: Device, text: string): Promise<void> {
  push(a, text);
  await when(() => a.last()?.pending === 1, `${text} pending`);
  await when(() => settled(a), `${text} acked`);
}

it('sealed: a document waiting on a missing entry answers no snapshot request; a new device still gets the entry', async () => {
  // due at the 7th entry: msg1, msg2, then five of the device's own, so that it has seen enough
  // new ones to answer (SNAPSHOT_MIN_NEW, src/sealed/transport.ts) when the server asks
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET, SEALED_SNAPSHOT_AFTER: '7' });
  const room = 'test-conversation-write-snap';
  const { msg2, progress } = await storeMissingMsg1(server.url, room, 'phone');

  // The transport as a restart before resumeFrom got it: msg2 without msg1, the cursor past both.
  const doc = new Y.Doc();
  Y.applyUpdate(doc, msg2);
  expect(doc.store.pendingStructs).not.toBeNull();
  let requests = 0;
  let snapshotsSent = 0;
  class Spy extends WebSocket {
    constructor(...args: ConstructorParameters<typeof WebSocket>) {
      super(...args);
      this.on('message', (data: Buffer) => {
        const m = readSealedServerMessage(new Uint8Array(data));
        if (m.ok && m.message.type === 'snapshot-request') requests++;
      });
    }
    override send(data: Uint8Array, ...rest: unknown[]): void {
      const m = readSealedClientMessage(data);
      if (m.ok && m.message.type === 'snapshot') snapshotsSent++;
      (super.send as (...a: unknown[]) => void)(data, ...rest);
    }
  }
  const t = new SealedTransport({
    sealedBase: `${server.wsUrl}/sealed`,
    room,
    doc,
    awareness: new Awareness(doc),
    key: KEY,
    WebSocket: Spy,
    getToken: () => testToken('phone', ['test-*']),
    onChange: () => undefined,
    onTokenError: () => undefined,
    onRefused: () => undefined,
    onSealedError: () => undefined,
    onProgress: () => undefined,
    mergeMs: 5,
    resume: progress,
  });
  scope.track(t);
  t.connect();
  await when(() => t.synced, 'caught up');
  for (let i = 0; i < 8 && requests === 0; i++) {
    doc.getArray<string>('m').push([`later-${i}`]);
    await when(() => t.pending === 0, () => `later-${i} acked`);
  }
  await when(() => requests > 0, 'the server asked for a snapshot');
  expect(snapshotsSent).toBe(0);
  t.destroy();

  const c = await device(scope, server.url, room, { key: KEY, sub: 'new-phone' });
  await when(() => texts(c.doc).includes('msg1'), () => `a new device gets msg1 (has ${JSON.stringify(texts(c.doc))})`);
});
