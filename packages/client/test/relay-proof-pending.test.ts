/**
 * After the relay refused content, each relay socket sends one extra sync step 1 (the "proof",
 * src/relay-transport.ts watchSync) so that the relay's answer shows it accepted the document.
 * That step 1 went out beside the pending count (src/pending.ts), which matches every sync step 2
 * the relay sends to the oldest step 1 it noted: the proof's answer was taken as the answer to the
 * count's own later step 1, confirming an edit made after the proof, one the relay had not applied
 * when it answered (it answers in order). The status then said pending 0, nothing left to save,
 * while the edit was held nowhere else. Now the proof is noted like the count's own step 1.
 *
 * A fake relay, because the real one answers within a few milliseconds on this host: the count's
 * step 1 goes out 50 ms after the edit, and only a relay slower than that shows the mismatch. This
 * one holds its answer to the proof until the count's step 1 arrives (the mismatch) or, as the
 * count now sends none while the proof is unanswered, for at most a second.
 */
import { createRequire } from 'node:module';
import { afterEach, expect, it } from 'vitest';
import * as Y from 'yjs';
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import type { WebSocket as WsSocket, WebSocketServer as WsServer } from 'ws';
import { SyncProvider, type StatusEvent } from '../src/index.js';

// The ws this package resolves is an older major without the named WebSocketServer export.
const WebSocket = createRequire(import.meta.url)('ws') as typeof WsSocket & { Server: typeof WsServer };

const opened: Array<{ destroy?(): void; close?(): void }> = [];
const timers: Array<ReturnType<typeof setTimeout>> = [];
afterEach(() => {
  for (const t of timers.splice(0)) clearTimeout(t);
  for (const o of opened.splice(0)) (o.destroy ?? o.close)?.call(o);
});

const syncFrame = (kind: number, payload: Uint8Array): Uint8Array =>
  encoding.encode((e) => {
    encoding.writeVarUint(e, 0);
    encoding.writeVarUint(e, kind);
    encoding.writeVarUint8Array(e, payload);
  });

/** the relay holds nothing: each answer is an empty update */
const emptyStep2 = syncFrame(1, Y.encodeStateAsUpdate(new Y.Doc()));

/** an edit of another device, sent right after the proof's answer: once it is in the document, that answer was handled */
const marker = (() => {
  const d = new Y.Doc();
  d.getText('m').insert(0, 'elsewhere');
  return syncFrame(2, Y.encodeStateAsUpdate(d));
})();

function waitFor(what: string, subscribe: (done: () => void) => void, ms = 10_000): Promise<void> {
  return new Promise<void>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`timed out waiting for ${what}`)), ms);
    timers.push(timer);
    subscribe(() => {
      clearTimeout(timer);
      done();
    });
  });
}

it('after a refusal, the proof step 1 is noted: its answer does not confirm an edit made after it', async () => {
  const server = new WebSocket.Server({ host: '127.0.0.1', port: 0 });
  opened.push(server);
  await new Promise<void>((done) => server.once('listening', done));
  let relaySockets = 0;
  let onProof = (): void => undefined;
  /** the test lets the relay answer the step 1s after the proof */
  let release = (): void => undefined;
  server.on('connection', (ws, req) => {
    if (!req.url?.startsWith('/relay/')) return; // /signal: open and silent, no peers
    // the first socket: refused, as the server does an update over RELAY_MAX_UPDATE_CONTENT_BYTES
    if (++relaySockets === 1) return ws.close(4413, 'update over RELAY_MAX_UPDATE_CONTENT_BYTES');
    ws.send(syncFrame(0, Y.encodeStateVector(new Y.Doc())));
    let step1s = 0;
    let proofHeld = false;
    let released = false;
    let held = 0;
    const answerProof = (): void => {
      if (!proofHeld) return;
      proofHeld = false;
      ws.send(emptyStep2);
      ws.send(marker);
    };
    release = () => {
      released = true;
      for (; held > 0; held--) ws.send(emptyStep2);
    };
    ws.on('message', (data: Buffer) => {
      const d = decoding.createDecoder(new Uint8Array(data));
      if (decoding.readVarUint(d) !== 0 || decoding.readVarUint(d) !== 0) return;
      step1s++;
      // the stock provider's opening step 1
      if (step1s === 1) return ws.send(emptyStep2);
      if (step1s === 2) {
        proofHeld = true;
        timers.push(setTimeout(answerProof, 1_000));
        return onProof();
      }
      // the pending count's own step 1: answered (in order) after the proof
      answerProof();
      if (released) ws.send(emptyStep2);
      else held++;
    });
  });
  const doc = new Y.Doc();
  const { port } = server.address() as { port: number };
  const provider = new SyncProvider(doc, { serverUrl: `http://127.0.0.1:${port}`, room: 'test-conversation-proof-pending', WebSocket, relayGraceMs: 0, fetch: () => Promise.reject(new Error('no TURN here')) });
  opened.push(provider, doc);
  let last: StatusEvent | undefined;
  let onStatus = (): void => undefined;
  provider.on('status', (e) => {
    last = e;
    onStatus();
  });

  // the reconnect after the refusal waits the back-off (0.5–1 s)
  await waitFor('the proof step 1 on the second socket', (done) => (onProof = done));
  // an edit after the proof: the relay's answer to the proof cannot hold it
  doc.getText('t').insert(0, 'X');
  await waitFor('the relay answering the proof', (done) => doc.on('update', () => doc.getText('m').toString() === 'elsewhere' && done()));
  expect(last?.pending).toBe(1);

  // the relay answers the count's own step 1: now the edit is confirmed
  release();
  await waitFor('pending 0', (done) => {
    onStatus = () => last?.pending === 0 && done();
    onStatus();
  });
  expect(relaySockets).toBe(2);
}, 30_000);
