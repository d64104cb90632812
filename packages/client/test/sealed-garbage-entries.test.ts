/**
 * A writer without the room key stores envelopes nobody can open (docs/PROTOCOL-sealed.md, "What
 * sealed rooms do not hide"). With the room's key id in their header (any stored envelope shows
 * it), each one fails its tag under a known key, which the device takes for a frame damaged in
 * flight and reads again from storage by reconnecting at once (src/sealed/transport.ts). Each
 * such entry cost every device of the room a new socket (and a getToken() call).
 * In-process server, a real SealedTransport, the attacker a raw socket with a write token.
 */
import { createRequire } from 'node:module';
import { afterEach, expect, it } from 'vitest';
import type { WebSocket as WsSocket } from 'ws';
import * as Y from 'yjs';
import { Awareness } from 'y-protocols/awareness';
import { encodeSealedMessage, readSealedServerMessage, writeSealedHello, writeSealedUpdate } from '@sync-suite/shared';
import { startServer, testToken, TEST_SECRET } from '../../../test/helpers/server.js';
import { keyId } from '../src/sealed/envelope.js';
import { SealedTransport } from '../src/sealed/transport.js';
import { until } from './helpers/until.js';

const WebSocket = createRequire(import.meta.url)('ws') as typeof WsSocket & (new (url: string) => WsSocket);
const ROOM = 'acme-conversation-garbage-entries';
const KEY = new Uint8Array(32).fill(3);
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

it("a keyless writer's envelopes under the room's key id do not make a device reconnect once per envelope", async () => {
  const server = await startServer({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn', SEALED_ROOM_TYPES: 'conversation', PERSIST_FLUSH_MS: '5' });
  cleanup.push(() => server.close());

  let sockets = 0;
  let tokens = 0;
  class CountingWebSocket extends WebSocket {
    constructor(url: string) {
      super(url);
      sockets++;
    }
  }
  const doc = new Y.Doc();
  const errors: string[] = [];
  let caught = false;
  const t = new SealedTransport({
    sealedBase: `${server.wsUrl}/sealed`,
    room: ROOM,
    doc,
    awareness: new Awareness(doc),
    key: KEY,
    WebSocket: CountingWebSocket,
    getToken: () => {
      tokens++;
      return testToken('alice', [ROOM]);
    },
    onChange: () => (caught ||= t.synced),
    onTokenError: () => undefined,
    onRefused: () => undefined,
    onSealedError: (m) => errors.push(m),
    mergeMs: 1,
  });
  cleanup.push(() => t.destroy());
  t.connect();
  await until(async () => caught, 'alice caught up');
  expect(sockets).toBe(1);

  // mallory: a write token, not the key; the key id read off any stored envelope
  const atk = new WebSocket(`${server.wsUrl}/sealed/${ROOM}?token=${await testToken('mallory', [ROOM])}`);
  cleanup.push(() => atk.close());
  let atkCaught = false;
  let acked = 0;
  atk.on('open', () => atk.send(encodeSealedMessage((e) => writeSealedHello(e, 0, 0))));
  atk.on('message', (data: Buffer) => {
    const r = readSealedServerMessage(new Uint8Array(data));
    if (r.ok && r.message.type === 'caught-up') atkCaught = true;
    if (r.ok && r.message.type === 'ack') acked++;
  });
  await until(async () => atkCaught, 'mallory caught up');
  const N = 30;
  for (let i = 1; i <= N; i++) {
    const garbage = new Uint8Array(64).fill(i);
    garbage.set([1, 1, ...keyId(KEY)]); // version 1, kind update, the room's key id
    atk.send(encodeSealedMessage((e) => writeSealedUpdate(e, i, garbage)));
  }
  await until(async () => acked === N, 'the garbage stored');

  // alice then writes; once she holds her own entry back, she has read past all the garbage
  doc.getText('t').insert(0, 'hello');
  await until(async () => t.pending === 0 && t.synced, 'alice acked and caught up', 20_000);
  expect(errors.filter((m) => m.includes('does not open')).length).toBeGreaterThan(0);
  // one read again at most (not one socket and one token per envelope)
  expect(sockets).toBeLessThanOrEqual(2);
  expect(tokens).toBeLessThanOrEqual(2);
});
