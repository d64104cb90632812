/**
 * WebRTC against hostile parties: SyncProvider devices in their own processes (a crash is a
 * process exit), the real server in this process, and in this process a stock y-webrtc peer or a
 * raw signaling client holding a token for the room but not the sealed key.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import * as encoding from 'lib0/encoding';
import * as Y from 'yjs';
import { WebrtcProvider } from 'y-webrtc';
import { describe, expect, it } from 'vitest';
import { TEST_SECRET, testToken } from '../../../test/helpers/server.js';
import { devicesPerTest } from './helpers/devices.js';
import { withTimeout } from '../../../test/helpers/timeout.js';
import { datachannelWrtc } from '../../../test/helpers/wrtc.js';
import { PeerProcess, type PeerEvent } from './helpers/peer-process.js';
import { until } from './helpers/until.js';
import { INFINITY_VARUINT, TWO_POW_53_VARUINT, awarenessWithClient, updateWithClient } from './helpers/unsafe-numbers.js';

interface WsSocket {
  on(event: 'message', listener: (data: Buffer) => void): void;
  on(event: 'connection', listener: (socket: WsSocket) => void): void;
  send(data: string): void;
  close(): void;
}
// y-webrtc's own ws (8.x): the repo root's copy is older.
const ws = createRequire(resolve('node_modules/y-webrtc/package.json'))('ws') as {
  WebSocket: new (url: string) => WsSocket;
  WebSocketServer: new (opts: { host: string; port: number }) => WsSocket & { address(): { port: number } };
};
// y-webrtc's signaling client uses the global (Node 20 has none).
(globalThis as { WebSocket?: unknown }).WebSocket ??= ws.WebSocket;

const { scope, peer } = devicesPerTest();

const KEY = randomBytes(32).toString('hex');

const syncedOverWebrtc = (p: PeerProcess): Promise<PeerEvent> =>
  p.waitFor((e) => e.ev === 'status' && e['syncedWebrtcPeers'] === 1, `${p.name} synced with a WebRTC peer`);
const hasText = (p: PeerProcess, text: string): Promise<PeerEvent> =>
  p.waitFor((e) => e.ev === 'messages' && (e['texts'] as string[]).includes(text), `${p.name} has "${text}"`);
const signalingError = (p: PeerProcess, source: string): Promise<PeerEvent> =>
  p.waitFor((e) => e.ev === 'error' && e['source'] === source, `${p.name} reports a ${source} error`);

interface WebrtcConnInternals {
  connected: boolean;
  peer: { send(data: Uint8Array): void };
}

/** A stock y-webrtc peer in this process, on the same chat document shape as the fixture's. */
async function stockPeer(room: string, token: string) {
  const doc = new Y.Doc();
  const provider = new WebrtcProvider(room, doc, {
    signaling: [`${scope.current.wsUrl}/signal?room=${room}&token=${token}`],
    peerOpts: { wrtc: await datachannelWrtc(), config: { iceServers: [] } },
  });
  scope.track({ close: () => (provider.disconnect(), provider.destroy(), doc.destroy()) });
  const messages = doc.getArray<Y.Map<string>>('messages');
  const conns = (): WebrtcConnInternals[] => [...((provider as unknown as { room: { webrtcConns: Map<string, WebrtcConnInternals> } | null }).room?.webrtcConns.values() ?? [])];
  return {
    texts: () => messages.toArray().map((m) => m.get('text')),
    push(text: string) {
      const m = new Y.Map<string>();
      m.set('text', text);
      messages.push([m]);
    },
    connected: () => conns().filter((c) => c.connected),
  };
}

/** A raw /signal client (read-scope token): hears every publish on the topic, publishes anything. */
async function signalingClient(room: string) {
  // A write token: the server drops a read token's publishes (docs/PROTOCOL-signaling.md).
  const token = await testToken('mallory', [room]);
  const socket = new ws.WebSocket(`${scope.current.wsUrl}/signal?token=${token}`);
  const heard: Array<Record<string, unknown>> = [];
  let ponged = (): void => undefined;
  const pong = new Promise<void>((done) => (ponged = done));
  socket.on('message', (d) => {
    const m = JSON.parse(String(d)) as Record<string, unknown>;
    heard.push(m);
    if (m['type'] === 'pong') ponged();
  });
  await once(socket as unknown as NodeJS.EventEmitter, 'open');
  scope.track(socket);
  socket.send(JSON.stringify({ type: 'subscribe', topics: [room] }));
  // The pong comes after the subscribe was handled: from here every publish on the topic is heard.
  socket.send(JSON.stringify({ type: 'ping' }));
  await withTimeout(pong, 5000, "the pong after mallory's subscribe");
  return { heard, publish: (data: unknown) => socket.send(JSON.stringify({ type: 'publish', topic: room, data })) };
}

/** What y-webrtc's crypto.js would decrypt: base64(varString(algorithm) • varUint8Array(iv) • varUint8Array(cipher)). */
function encryptedLooking(algorithm: string, iv: Uint8Array, cipher: Uint8Array): string {
  const e = encoding.createEncoder();
  encoding.writeVarString(e, algorithm);
  encoding.writeVarUint8Array(e, iv);
  encoding.writeVarUint8Array(e, cipher);
  return Buffer.from(encoding.toUint8Array(e)).toString('base64');
}

describe('sealed rooms over WebRTC', () => {
  it('a token holder without the key, running stock y-webrtc, reads nothing and writes nothing; the keyed devices sync over WebRTC', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn', SEALED_ROOM_TYPES: 'conversation' });
    const room = 'test-conversation-keyless-eve';
    // On the topic first, with an edit of her own that any sync exchange would carry.
    // A write token: a read token's signaling publishes are dropped by the server anyway.
    const eve = await stockPeer(room, await testToken('eve', [room]));
    eve.push('forged by a keyless token holder');
    const [a, b] = [peer('phone'), peer('desktop')];
    // Eve on the topic: nobody is alone, and the long grace keeps the sealed relay closed.
    const start = { serverUrl: server.url, room, relayGraceMs: 60_000, relayHoldMs: 500, sealedKey: KEY };
    await Promise.all([a.send('start', start), b.send('start', start)]);
    await Promise.all([syncedOverWebrtc(a), syncedOverWebrtc(b)]);
    await a.send('push', { text: 'secret' });
    await hasText(b, 'secret');
    // A third keyed device joins after eve and meets both over WebRTC: by then eve, on the topic
    // from the start, has had the same chances to meet them, had she been able to read them.
    const c = peer('tablet');
    await c.send('start', start);
    await c.waitFor((e) => e.ev === 'status' && e['syncedWebrtcPeers'] === 2, 'tablet synced with both WebRTC peers');
    await hasText(c, 'secret');
    expect(eve.texts()).toEqual(['forged by a keyless token holder']);
    expect(eve.connected()).toHaveLength(0);
    for (const p of [a, b, c]) expect(((await p.send('state')) as { texts: string[] }).texts).toEqual(['secret']);
  });

  it('without crypto.subtle (Hermes without a polyfill) a sealed device reports it and syncs through the sealed relay', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn', SEALED_ROOM_TYPES: 'conversation' });
    const room = 'test-conversation-no-subtle';
    const bare = new PeerProcess('hermes', { TOKEN_SECRET: TEST_SECRET, NO_SUBTLE: '1' });
    scope.track(bare);
    const other = peer('desktop');
    const start = { serverUrl: server.url, room, relayGraceMs: 500, relayHoldMs: 500, sealedKey: KEY };
    await Promise.all([bare.send('start', start), other.send('start', start)]);
    const reported = await bare.waitFor((e) => e.ev === 'error' && e['source'] === 'webrtc', 'hermes reports WebRTC off');
    expect(reported['message']).toMatch(/crypto\.subtle/);
    await bare.waitFor((e) => e.ev === 'status' && e['status'] === 'relay', 'hermes on the sealed relay');
    await bare.send('push', { text: 'from hermes' });
    await hasText(other, 'from hermes');
    await other.send('push', { text: 'to hermes' });
    await hasText(bare, 'to hermes');
  });

  it('garbage and replayed encrypted signaling from a token holder is dropped and reported; the device survives and keeps syncing', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn', SEALED_ROOM_TYPES: 'conversation' });
    const room = 'test-conversation-hostile-sealed';
    const mallory = await signalingClient(room);
    const [a, b] = [peer('phone'), peer('desktop')];
    const start = { serverUrl: server.url, room, relayGraceMs: 60_000, relayHoldMs: 500, sealedKey: KEY };
    await Promise.all([a.send('start', start), b.send('start', start)]);
    await Promise.all([syncedOverWebrtc(a), syncedOverWebrtc(b)]);
    // The device with the smaller peer id offered and got the other's answer (webrtc-transport.ts, yields).
    const ids = await Promise.all([a, b].map(async (p) => ((await p.send('state')) as { peerId: string }).peerId));
    const [offerer, answerer] = (ids[0] as string) < (ids[1] as string) ? [a, b] : [b, a];
    const recorded = mallory.heard.filter((m) => m['type'] === 'publish' && typeof m['data'] === 'string').map((m) => m['data']);
    expect(recorded.length).toBeGreaterThan(0);
    await answerer.send('exit');
    await offerer.waitFor((e) => e.ev === 'status' && e['syncedWebrtcPeers'] === 0, 'the answerer gone');
    const mark = offerer.mark;
    for (const data of [
      '', // nothing to decode: y-webrtc throws in the socket handler
      '!!!! not base64 !!!!',
      encryptedLooking('XYZ', randomBytes(12), randomBytes(40)), // an unknown algorithm: y-webrtc rejects a promise nobody holds
      encryptedLooking('AES-GCM', randomBytes(12), randomBytes(40)), // does not decrypt: an unhandled rejection in y-webrtc
      encryptedLooking('AES-GCM', new Uint8Array(0), randomBytes(40)),
      // Replays of genuine messages, those carrying SDP first (the answerer's answer, the offerer's own
      // offer): the answer then addresses a connection that is gone, and y-webrtc throws in a promise.
      ...recorded.filter((d) => String(d).length > 400),
      ...recorded,
    ]) {
      mallory.publish(data);
    }
    await offerer.waitFor((e) => e.ev === 'error' && e['source'] === 'signaling', 'a signaling error', 20_000, mark);
    // Still alive and syncing: a new keyed device gets what the offerer writes now, and the other way round.
    const c = peer('laptop');
    await c.send('start', { ...start, relayGraceMs: 500 });
    await offerer.send('push', { text: 'after the attack' });
    await c.send('push', { text: 'from the laptop' });
    await Promise.all([hasText(c, 'after the attack'), hasText(offerer, 'from the laptop')]);
    expect(offerer.events.filter((e) => e.ev === 'error' && e['source'] === 'signaling').length).toBeLessThanOrEqual(2);
  });
});

describe('plain rooms over WebRTC', () => {
  it('malformed publishes from a token holder are dropped and reported; the devices keep syncing', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
    const room = 'test-conversation-hostile-plain';
    const mallory = await signalingClient(room);
    const [a, b] = [peer('phone'), peer('desktop')];
    const start = { serverUrl: server.url, room, relayGraceMs: 60_000, relayHoldMs: 500 };
    await Promise.all([a.send('start', start), b.send('start', start)]);
    await Promise.all([syncedOverWebrtc(a), syncedOverWebrtc(b)]);
    const { peerId } = (await a.send('state')) as { peerId: string };
    for (const data of [
      { type: 'signal', from: 'mallory' }, // y-webrtc reads data.signal.type
      { type: 'signal', from: 'mallory', to: peerId, signal: { type: 'answer', sdp: 'v=0' } }, // an answer to no offer
      { type: 'signal', from: 'mallory', to: peerId, signal: { type: 'candidate', candidate: 5 } },
      null,
      42,
      [1, 2, 3],
    ]) {
      mallory.publish(data);
    }
    await signalingError(a, 'signaling');
    await a.send('push', { text: 'from the phone' });
    await b.send('push', { text: 'from the desktop' });
    await Promise.all([a, b].map((p) => p.waitTexts(['from the phone', 'from the desktop'])));
    expect(((await a.send('state')) as { status: string }).status).toBe('webrtc');
  });

  it('a malformed message from a WebRTC peer is dropped and reported; the peer connection keeps syncing', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
    const room = 'test-conversation-hostile-peer';
    const a = peer('phone');
    await a.send('start', { serverUrl: server.url, room, relayGraceMs: 60_000, relayHoldMs: 500 });
    const mallory = await stockPeer(room, await testToken('mallory', [room]));
    await syncedOverWebrtc(a);
    await until(async () => mallory.connected().length === 1, 'mallory connected');
    for (const conn of mallory.connected()) {
      conn.peer.send(new Uint8Array([0])); // a sync message that ends before its type
      conn.peer.send(new Uint8Array([0, 2, 5, 0xff, 0xff, 0xff, 0xff, 0xff])); // an update that is not one
    }
    await signalingError(a, 'webrtc');
    mallory.push('after the garbage');
    await hasText(a, 'after the garbage');
    await a.send('push', { text: 'answer' });
    await until(async () => mallory.texts().includes('answer'), 'mallory has the answer');
  });
});

describe('numbers past 2^53 - 1 from a WebRTC peer', () => {
  it('an awareness entry or a document update naming a client past 2^53 - 1 is applied to nothing (the update reported once); the device still encodes both and keeps syncing', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
    const room = 'test-conversation-unsafe-numbers';
    const a = peer('phone');
    await a.send('start', { serverUrl: server.url, room, relayGraceMs: 60_000, relayHoldMs: 500 });
    const mallory = await stockPeer(room, await testToken('mallory', [room]));
    await syncedOverWebrtc(a);
    await until(async () => mallory.connected().length === 1, 'mallory connected');
    // y-webrtc's peer messages: sync (0: step 1, step 2, update), awareness (1)
    const frame = (type: number, kind: number | undefined, payload: Uint8Array): Uint8Array =>
      encoding.encode((e) => {
        encoding.writeVarUint(e, type);
        if (kind !== undefined) encoding.writeVarUint(e, kind);
        encoding.writeVarUint8Array(e, payload);
      });
    for (const conn of mallory.connected()) {
      conn.peer.send(frame(1, undefined, awarenessWithClient(INFINITY_VARUINT, 1, { user: { name: 'eve' } })));
      conn.peer.send(frame(0, 2, updateWithClient(INFINITY_VARUINT)));
      conn.peer.send(frame(0, 1, updateWithClient(TWO_POW_53_VARUINT)));
      conn.peer.send(frame(0, 2, updateWithClient(INFINITY_VARUINT, 'again')));
    }
    // Checked before anything encodes them (test/fixtures/peer.ts): without the screen, this fails rather than hang.
    await a.waitFor((e) => e.ev === 'unsafe-client' || (e.ev === 'error' && e['source'] === 'webrtc'), 'the forged update handled');
    expect(a.events.filter((e) => e.ev === 'unsafe-client')).toEqual([]);
    // Peer messages arrive in order: once this edit is there, all the forged ones were handled.
    mallory.push('after the forged ones');
    await hasText(a, 'after the forged ones');
    expect(a.events.filter((e) => e.ev === 'unsafe-client')).toEqual([]);
    const refusals = a.events.filter((e) => e.ev === 'error' && e['source'] === 'webrtc' && /not applied/.test(String(e['message'])));
    expect(refusals.map((e) => e['message'])).toEqual(['dropped a document update from a WebRTC peer, not applied: a number past 2^53 - 1 (over 8 bytes) (later ones from this peer are dropped unreported)']);
    const state = (await a.send('state')) as { unsafeClients: string[]; docBytes: number; awarenessBytes: number; awareness: string[] };
    expect(state.unsafeClients).toEqual([]);
    expect(state.docBytes).toBeGreaterThan(0);
    expect(state.awarenessBytes).toBeGreaterThan(0);
    expect(state.awareness).not.toContain('eve');
    await a.send('push', { text: 'answer' });
    await until(async () => mallory.texts().includes('answer'), 'mallory has the answer');
  });
});

describe('a hostile signaling server', () => {
  it('frames that are not JSON (or not objects) are dropped and reported; the device falls back to the relay', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
    const room = 'test-conversation-hostile-operator';
    const operator = new ws.WebSocketServer({ host: '127.0.0.1', port: 0 });
    scope.track(operator);
    await once(operator as unknown as NodeJS.EventEmitter, 'listening');
    operator.on('connection', (socket) => {
      for (const frame of ['not json', 'null', '"a string"', JSON.stringify({ type: 'publish', topic: room, data: { type: 'signal', from: 'x' } })]) socket.send(frame);
    });
    const a = peer('phone');
    await a.send('start', { serverUrl: server.url, room, relayGraceMs: 500, signalingUrl: `ws://127.0.0.1:${operator.address().port}/signal` });
    const error = await signalingError(a, 'signaling');
    expect(String(error['message'])).toMatch(/could not be read|not an object|malformed/);
    await a.waitStatus('relay');
    await a.send('push', { text: 'through the relay' });
    const b = peer('desktop');
    await b.send('start', { serverUrl: server.url, room, relayGraceMs: 500, blockWebrtc: true });
    await hasText(b, 'through the relay');
  });
});
