/**
 * Awareness over WebRTC data channels: one peer (any member reaching the room's signaling topic)
 * naming thousands of client ids piled up states on every device it connected to, with no cap
 * (the relay's is on the server, the sealed path's in src/sealed/presence.ts). A device takes at
 * most WEBRTC_MAX_CLIENTS_PER_PEER ids new here from one peer connection (src/webrtc-transport.ts);
 * an honest peer still passes on the states of the room's other members, as stock y-webrtc does.
 * SyncProvider devices in their own processes, the real server here, a stock y-webrtc peer here.
 */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import * as encoding from 'lib0/encoding';
import * as Y from 'yjs';
import { Awareness, applyAwarenessUpdate, encodeAwarenessUpdate } from 'y-protocols/awareness';
import { WebrtcProvider } from 'y-webrtc';
import { describe, expect, it } from 'vitest';
import { TEST_SECRET, testToken } from '../../../test/helpers/server.js';
import { devicesPerTest } from './helpers/devices.js';
import { datachannelWrtc } from '../../../test/helpers/wrtc.js';
import { screenAwarenessUpdate } from '../src/awareness-guard.js';
import { WEBRTC_MAX_AWARENESS_BYTES, WEBRTC_MAX_CLIENTS_PER_PEER } from '../src/webrtc-transport.js';
import { awarenessUpdate, type AwarenessEntry } from './helpers/forged-awareness.js';
import { PeerProcess, type PeerEvent } from './helpers/peer-process.js';
import { until } from './helpers/until.js';

// y-webrtc's signaling client uses the global (Node 20 has none); y-webrtc's own ws (8.x).
(globalThis as { WebSocket?: unknown }).WebSocket ??= createRequire(resolve('node_modules/y-webrtc/package.json'))('ws').WebSocket;

const { scope, peer } = devicesPerTest();

interface DeviceState {
  awareness: string[];
  awarenessCount: number;
}
const deviceState = async (p: PeerProcess): Promise<DeviceState> => (await p.send('state')) as DeviceState;
const sees = (p: PeerProcess, names: string[]): Promise<void> =>
  until(async () => {
    const seen = (await deviceState(p)).awareness;
    return names.every((n) => seen.includes(n));
  }, `${p.name} sees ${names.length} names`, 20_000);
const syncedOverWebrtc = (p: PeerProcess, n = 1): Promise<PeerEvent> =>
  p.waitFor((e) => e.ev === 'status' && e['syncedWebrtcPeers'] === n, `${p.name} synced with ${n} WebRTC peers`);

interface WebrtcConnInternals {
  connected: boolean;
  peer: { send(data: Uint8Array): void };
}

/** A stock y-webrtc peer in this process (one per room per process), on the fixture's chat document. */
async function stockPeer(room: string, name: string, prepare?: (awareness: Awareness) => void) {
  const doc = new Y.Doc();
  const own = new Awareness(doc);
  own.setLocalStateField('user', { name });
  prepare?.(own);
  const provider = new WebrtcProvider(room, doc, {
    signaling: [`${scope.current.wsUrl}/signal?room=${room}&token=${await testToken(name, [room])}`],
    peerOpts: { wrtc: await datachannelWrtc(), config: { iceServers: [] } },
    awareness: own,
  });
  scope.track({ close: () => (provider.disconnect(), provider.destroy(), doc.destroy()) });
  const conns = (): WebrtcConnInternals[] => [...((provider as unknown as { room: { webrtcConns: Map<string, WebrtcConnInternals> } | null }).room?.webrtcConns.values() ?? [])];
  return {
    push(text: string) {
      const m = new Y.Map<string>();
      m.set('text', text);
      doc.getArray<Y.Map<string>>('messages').push([m]);
    },
    connected: () => conns().filter((c) => c.connected),
  };
}

/** y-webrtc's awareness message (type 1), carrying `update`. */
const awarenessMessage = (update: Uint8Array): Uint8Array =>
  encoding.encode((e) => {
    encoding.writeVarUint(e, 1);
    encoding.writeVarUint8Array(e, update);
  });

/** A server, a SyncProvider device ('phone') and a stock peer ('mallory') connected to it over WebRTC. */
async function phoneWithMallory(room: string) {
  const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
  const a = peer('phone');
  await a.send('start', { serverUrl: server.url, room, relayGraceMs: 60_000, relayHoldMs: 500 });
  const mallory = await stockPeer(room, 'mallory');
  await syncedOverWebrtc(a);
  await until(async () => mallory.connected().length === 1, 'mallory connected');
  return { server, room, a, mallory };
}

/** Peer messages arrive in order: once mallory's edit `text` is on the device, every message she sent before it was handled. */
async function handledBefore(a: PeerProcess, mallory: Awaited<ReturnType<typeof stockPeer>>, text: string): Promise<void> {
  mallory.push(text);
  await a.waitFor((e) => e.ev === 'messages' && (e['texts'] as string[]).includes(text), text);
}

describe('awareness from WebRTC peers', () => {
  it('a peer naming thousands of client ids adds at most WEBRTC_MAX_CLIENTS_PER_PEER states, reported once; a device joining later is still seen', async () => {
    const { server, room, a, mallory } = await phoneWithMallory('test-conversation-awareness-flood');
    const PER_MESSAGE = 2000; // ~10 bytes an entry: 20 KB, well under a data channel's message limit
    const MESSAGES = 5;
    let next = 1_000_000;
    for (const conn of mallory.connected()) {
      for (let i = 0; i < MESSAGES; i++) {
        const entries: AwarenessEntry[] = Array.from({ length: PER_MESSAGE }, () => [next++, 1, {}]);
        conn.peer.send(awarenessMessage(awarenessUpdate(entries)));
      }
    }
    await handledBefore(a, mallory, 'after the flood');
    const after = await deviceState(a);
    // its own state, and at most the cap from mallory's connection (her own state among them), not 10 000
    expect(after.awarenessCount).toBeLessThanOrEqual(1 + WEBRTC_MAX_CLIENTS_PER_PEER);
    const reports = a.events.filter((e) => e.ev === 'error' && e['source'] === 'webrtc' && /more than \d+ clients/.test(String(e['message'])));
    expect(reports.map((e) => e['message'])).toEqual([
      `dropped awareness states from a WebRTC peer naming more than ${WEBRTC_MAX_CLIENTS_PER_PEER} clients new here (later ones from this peer are dropped unreported)`,
    ]);
    // The cap is per connection: a device joining now is seen, and sees the phone.
    const b = peer('desktop');
    await b.send('start', { serverUrl: server.url, room, relayGraceMs: 60_000, relayHoldMs: 500 });
    await Promise.all([sees(a, ['phone', 'desktop']), sees(b, ['phone', 'desktop'])]);
  });

  it('ids a peer introduced and then removed no longer count against its cap', async () => {
    const { a, mallory } = await phoneWithMallory('test-conversation-awareness-release');
    const [conn] = mallory.connected();
    // mallory's own state is one id of her allowance: the rest is filled, then removed (state null)
    const first = Array.from({ length: WEBRTC_MAX_CLIENTS_PER_PEER - 1 }, (_, i) => 2_000_000 + i);
    const second = Array.from({ length: WEBRTC_MAX_CLIENTS_PER_PEER - 1 }, (_, i) => 3_000_000 + i);
    const handled = (text: string): Promise<void> => handledBefore(a, mallory, text);
    conn!.peer.send(awarenessMessage(awarenessUpdate(first.map((id) => [id, 1, { user: { name: `f${id}` } }]))));
    await handled('first batch');
    expect((await deviceState(a)).awarenessCount).toBe(2 + first.length);
    conn!.peer.send(awarenessMessage(awarenessUpdate(first.map((id) => [id, 2, null]))));
    await handled('first batch removed');
    expect((await deviceState(a)).awarenessCount).toBe(2);
    conn!.peer.send(awarenessMessage(awarenessUpdate(second.map((id) => [id, 1, { user: { name: `s${id}` } }]))));
    await handled('second batch');
    expect((await deviceState(a)).awarenessCount).toBe(2 + second.length);
    expect(a.events.filter((e) => e.ev === 'error' && /more than \d+ clients/.test(String(e['message'])))).toEqual([]);
  });

  it('a state larger than WEBRTC_MAX_AWARENESS_BYTES is dropped, new or replacing one held (that one stays), reported once; smaller ones are taken', async () => {
    const { a, mallory } = await phoneWithMallory('test-conversation-awareness-big-state');
    const [conn] = mallory.connected();
    // 20 KB: over the bound, well under a data channel's message limit
    const big = (name: string) => ({ user: { name }, blob: 'x'.repeat(WEBRTC_MAX_AWARENESS_BYTES + 4000) });
    conn!.peer.send(awarenessMessage(awarenessUpdate([[4_000_001, 1, big('big-new')], [4_000_002, 1, { user: { name: 'small' } }]])));
    await handledBefore(a, mallory, 'first');
    conn!.peer.send(awarenessMessage(awarenessUpdate([[4_000_002, 2, big('small-grown')]])));
    await handledBefore(a, mallory, 'second');
    const state = await deviceState(a);
    expect(state.awareness).toContain('small');
    expect(state.awareness).not.toContain('big-new');
    expect(state.awareness).not.toContain('small-grown');
    const reports = a.events.filter((e) => e.ev === 'error' && e['source'] === 'webrtc' && /awareness state/.test(String(e['message'])));
    expect(reports.map((e) => e['message'])).toEqual([
      `dropped an awareness state over ${WEBRTC_MAX_AWARENESS_BYTES} bytes from a WebRTC peer (later ones unreported)`,
    ]);
  });

  it('an honest three-device room sees every member, and the states a peer passes on for devices heard elsewhere', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, LOG_LEVEL: 'warn' });
    const room = 'test-conversation-awareness-forwarded';
    const [a, b] = [peer('phone'), peer('desktop')];
    const start = { serverUrl: server.url, room, relayGraceMs: 60_000, relayHoldMs: 500 };
    await Promise.all([a.send('start', start), b.send('start', start)]);
    await Promise.all([syncedOverWebrtc(a), syncedOverWebrtc(b)]);
    // The third device holds the states of 40 devices it heard elsewhere (the relay, a peer the
    // others do not reach): stock y-webrtc sends every state it holds when a connection opens.
    const FORWARDED = 40;
    const heard = awarenessUpdate(Array.from({ length: FORWARDED }, (_, i): AwarenessEntry => [2_000_000 + i, 1, { user: { name: `heard-${i}` } }]));
    await stockPeer(room, 'tablet', (awareness) => applyAwarenessUpdate(awareness, heard, 'elsewhere'));
    const everyone = ['phone', 'desktop', 'tablet', ...Array.from({ length: FORWARDED }, (_, i) => `heard-${i}`)];
    await Promise.all([syncedOverWebrtc(a, 2), syncedOverWebrtc(b, 2)]);
    await Promise.all([sees(a, everyone), sees(b, everyone)]);
    for (const p of [a, b]) expect(p.events.filter((e) => e.ev === 'error' && /more than \d+ clients/.test(String(e['message'])))).toEqual([]);
  });
});

describe('awareness updates naming a client more than once', () => {
  it('only the first entry of a client is applied: its state is listed (and encoded again by the update listeners) once, not once per entry', () => {
    const awareness = new Awareness(new Y.Doc());
    const REPEATS = 5000;
    const big = { blob: 'x'.repeat(10_000) };
    const entries: AwarenessEntry[] = [[7, 1, { user: 'first' }], ...Array.from({ length: REPEATS }, (_, i): AwarenessEntry => [7, i + 2, i === REPEATS - 1 ? big : 0])];
    let listed = 0;
    let encodedBytes = 0;
    awareness.on('update', ({ added, updated, removed }: { added: number[]; updated: number[]; removed: number[] }) => {
      const clients = [...added, ...updated, ...removed];
      listed += clients.length;
      encodedBytes += encodeAwarenessUpdate(awareness, clients).byteLength;
    });
    const update = awarenessUpdate(entries);
    applyAwarenessUpdate(awareness, screenAwarenessUpdate(update, awareness, false).update ?? update, 'peer');
    expect(listed).toBe(1);
    expect(encodedBytes).toBeLessThan(1000);
    expect(awareness.getStates().get(7)).toEqual({ user: 'first' });
    awareness.destroy();
  });
});
