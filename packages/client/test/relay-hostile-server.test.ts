/**
 * A relay server (plain room) sending what y-websocket cannot read or Yjs must not hold
 * (src/relay-transport.ts screenFrames): a truncated sync step 1 or awareness message threw in the
 * socket's handler (in Node an uncaught exception: the process ended), and a sync step 2 whose
 * update names client Infinity froze the device (lib0's writeVarUint(Infinity) never ends; the
 * trap below fails the test instead). Each is dropped and reported once per socket; what the relay
 * sends after it still syncs.
 */
import { createRequire } from 'node:module';
import { afterEach, expect, it } from 'vitest';
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import type { WebSocket as WsSocket, WebSocketServer as WsServer } from 'ws';
import { SyncProvider, type SyncProviderError } from '../src/index.js';
import { INFINITY_VARUINT, trapUnsafeClients, updateWithClient } from './helpers/unsafe-numbers.js';

// The ws this package resolves is an older major without the named WebSocketServer export.
const WebSocket = createRequire(import.meta.url)('ws') as typeof WsSocket & { Server: typeof WsServer };

const opened: Array<{ destroy?(): void; close?(): void }> = [];
afterEach(() => {
  for (const o of opened.splice(0)) (o.destroy ?? o.close)?.call(o);
});

const syncStep2 = (update: Uint8Array): Uint8Array =>
  encoding.encode((e) => {
    encoding.writeVarUint(e, 0);
    encoding.writeVarUint(e, 1);
    encoding.writeVarUint8Array(e, update);
  });

const cases: Array<{ name: string; frames: Uint8Array[]; report: RegExp }> = [
  {
    name: 'malformed frames (a truncated sync step 1 and awareness update, an empty frame)',
    // sync step 1 with its state vector cut short; awareness cut short; no message type
    frames: [Uint8Array.from([0, 0, 0xff, 0x01]), Uint8Array.from([1, 0xff, 0x01]), new Uint8Array(0)],
    report: /could not be read/,
  },
  { name: 'a sync step 2 naming client Infinity', frames: [syncStep2(updateWithClient(INFINITY_VARUINT))], report: /not applied: a number past 2\^53 - 1/ },
];

it.each(cases)('$name from the relay: dropped, reported once per socket; the next step 2 syncs', async ({ frames, report }) => {
  const server = new WebSocket.Server({ host: '127.0.0.1', port: 0 });
  opened.push(server);
  await new Promise<void>((done) => server.once('listening', done));
  const good = new Y.Doc();
  good.getText('t').insert(0, 'ok');
  server.on('connection', (ws, req) => {
    if (!req.url?.startsWith('/relay/')) return; // /signal: open and silent, no peers
    for (const frame of frames) ws.send(frame);
    ws.send(syncStep2(Y.encodeStateAsUpdate(good)));
  });
  const doc = new Y.Doc();
  const caught: string[] = [];
  trapUnsafeClients(doc, undefined, (what) => caught.push(what));
  const { port } = server.address() as { port: number };
  const provider = new SyncProvider(doc, { serverUrl: `http://127.0.0.1:${port}`, room: 'test-conversation-hostile-relay', WebSocket, relayGraceMs: 0, fetch: () => Promise.reject(new Error('no TURN here')) });
  opened.push(provider, doc);
  const errors: SyncProviderError[] = [];
  provider.on('error', (e) => errors.push(e));
  await new Promise<void>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`status stayed ${provider.status}`)), 10_000);
    provider.on('status', ({ status }) => {
      if (status !== 'relay') return;
      clearTimeout(timer);
      done();
    });
  });
  expect(doc.getText('t').toString()).toBe('ok');
  expect(caught).toEqual([]);
  expect([...doc.store.clients.keys()].every((k) => Number.isSafeInteger(k))).toBe(true);
  const dropped = errors.filter((e) => e.source === 'relay' && /^dropped /.test(e.message));
  expect(dropped).toHaveLength(1);
  expect(dropped[0]?.message).toMatch(report);
}, 20_000);
