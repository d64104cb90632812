/**
 * A relay server (plain room) sending a sync step 2 whose framing is broken: the update's length
 * runs past the end of the frame, or bytes follow the update. y-protocols reads a step 2 inside a
 * try (node_modules/y-protocols/sync.js readSyncStep2), so it applied nothing, logged, and
 * y-websocket still marked the relay synced: the status said 'relay' (and the pending count took
 * the step 2 as a confirmation) for data the device never got. Now such a frame is a protocol
 * error (src/relay-transport.ts protocolError): reported, the socket closed, the next one opened
 * after the back-off, never synced.
 */
import { createRequire } from 'node:module';
import { afterEach, expect, it } from 'vitest';
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import type { WebSocket as WsSocket, WebSocketServer as WsServer } from 'ws';
import { SyncProvider, type SyncProviderError } from '../src/index.js';
import { pacerProbe, type PaceDecision } from '../src/attempt-pacer.js';
import { MALFORMED_STEP2_CASES, step2Frame } from './helpers/malformed-step2.js';

// The ws this package resolves is an older major without the named WebSocketServer export.
const WebSocket = createRequire(import.meta.url)('ws') as typeof WsSocket & { Server: typeof WsServer };

const opened: Array<{ destroy?(): void; close?(): void }> = [];
afterEach(() => {
  pacerProbe.on = undefined;
  for (const o of opened.splice(0)) (o.destroy ?? o.close)?.call(o);
});

const cases = MALFORMED_STEP2_CASES;

/** A fake server on a free port, closed after the test. */
async function fakeServer(): Promise<WsServer & { port: number }> {
  const server = new WebSocket.Server({ host: '127.0.0.1', port: 0 });
  opened.push(server);
  await new Promise<void>((done) => server.once('listening', done));
  return Object.assign(server, { port: (server.address() as { port: number }).port });
}

/** A provider of `room` on the fake server (no TURN), with the errors it reports and the relay pacer's decisions. */
function watchedProvider(port: number, room: string): { provider: SyncProvider; doc: Y.Doc; errors: SyncProviderError[]; paces: PaceDecision[] } {
  const paces: PaceDecision[] = [];
  pacerProbe.on = (path, decision) => {
    if (path === 'relay') paces.push(decision);
  };
  const doc = new Y.Doc();
  const provider = new SyncProvider(doc, { serverUrl: `http://127.0.0.1:${port}`, room, WebSocket, relayGraceMs: 0, fetch: () => Promise.reject(new Error('no TURN here')) });
  opened.push(provider, doc);
  const errors: SyncProviderError[] = [];
  provider.on('error', (e) => errors.push(e));
  return { provider, doc, errors, paces };
}

it.each(cases)('a sync step 2 from the relay with $name: never synced; reported once, the socket reopened after the back-off', async ({ frame, report }) => {
  const server = await fakeServer();
  let relaySockets = 0;
  let onSocket = (): void => undefined;
  server.on('connection', (ws, req) => {
    if (!req.url?.startsWith('/relay/')) return; // /signal: open and silent, no peers
    relaySockets++;
    ws.send(frame);
    onSocket();
  });
  const { provider, doc, errors, paces } = watchedProvider(server.port, 'test-conversation-malformed-step2');
  const statuses: string[] = [];
  // the third socket: the relay was refused twice, and the second wait could have been skipped
  await new Promise<void>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`no third relay socket (${relaySockets} so far; statuses ${statuses.join(', ')})`)), 15_000);
    const check = (): void => {
      if (statuses.includes('relay') || relaySockets >= 3) {
        clearTimeout(timer);
        done();
      }
    };
    provider.on('status', ({ status }) => {
      statuses.push(status);
      check();
    });
    onSocket = check;
  });
  expect(statuses).not.toContain('relay');
  expect(doc.getText('t').toString()).toBe('');
  const reports = errors.filter((e) => e.source === 'relay' && /protocol error/.test(e.message));
  expect(reports).toHaveLength(1);
  expect(reports[0]?.message).toMatch(report);
  // the first attempt goes at once; each reopening waited the growing back-off (0.5–1 s, 1–2 s)
  const waits = paces.filter((d): d is { step: 'wait'; ms: number } => d.step === 'wait').map((d) => d.ms);
  expect(waits.length).toBeGreaterThanOrEqual(3);
  expect(waits[1]).toBeGreaterThanOrEqual(500);
  expect(waits[2]).toBeGreaterThanOrEqual(1000);
}, 30_000);

it('an update with broken framing after the relay synced: no longer synced, reopened after the back-off (not at once), synced again', async () => {
  const server = await fakeServer();
  const sockets: WsSocket[] = [];
  server.on('connection', (ws, req) => {
    if (!req.url?.startsWith('/relay/')) return;
    sockets.push(ws);
    // an honest relay holding nothing: its step 1, and an empty step 2 for each step 1
    ws.send(Uint8Array.from([0, 0, 1, 0]));
    ws.on('message', (data: Buffer) => {
      if (data[0] === 0 && data[1] === 0) ws.send(step2Frame(encoding.encode((e) => encoding.writeVarUint8Array(e, Y.encodeStateAsUpdate(new Y.Doc())))));
    });
  });
  const { provider, errors, paces } = watchedProvider(server.port, 'test-conversation-malformed-update');
  const status = (want: (s: string) => boolean, what: string): Promise<void> =>
    new Promise<void>((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`timed out waiting for ${what} (status ${provider.status}, ${sockets.length} relay sockets)`)), 10_000);
      const check = ({ status: s }: { status: string }): void => {
        if (!want(s)) return;
        clearTimeout(timer);
        provider.off('status', check);
        done();
      };
      provider.on('status', check);
    });
  await status((s) => s === 'relay', 'relay');
  const mark = paces.length;
  // message sync, update, a length of 5 with 1 byte after it
  sockets[0]?.send(Uint8Array.from([0, 2, 5, 0]));
  await status((s) => s !== 'relay', 'the relay no longer synced');
  await status((s) => s === 'relay', 'relay again on the next socket');
  expect(sockets).toHaveLength(2);
  const after = paces.slice(mark);
  const wait = after.find((d): d is { step: 'wait'; ms: number } => d.step === 'wait');
  expect(wait?.ms).toBeGreaterThanOrEqual(500);
  const reports = errors.filter((e) => e.source === 'relay' && /protocol error/.test(e.message));
  expect(reports).toHaveLength(1);
  expect(reports[0]?.message).toMatch(/an update whose update length \(5 bytes\) runs past the end of the frame/);
  // the relay answered the proof step 1 on the second socket: the back-off starts again
  await new Promise<void>((done, fail) => {
    const timer = setTimeout(() => fail(new Error('the relay was not seen accepting the document')), 10_000);
    const check = (): void => {
      if (!paces.slice(mark).some((d) => d.step === 'accepted')) return;
      clearTimeout(timer);
      done();
    };
    const on = pacerProbe.on;
    pacerProbe.on = (path, decision) => {
      on?.(path, decision);
      check();
    };
    check();
  });
}, 30_000);
