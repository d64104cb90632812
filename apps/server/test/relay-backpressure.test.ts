/**
 * Rate limiting by backpressure: a client pushing far above MAX_MESSAGES_PER_SECOND is slowed
 * (the server stops reading its socket), not closed, holds no growing input buffer on the
 * server, and loses nothing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import * as Y from 'yjs';
import { encodeRelayMessage, writeRelayUpdate } from '@sync-suite/shared';
import { frame } from '../../../test/helpers/raw-ws.js';
import { serverPerTest } from '../../../test/helpers/server.js';
import { connectRawClient, metric, stockProvider, synced } from '../../../test/fixtures/relay-clients.js';

const ROOM = 'acme-conversation-bulk';
const UPDATES = 100_000;
const scope = serverPerTest();
afterEach(() => scope.close());

/** Bytes the server has read from this socket, or holds unread in Node's stream, and not yet handled. */
function unhandledInput(ws: WebSocket): number {
  const internals = ws as unknown as { _socket?: { readableLength: number }; _receiver?: { _bufferedBytes: number } };
  return (internals._socket?.readableLength ?? 0) + (internals._receiver?._bufferedBytes ?? 0);
}

/** UPDATES update messages, as a y-websocket client sends them: one per edit. */
function updateFrames(): Uint8Array[] {
  const doc = new Y.Doc();
  const frames: Uint8Array[] = [];
  doc.on('update', (u: Uint8Array) => frames.push(encodeRelayMessage((e) => writeRelayUpdate(e, u))));
  // Text, not an array of numbers: Yjs merges consecutive array items by copying, O(n^2) here.
  const text = doc.getText('text');
  for (let i = 0; i < UPDATES; i++) text.insert(i, String(i % 10));
  doc.destroy();
  return frames;
}

describe('relay rate limit', () => {
  it(`a ${UPDATES.toLocaleString('en')}-update push through one connection is slowed, not closed, and nothing is lost`, async () => {
    const server = await scope.start({ MAX_MESSAGES_PER_SECOND: '5000' });
    const frames = updateFrames();
    const writer = await connectRawClient(scope, `/relay/${ROOM}`);
    await writer.next((m) => m.type === 'sync-step1');
    const serverSocket = [...server.app.sync.admission.sockets][0] as WebSocket;
    let maxUnhandled = 0;
    const sampler = setInterval(() => (maxUnhandled = Math.max(maxUnhandled, unhandledInput(serverSocket))), 5);

    // As fast as the client can: all of it handed to the TCP socket at once, as ready-made
    // masked WebSocket frames (a client library's per-frame work would dominate the test).
    const tcp = (writer.ws as unknown as { _socket: { write(b: Buffer): boolean } })._socket;
    const wire = Buffer.concat([...frames, new Uint8Array([3])].map((f) => frame(2, f)));
    tcp.write(wire); // the last frame, query-awareness, is answered once everything before it was handled
    try {
      await writer.next((m) => m.type === 'awareness', 120_000, 'the answer after the last update');
    } finally {
      clearInterval(sampler);
    }

    expect(writer.closeCode).toBeNull();
    expect(await metric(server.url, 'sync_rate_limit_pauses_total', { endpoint: 'relay' })).toBeGreaterThan(0);
    expect(await metric(server.url, 'sync_rejected_messages_total', { reason: 'rate_limited' })).toBe(0);
    // Paused sockets keep the sender's data in TCP buffers, not in server memory.
    expect(maxUnhandled).toBeLessThan(1024 * 1024);

    // A fresh device gets all of it from the server.
    const freshDoc = new Y.Doc();
    const fresh = stockProvider(3, server.wsUrl, ROOM, freshDoc);
    scope.track(fresh, freshDoc);
    await synced(fresh);
    const expected = Array.from({ length: UPDATES }, (_, i) => String(i % 10)).join('');
    expect(freshDoc.getText('text').toString() === expected).toBe(true);
  }, 180_000);
});
