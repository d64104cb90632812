/**
 * A new device's load of a long conversation through /sealed against /relay, on one in-process
 * server (SQLite): MESSAGES messages, each typed in EDITS edits (one merged update per message,
 * what a device's merge window sends). The sealed writer answers the server's snapshot requests
 * as a device does. Reports the load time (connect, receive, open, apply), the bytes received,
 * and the bytes stored for the sealed room against the document's own encoded size.
 */
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as decoding from 'lib0/decoding';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { randomBytes } from 'node:crypto';
import { startServer } from '../../test/helpers/server.js';
import { sealedRegistry } from '../../apps/server/src/routes/sealed/index.js';
import { EnvelopeKind, SealedKeys } from '../../packages/client/src/sealed/envelope.js';
import { syncFrame } from '../lib/sync-frame.js';
import { BenchSealedClient } from './raw-client.js';

export interface LoadResult {
  path: string;
  messages: number;
  edits: number;
  'load ms': number;
  'bytes received': number;
  'stored bytes': number | string;
  'document bytes': number;
  'stored entries': number | string;
}

/** One merged update per message: a new text typed in `edits` pieces. */
function conversation(messages: number, edits: number): { doc: Y.Doc; updates: Uint8Array[] } {
  const doc = new Y.Doc();
  const list = doc.getArray<Y.Text>('messages');
  const updates: Uint8Array[] = [];
  for (let m = 0; m < messages; m++) {
    const parts: Uint8Array[] = [];
    const collect = (u: Uint8Array): void => void parts.push(u);
    doc.on('update', collect);
    const text = new Y.Text();
    list.push([text]);
    for (let e = 0; e < edits; e++) text.insert(text.length, `word${e} `);
    doc.off('update', collect);
    updates.push(Y.mergeUpdates(parts));
  }
  return { doc, updates };
}

export async function runLoad(messages: number, edits: number): Promise<LoadResult[]> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-sealed-load-'));
  const server = await startServer({ STORAGE: 'sqlite', DATA_DIR: dataDir, LOG_LEVEL: 'warn', MAX_MESSAGES_PER_SECOND: '1000000', ROOM_TYPES: 'conversation' });
  try {
    const { doc, updates } = conversation(messages, edits);
    const docBytes = Y.encodeStateAsUpdate(doc).length;
    const sealedRoom = 'bench-conversation-sealedload';
    const keys = new SealedKeys(sealedRoom, randomBytes(32));
    await writeSealed(server.wsUrl, sealedRoom, keys, updates);
    const stats = await sealedRegistry(server.app)?.store.stats(sealedRoom);
    const sealed = await loadSealed(server.wsUrl, sealedRoom, keys, messages);
    const relayRoom = 'bench-conversation-relayload';
    await writeRelay(server.wsUrl, relayRoom, updates);
    const relay = await loadRelay(server.wsUrl, relayRoom, messages);
    return [
      { path: '/sealed', messages, edits: messages * edits, 'load ms': sealed.ms, 'bytes received': sealed.bytes, 'stored bytes': stats?.bytes ?? 0, 'document bytes': docBytes, 'stored entries': stats?.entries ?? 0 },
      { path: '/relay', messages, edits: messages * edits, 'load ms': relay.ms, 'bytes received': relay.bytes, 'stored bytes': '', 'document bytes': docBytes, 'stored entries': '' },
    ];
  } finally {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Sends every message sealed, 200 in flight at most, and answers snapshot requests as a device does. */
async function writeSealed(wsUrl: string, room: string, keys: SealedKeys, updates: Uint8Array[]): Promise<void> {
  const mirror = new Y.Doc();
  let acked = 0;
  let lastSeq = 0;
  let wake: () => void = () => undefined;
  const client = new BenchSealedClient(`${wsUrl}/sealed/${room}`, (m) => {
    if (m.type === 'ack') {
      acked++;
      lastSeq = m.seq;
      wake();
    } else if (m.type === 'snapshot-request' && lastSeq > 0) {
      client.snapshot(lastSeq, keys.seal(EnvelopeKind.Snapshot, Y.encodeStateAsUpdate(mirror), lastSeq));
    }
  });
  await client.join();
  for (const [i, u] of updates.entries()) {
    Y.applyUpdate(mirror, u);
    client.update(keys.seal(EnvelopeKind.Update, u));
    while (i + 1 - acked > 200) await new Promise<void>((r) => (wake = r));
  }
  while (acked < updates.length) await new Promise<void>((r) => (wake = r));
  // let the last snapshot land: one more round trip through the socket
  await new Promise((r) => setTimeout(r, 200));
  client.close();
}

async function loadSealed(wsUrl: string, room: string, keys: SealedKeys, messages: number): Promise<{ ms: number; bytes: number }> {
  const t0 = performance.now();
  const doc = new Y.Doc();
  // A snapshot's covers is bound into its envelope (packages/client/src/sealed/envelope.ts).
  const frames: Array<{ kind: EnvelopeKind; envelope: Uint8Array; covers: number }> = [];
  let bytes = 0;
  const client = new BenchSealedClient(`${wsUrl}/sealed/${room}`, (m) => {
    if (m.type === 'snapshot') frames.push({ kind: EnvelopeKind.Snapshot, envelope: m.envelope, covers: m.covers });
    if (m.type === 'entry') frames.push({ kind: EnvelopeKind.Update, envelope: m.envelope, covers: 0 });
    if (m.type === 'snapshot' || m.type === 'entry') bytes += m.envelope.length;
  });
  await client.join();
  const opened: Uint8Array[] = [];
  for (const f of frames) {
    const r = keys.open(f.kind, f.envelope, f.covers);
    if (r.ok) opened.push(r.plaintext);
  }
  Y.applyUpdate(doc, Y.mergeUpdates(opened));
  const ms = performance.now() - t0;
  client.close();
  if (doc.getArray('messages').length !== messages) throw new Error(`sealed load got ${doc.getArray('messages').length} messages`);
  return { ms, bytes };
}

/** y-websocket: the same per-message updates, then a step 1 whose answer proves they were applied. */
async function writeRelay(wsUrl: string, room: string, updates: Uint8Array[]): Promise<void> {
  const ws = new WebSocket(`${wsUrl}/relay/${room}`);
  await once(ws, 'open');
  for (const u of updates) ws.send(syncFrame(2, u));
  await stepTwo(ws, new Y.Doc());
  ws.terminate();
}

async function loadRelay(wsUrl: string, room: string, messages: number): Promise<{ ms: number; bytes: number }> {
  const t0 = performance.now();
  const ws = new WebSocket(`${wsUrl}/relay/${room}`);
  await once(ws, 'open');
  const doc = new Y.Doc();
  const bytes = await stepTwo(ws, doc);
  const ms = performance.now() - t0;
  ws.terminate();
  if (doc.getArray('messages').length !== messages) throw new Error(`relay load got ${doc.getArray('messages').length} messages`);
  return { ms, bytes };
}

/** Sends sync step 1 for `doc`, applies the step 2 answer; resolves with its size. */
function stepTwo(ws: WebSocket, doc: Y.Doc): Promise<number> {
  return new Promise((resolve) => {
    const onMessage = (data: Buffer): void => {
      const d = decoding.createDecoder(new Uint8Array(data));
      if (decoding.readVarUint(d) !== 0 || decoding.readVarUint(d) !== 1) return;
      const update = decoding.readVarUint8Array(d);
      Y.applyUpdate(doc, update);
      ws.off('message', onMessage);
      resolve(update.length);
    };
    ws.on('message', onMessage);
    ws.send(syncFrame(0, Y.encodeStateVector(doc)));
  });
}
