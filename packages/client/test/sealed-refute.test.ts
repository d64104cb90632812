/**
 * A writer without the room key answers the server's snapshot requests with garbage covering the
 * head (the server cannot check what it cannot open): before refutation, every new device got an
 * empty conversation and one "snapshot unknown key" error, for good. Now the new device reports
 * the snapshot (`snapshot-bad`), the server asks another writer (alice, who holds the history)
 * for a replacement and sends it to the device, and later devices load the replacement
 * (docs/PROTOCOL-sealed.md, "Refuting a snapshot").
 * In-process server (test/helpers/server.ts), real SealedTransport devices, the attacker a raw socket.
 */
import { createRequire } from 'node:module';
import { afterEach, expect, it } from 'vitest';
import type { WebSocket as WsSocket } from 'ws';
import * as Y from 'yjs';
import { Awareness } from 'y-protocols/awareness';
import { encodeSealedMessage, readSealedServerMessage, writeSealedHello, writeSealedSnapshot } from '@sync-suite/shared';
import { startServer, testToken, TEST_SECRET } from '../../../test/helpers/server.js';
import { sealedRegistry } from '../../../apps/server/src/routes/sealed/index.js';
import { SealedTransport } from '../src/sealed/transport.js';
import type { SealedProgress } from '../src/sealed/progress.js';
import { until } from './helpers/until.js';

const WebSocket = createRequire(import.meta.url)('ws') as typeof WsSocket;
const ROOM = 'acme-conversation-refute';
const KEY = new Uint8Array(32).fill(9);
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function device(wsUrl: string, sub: string) {
  const doc = new Y.Doc();
  const errors: string[] = [];
  const progress: SealedProgress[] = [];
  const t = new SealedTransport({
    sealedBase: `${wsUrl}/sealed`,
    room: ROOM,
    doc,
    awareness: new Awareness(doc),
    key: KEY,
    WebSocket,
    getToken: () => testToken(sub, [ROOM]),
    onChange: () => undefined,
    onTokenError: () => undefined,
    onRefused: () => undefined,
    onSealedError: (m) => errors.push(m),
    onProgress: (p) => progress.push(p),
    mergeMs: 1,
  });
  cleanup.push(() => t.destroy());
  t.connect();
  return { t, doc, errors, progress, messages: () => doc.getArray<string>('msgs').toArray() };
}

it('a new device gets the history although a keyless writer answered the snapshot request with garbage', async () => {
  const server = await startServer({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn', SEALED_ROOM_TYPES: 'conversation', SEALED_SNAPSHOT_AFTER: '3', PERSIST_FLUSH_MS: '10' });
  cleanup.push(() => server.close());
  const store = sealedRegistry(server.app)?.store;
  if (!store) throw new Error('no sealed store');

  // mallory: write token, no key; first in join order, so the first writer asked
  const atk = new WebSocket(`${server.wsUrl}/sealed/${ROOM}?token=${await testToken('mallory', [ROOM])}`);
  cleanup.push(() => atk.close());
  let answered = 0;
  let lastUpTo = 0;
  let caughtUp = false;
  atk.on('open', () => atk.send(encodeSealedMessage((e) => writeSealedHello(e, 0, 0))));
  atk.on('message', (data: Buffer) => {
    const r = readSealedServerMessage(new Uint8Array(data));
    if (!r.ok) return;
    if (r.message.type === 'caught-up') caughtUp = true;
    if (r.message.type !== 'snapshot-request') return;
    const garbage = new Uint8Array(64).fill(0xaa);
    garbage.set([1, 2]); // version 1, kind snapshot, an unknown key id
    const upTo = r.message.upTo;
    lastUpTo = upTo;
    atk.send(encodeSealedMessage((e) => writeSealedSnapshot(e, upTo, garbage)));
    answered++;
  });
  await until(async () => caughtUp, 'mallory caught up');

  const alice = device(server.wsUrl, 'alice');
  await until(async () => alice.t.synced, 'alice synced');
  const sent = ['message 0', 'message 1', 'message 2', 'message 3', 'message 4', 'message 5'];
  for (const text of sent) {
    alice.doc.getArray<string>('msgs').push([text]);
    await until(async () => alice.t.pending === 0, `${text} acked`);
  }
  // the attack took place: mallory's garbage (its last answer) is the stored snapshot
  await until(async () => answered > 0 && (await store.stats(ROOM)).snapshotCovers === lastUpTo, 'garbage stored as the snapshot');
  const garbageCovers = lastUpTo;
  const answeredBefore = answered;

  const bob = device(server.wsUrl, 'bob'); // bob's new phone, with the key
  await until(async () => bob.messages().length === sent.length, "bob's new device holds the history", 10_000);
  expect(bob.messages()).toEqual(sent);
  expect(bob.errors).toEqual([`snapshot ${garbageCovers} unknown key`]);
  expect(answered).toBe(answeredBefore); // mallory, the garbage's author, was not asked for its replacement
  // bob's stored cursor passes the snapshot only now that one opened
  await until(async () => (bob.progress.at(-1)?.cursor ?? 0) >= garbageCovers, "bob's stored cursor past the snapshot");

  // the replacement is stored: the next new device loads it without an error
  const carol = device(server.wsUrl, 'carol');
  await until(async () => carol.messages().length === sent.length, "carol's device holds the history");
  expect(carol.errors).toEqual([]);
});
