/**
 * A sealed device against a hostile server (a WebSocket server in this test speaking the sealed
 * protocol): forged, malformed and replayed frames are reported and applied to nothing, and
 * snapshot requests cannot make the device upload its whole document again and again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import type { WebSocket as WsSocket, WebSocketServer as WsServer } from 'ws';
import * as Y from 'yjs';
import { Awareness } from 'y-protocols/awareness';
import {
  encodeSealedMessage,
  readSealedClientMessage,
  writeSealedCaughtUp,
  writeSealedEntry,
  writeSealedSnapshotRequest,
  writeSealedStoredSnapshot,
  writeSealedWelcome,
  type SealedClientMessage,
} from '@sync-suite/shared';
import { EnvelopeKind, SealedKeys } from '../src/sealed/envelope.js';
import { SealedTransport } from '../src/sealed/transport.js';
import { until } from './helpers/until.js';

// The ws this package resolves is an older major without the named WebSocketServer export.
const WebSocket = createRequire(import.meta.url)('ws') as typeof WsSocket & { Server: typeof WsServer };
const WebSocketServer = WebSocket.Server;
const ROOM = 'acme-conversation-hostile';
const KEY = new Uint8Array(32).fill(7);
const keys = new SealedKeys(ROOM, KEY);
const opened: Array<{ close(): void }> = [];
afterEach(() => {
  for (const o of opened.splice(0)) o.close();
});

/** An update from another device, sealed with the room key. */
function sealedUpdate(text: string): Uint8Array {
  const doc = new Y.Doc();
  doc.getText('t').insert(0, text);
  return keys.seal(EnvelopeKind.Update, Y.encodeStateAsUpdate(doc));
}

async function setup(): Promise<{ server: WsSocket; received: SealedClientMessage[]; doc: Y.Doc; errors: string[]; cursors: number[] }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  opened.push({ close: () => wss.close() });
  const received: SealedClientMessage[] = [];
  const socket = new Promise<WsSocket>((resolve) =>
    wss.once('connection', (ws) => {
      ws.on('message', (data: Buffer) => {
        const r = readSealedClientMessage(new Uint8Array(data));
        if (r.ok) received.push(r.message);
      });
      resolve(ws);
    }),
  );
  const doc = new Y.Doc();
  const errors: string[] = [];
  const cursors: number[] = [];
  const { port } = wss.address() as { port: number };
  const t = new SealedTransport({
    sealedBase: `ws://127.0.0.1:${port}/sealed`,
    room: ROOM,
    doc,
    awareness: new Awareness(doc),
    key: KEY,
    WebSocket,
    getToken: async () => undefined,
    onChange: () => undefined,
    onTokenError: () => undefined,
    onRefused: () => undefined,
    onSealedError: (m) => errors.push(m),
    onProgress: (p) => cursors.push(p.cursor),
  });
  opened.push({ close: () => t.destroy() });
  t.connect();
  const server = await socket;
  await until(async () => received.some((m) => m.type === 'hello'), 'hello');
  server.send(encodeSealedMessage((e) => writeSealedWelcome(e, 1, true)));
  return { server, received, doc, errors, cursors };
}

const snapshots = (received: SealedClientMessage[]): number[] => received.flatMap((m) => (m.type === 'snapshot' ? [m.covers] : []));

describe('sealed device against a hostile server', () => {
  it('a welcome naming an absurdly small message limit is not believed: updates still go out', async () => {
    const { server, received, doc } = await setup();
    server.send(encodeSealedMessage((e) => writeSealedWelcome(e, 1, true, 77, 1)));
    server.send(encodeSealedMessage((e) => writeSealedCaughtUp(e, 0)));
    doc.getText('t').insert(0, 'still sent');
    await until(async () => received.some((m) => m.type === 'update'), 'an update after a welcome saying 1 byte');
  });

  it('answers a snapshot request once per covered seq, however often the server asks', async () => {
    const { server, received, doc } = await setup();
    server.send(encodeSealedMessage((e) => writeSealedEntry(e, 1, sealedUpdate('a'))));
    server.send(encodeSealedMessage((e) => writeSealedCaughtUp(e, 1)));
    for (let i = 0; i < 5; i++) server.send(encodeSealedMessage((e) => writeSealedSnapshotRequest(e, 1)));
    server.send(encodeSealedMessage((e) => writeSealedEntry(e, 2, sealedUpdate('b'))));
    server.send(encodeSealedMessage((e) => writeSealedSnapshotRequest(e, 2)));
    await until(async () => snapshots(received).includes(2), 'snapshot covering 2');
    expect(snapshots(received)).toEqual([1, 2]);
    expect(doc.getText('t').length).toBe(2);
  });

  it('forged, mislabelled and malformed frames are reported and applied to nothing; the device keeps syncing', async () => {
    const { server, received, doc, errors } = await setup();
    const entry = (seq: number, envelope: Uint8Array): void => server.send(encodeSealedMessage((e) => writeSealedEntry(e, seq, envelope)));
    const presence = keys.seal(EnvelopeKind.Presence, Uint8Array.from([0]));
    entry(1, presence); // a presence envelope passed off as an update
    const forged = new Uint8Array(80).fill(9);
    forged[0] = 1;
    forged[1] = EnvelopeKind.Update;
    entry(2, forged); // not sealed with any key this device has
    server.send(Uint8Array.from([0xff, 0x01])); // not a message
    server.send(Uint8Array.from([18, 0xff])); // an entry cut short
    entry(3, keys.seal(EnvelopeKind.Update, Uint8Array.from([0xff, 0xff, 0xff, 0xff]))); // opens, but is not a Yjs update
    // an old snapshot re-served as a newer one: bound to the seq it covers, it does not open
    const old = new Y.Doc();
    old.getText('t').insert(0, 'old');
    server.send(encodeSealedMessage((e) => writeSealedStoredSnapshot(e, 4, keys.seal(EnvelopeKind.Snapshot, Y.encodeStateAsUpdate(old), 1))));
    entry(5, sealedUpdate('ok'));
    server.send(encodeSealedMessage((e) => writeSealedCaughtUp(e, 5)));
    await until(async () => doc.getText('t').toString() === 'ok', 'the genuine entry applied');
    expect(errors.length).toBeGreaterThanOrEqual(6);
    // it never claims to cover what it could not apply: asked for a snapshot, it has nothing to cover
    server.send(encodeSealedMessage((e) => writeSealedSnapshotRequest(e, 5)));
    server.send(encodeSealedMessage((e) => writeSealedEntry(e, 6, sealedUpdate('!'))));
    await until(async () => doc.getText('t').length === 3, 'entry 6');
    expect(snapshots(received)).toEqual([]);
    expect(received.filter((m) => m.type === 'hello')).toHaveLength(1); // no reconnect loop either
  });

  it('a caught-up beyond the entries sent, or a gap, moves the cursor no further: reported once, no snapshot over it, nothing stored past it', async () => {
    const { server, received, doc, errors, cursors } = await setup();
    const send = (write: Parameters<typeof encodeSealedMessage>[0]): void => server.send(encodeSealedMessage(write));
    send((e) => writeSealedEntry(e, 1, sealedUpdate('a')));
    send((e) => writeSealedCaughtUp(e, 1_000_000));
    send((e) => writeSealedSnapshotRequest(e, 1_000_000));
    await until(async () => snapshots(received).length > 0, 'a snapshot');
    expect(snapshots(received)).toEqual([1]);
    // a gap: entry 5 after 1 (its content is genuine and applied, but 2..4 were never seen)
    const reports = cursors.length;
    send((e) => writeSealedEntry(e, 5, sealedUpdate('b')));
    send((e) => writeSealedEntry(e, 6, sealedUpdate('c')));
    send((e) => writeSealedSnapshotRequest(e, 6));
    // progress is reported 100 ms after entries are applied: wait for that report
    await until(async () => doc.getText('t').length === 3 && cursors.length > reports, 'entries 5 and 6 applied and progress reported');
    expect(snapshots(received)).toEqual([1]);
    expect(errors.filter((m) => m.startsWith('protocol error'))).toHaveLength(1);
    expect(Math.max(...cursors)).toBe(1);
  });
});
