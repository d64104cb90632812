/**
 * A sealed device against a hostile server (a WebSocket server in this test speaking the sealed
 * protocol): forged, malformed and replayed frames are reported and applied to nothing, snapshot
 * requests make the device upload its whole document at most once per interval and only after new
 * content, and acks for envelopes never sent move nothing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import type { WebSocket as WsSocket, WebSocketServer as WsServer } from 'ws';
import * as Y from 'yjs';
import { Awareness, encodeAwarenessUpdate, removeAwarenessStates } from 'y-protocols/awareness';
import {
  encodeSealedMessage,
  readSealedClientMessage,
  writeSealedAck,
  writeSealedCaughtUp,
  writeSealedEntry,
  writeSealedPeerLeft,
  writeSealedPeerPresence,
  writeSealedSnapshotRequest,
  writeSealedStoredSnapshot,
  writeSealedWelcome,
  type SealedClientMessage,
} from '@sync-suite/shared';
import { EnvelopeKind, SealedKeys } from '../src/sealed/envelope.js';
import { SNAPSHOT_MIN_NEW, SealedTransport, type SealedTransportOptions } from '../src/sealed/transport.js';
import { MAX_AWARENESS_CLOCK } from '../src/awareness-guard.js';
import { awarenessUpdate, expectForgedClaimsDropped, forgedClaims, type AwarenessEntry } from './helpers/forged-awareness.js';
import { until } from './helpers/until.js';
import { INFINITY_VARUINT, TWO_POW_53_VARUINT, awarenessWithClient, trapUnsafeClients, unsafeClients, updateWithClient } from './helpers/unsafe-numbers.js';

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

interface Setup {
  /** the first connection (welcomed, not caught up) */
  server: WsSocket;
  /** what the device sent, on every connection */
  received: SealedClientMessage[];
  doc: Y.Doc;
  awareness: Awareness;
  errors: string[];
  refused: Array<{ code: number; reason: string }>;
  cursors: number[];
  transport: SealedTransport;
  /** the next connection once the device said hello on it (not welcomed) */
  next: () => Promise<{ ws: WsSocket; received: SealedClientMessage[] }>;
}

async function setup(extra: Partial<SealedTransportOptions> = {}): Promise<Setup> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((r) => wss.once('listening', r));
  opened.push({ close: () => wss.close() });
  const received: SealedClientMessage[] = [];
  const waiting: Array<{ ws: WsSocket; received: SealedClientMessage[] }> = [];
  wss.on('connection', (ws) => {
    const mine: SealedClientMessage[] = [];
    ws.on('message', (data: Buffer) => {
      const r = readSealedClientMessage(new Uint8Array(data));
      if (!r.ok) return;
      received.push(r.message);
      mine.push(r.message);
    });
    waiting.push({ ws, received: mine });
  });
  const next = async (): Promise<{ ws: WsSocket; received: SealedClientMessage[] }> => {
    await until(async () => waiting.length > 0 && (waiting[0] as { received: SealedClientMessage[] }).received.some((m) => m.type === 'hello'), 'a connection saying hello');
    return waiting.shift() as { ws: WsSocket; received: SealedClientMessage[] };
  };
  const doc = new Y.Doc();
  const awareness = new Awareness(doc);
  const errors: string[] = [];
  const refused: Array<{ code: number; reason: string }> = [];
  const cursors: number[] = [];
  const { port } = wss.address() as { port: number };
  const t = new SealedTransport({
    sealedBase: `ws://127.0.0.1:${port}/sealed`,
    room: ROOM,
    doc,
    awareness,
    key: KEY,
    WebSocket,
    getToken: async () => undefined,
    onChange: () => undefined,
    onTokenError: () => undefined,
    onRefused: (c) => refused.push(c),
    onSealedError: (m) => errors.push(m),
    onProgress: (p) => cursors.push(p.cursor),
    ...extra,
  });
  opened.push({ close: () => t.destroy() });
  t.connect();
  const { ws: server } = await next();
  server.send(encodeSealedMessage((e) => writeSealedWelcome(e, 1, true)));
  return { server, received, doc, awareness, errors, refused, cursors, transport: t, next };
}

/** `peer`'s presence, sealed with the room key, naming `entries`. */
function peerPresence(server: WsSocket, peer: number, entries: AwarenessEntry[]): void {
  const envelope = keys.seal(EnvelopeKind.Presence, awarenessUpdate(entries));
  server.send(encodeSealedMessage((e) => writeSealedPeerPresence(e, peer, envelope)));
}

const snapshots = (received: SealedClientMessage[]): number[] => received.flatMap((m) => (m.type === 'snapshot' ? [m.covers] : []));

describe('sealed device against a hostile server', () => {
  it('welcomes repeated on one socket, alternating generations, do not make the device upload its whole document again each time', async () => {
    const { server, received, doc } = await setup();
    doc.getText('t').insert(0, 'w'.repeat(50_000));
    server.send(encodeSealedMessage((e) => writeSealedWelcome(e, 1, true, 100)));
    server.send(encodeSealedMessage((e) => writeSealedCaughtUp(e, 0)));
    const whole = (): SealedClientMessage[] => received.filter((m) => m.type === 'update' && m.envelope.byteLength > 50_000);
    await until(async () => whole().length === 1, 'the document sent once');
    // the server acks what it gets, and tells the same socket another generation, again and again
    let acked = 0;
    for (let i = 0; i < 10; i++) {
      for (const m of received.filter((x) => x.type === 'update').slice(acked)) {
        if (m.type === 'update') server.send(encodeSealedMessage((e) => writeSealedAck(e, m.id, ++acked)));
      }
      server.send(encodeSealedMessage((e) => writeSealedWelcome(e, 1, true, i % 2 === 0 ? 200 : 100)));
      doc.getText('t').insert(0, `${i}`); // an edit: something goes out after each welcome
      await until(async () => received.filter((m) => m.type === 'update').length > acked, 'the edit sent');
    }
    // once per socket at most (docs/PROTOCOL-sealed.md, threat model): not once per welcome frame
    expect(whole().length).toBeLessThanOrEqual(2);
  });

  it('a welcome naming an absurdly small message limit is not believed: updates still go out', async () => {
    const { server, received, doc } = await setup();
    server.send(encodeSealedMessage((e) => writeSealedWelcome(e, 1, true, 77, 1)));
    server.send(encodeSealedMessage((e) => writeSealedCaughtUp(e, 0)));
    doc.getText('t').insert(0, 'still sent');
    await until(async () => received.some((m) => m.type === 'update'), 'an update after a welcome saying 1 byte');
  });

  it('one 1009 after a small frame does not stop updates: the next welcome stating a limit replaces what it taught', async () => {
    const { server, received, doc, refused, next } = await setup();
    server.send(encodeSealedMessage((e) => writeSealedCaughtUp(e, 0)));
    doc.getText('t').insert(0, 'hi');
    await until(async () => received.some((m) => m.type === 'update'), 'the first update');
    server.close(1009, 'too big');
    const second = await next();
    second.ws.send(encodeSealedMessage((e) => writeSealedWelcome(e, 1, true, 0, 10 * 1024 * 1024)));
    second.ws.send(encodeSealedMessage((e) => writeSealedCaughtUp(e, 0)));
    // far over what the 1009 taught: only a welcome that replaces it lets it out
    doc.getText('t').insert(2, 'x'.repeat(10_000));
    await until(async () => second.received.some((m) => m.type === 'update' && m.envelope.byteLength > 10_000), 'a 10 kB update on the next socket');
    expect(refused.map((r) => r.code)).toEqual([1009]);
  });

  it('a server honestly set below 4096 bytes (its welcome not believed): its 1009 is learnt, the update over it stays on the device, later edits are sent', async () => {
    const LIMIT = 2048; // RELAY_MAX_MESSAGE_BYTES the schema allows
    const { server, received, doc, refused, next, transport } = await setup();
    server.send(encodeSealedMessage((e) => writeSealedWelcome(e, 1, true, 0, LIMIT)));
    server.send(encodeSealedMessage((e) => writeSealedCaughtUp(e, 0)));
    doc.getText('t').insert(0, 'y'.repeat(3_000)); // a 3 kB paste: over the server's limit
    await until(async () => received.some((m) => m.type === 'update' && m.envelope.byteLength > LIMIT), 'the 3 kB update');
    server.close(1009, 'too big');
    const second = await next();
    second.ws.send(encodeSealedMessage((e) => writeSealedWelcome(e, 1, true, 0, LIMIT)));
    second.ws.send(encodeSealedMessage((e) => writeSealedCaughtUp(e, 0)));
    // what comes after the paste is still sent; nothing over the learnt limit is sent again
    doc.getText('t').insert(0, 'reply');
    await until(async () => second.received.some((m) => m.type === 'update'), 'the reply on the next socket');
    expect(second.received.filter((m) => m.type === 'update' && m.envelope.byteLength > LIMIT)).toEqual([]);
    expect(refused.map((r) => r.code)).toEqual([1009]);
    expect(transport.pending).toBeGreaterThan(0); // the paste waits on the device
  });

  it('a server whose presence limit is below this device\'s presence: its 1009 is learnt, and the presence frame sent first on every socket no longer keeps updates from being sent', async () => {
    const { server, received, awareness, doc, refused, next } = await setup();
    awareness.setLocalStateField('user', 'a'.repeat(700)); // under 1024 bytes: a floor there kept sending it
    server.send(encodeSealedMessage((e) => writeSealedCaughtUp(e, 0)));
    await until(async () => received.some((m) => m.type === 'presence'), 'the first presence');
    server.close(1009, 'too big');
    const second = await next();
    second.ws.send(encodeSealedMessage((e) => writeSealedWelcome(e, 1, true, 0, 10 * 1024 * 1024)));
    second.ws.send(encodeSealedMessage((e) => writeSealedCaughtUp(e, 0)));
    doc.getText('t').insert(0, 'hello');
    await until(async () => second.received.some((m) => m.type === 'update'), 'an update on the next socket');
    expect(second.received.filter((m) => m.type === 'presence')).toEqual([]);
    expect(refused.map((r) => r.code)).toEqual([1009]);
  });

  it("a member's presence naming this device, or with a clock where it stops counting, is dropped; this device announces itself above the claim", async () => {
    const { server, received, awareness, errors } = await setup();
    awareness.setLocalStateField('user', 'alice');
    server.send(encodeSealedMessage((e) => writeSealedCaughtUp(e, 0)));
    await until(async () => received.some((m) => m.type === 'presence'), 'own presence');
    const own = awareness.clientID;
    const clock = (): number => awareness.meta.get(own)?.clock ?? -1;
    const before = clock();
    const forge = (entries: AwarenessEntry[]): void => peerPresence(server, 9, entries);
    // one update: this device at the top clock, another client at it, and a genuine one
    forge(forgedClaims(own));
    await expectForgedClaimsDropped(awareness, before);
    // a claim under the limit: dropped too, and this device's own state goes out above it
    const sent = received.filter((m) => m.type === 'presence').length;
    forge([[own, 1000, { user: 'eve again' }]]);
    await until(async () => received.filter((m) => m.type === 'presence').length > sent, 'own presence announced again');
    expect(awareness.getLocalState()).toEqual({ user: 'alice' });
    expect(clock()).toBe(1001);
    expect(errors).toEqual([]);
  });

  it("a member naming another device at the clock limit hides it only until that state is removed: then the device's next announcement is taken", async () => {
    const { server, received, awareness, errors } = await setup();
    server.send(encodeSealedMessage((e) => writeSealedCaughtUp(e, 0)));
    await until(async () => received.some((m) => m.type === 'hello'), 'hello');
    const presence = (peer: number, entries: AwarenessEntry[]): void => peerPresence(server, peer, entries);
    let mark = 0;
    /** presence is applied in order: once a marker after them is seen, so were the updates before it */
    const settled = async (): Promise<void> => {
      mark++;
      presence(3, [[999, mark, { mark }]]);
      await until(async () => awareness.getStates().get(999)?.['mark'] === mark, `marker ${mark}`);
    };
    const [victim, other] = [5555, 6666];
    presence(5, [[victim, 1, { cursor: 1 }]]);
    await until(async () => awareness.getStates().get(victim)?.['cursor'] === 1, 'the victim announced');
    // peer 9 names the victim at the limit: the victim's own updates are ignored while it stands
    presence(9, [[victim, MAX_AWARENESS_CLOCK, { cursor: 999 }]]);
    presence(5, [[victim, 2, { cursor: 2 }]]);
    await settled();
    expect(awareness.getStates().get(victim)).toEqual({ cursor: 999 });
    // peer 9 leaves: the forged state goes, and the victim's next announcement is taken
    server.send(encodeSealedMessage((e) => writeSealedPeerLeft(e, 9)));
    presence(5, [[victim, 3, { cursor: 3 }]]);
    await settled();
    expect(awareness.getStates().get(victim)).toEqual({ cursor: 3 });
    // the same after the awareness timeout (y-protocols removes with origin 'timeout')
    presence(9, [[victim, MAX_AWARENESS_CLOCK, { cursor: 999 }]]);
    await settled();
    removeAwarenessStates(awareness, [victim], 'timeout');
    presence(5, [[victim, 4, { cursor: 4 }]]);
    await settled();
    expect(awareness.getStates().get(victim)).toEqual({ cursor: 4 });
    // a removal at the limit of a client with no state here: nothing to remove, no clock kept
    presence(9, [[other, MAX_AWARENESS_CLOCK, null]]);
    await settled();
    expect(awareness.meta.has(other)).toBe(false);
    presence(5, [[other, 1, { cursor: 1 }]]);
    await settled();
    expect(awareness.getStates().get(other)).toEqual({ cursor: 1 });
    expect(errors).toEqual([]);
  });

  it('answers snapshot requests at most once per interval, and only after new content: however often the server asks', async () => {
    const { server, received, doc } = await setup();
    const entry = (seq: number, text: string): void => server.send(encodeSealedMessage((e) => writeSealedEntry(e, seq, sealedUpdate(text))));
    const ask = (seq: number): void => server.send(encodeSealedMessage((e) => writeSealedSnapshotRequest(e, seq)));
    entry(1, 'a');
    server.send(encodeSealedMessage((e) => writeSealedCaughtUp(e, 1)));
    ask(1); // fewer than SNAPSHOT_MIN_NEW new seqs: nothing
    for (let seq = 2; seq <= SNAPSHOT_MIN_NEW; seq++) entry(seq, String(seq));
    for (let i = 0; i < 5; i++) ask(SNAPSHOT_MIN_NEW);
    await until(async () => snapshots(received).length > 0, 'a snapshot');
    // as many new entries again, asked again within SNAPSHOT_MIN_INTERVAL_MS: nothing
    for (let seq = SNAPSHOT_MIN_NEW + 1; seq <= 2 * SNAPSHOT_MIN_NEW; seq++) entry(seq, String(seq));
    ask(2 * SNAPSHOT_MIN_NEW);
    entry(2 * SNAPSHOT_MIN_NEW + 1, 'z');
    await until(async () => doc.getText('t').length === 2 * SNAPSHOT_MIN_NEW + 1, 'every entry applied');
    expect(snapshots(received)).toEqual([SNAPSHOT_MIN_NEW]);
  });

  it('acks for envelopes never sent and replayed entries are no new content: no snapshot for them, no cursor over bogus acks', async () => {
    const { server, received, doc, errors, cursors, transport } = await setup();
    const send = (write: Parameters<typeof encodeSealedMessage>[0]): void => server.send(encodeSealedMessage(write));
    doc.getText('t').insert(0, 'x'.repeat(100_000));
    send((e) => writeSealedCaughtUp(e, 0));
    await until(async () => received.some((m) => m.type === 'update'), 'the upload');
    // acks for ids this device never sent, each followed by a snapshot request
    for (let seq = 1; seq <= 50; seq++) {
      send((e) => writeSealedAck(e, 100_000 + seq, seq));
      send((e) => writeSealedSnapshotRequest(e, seq));
    }
    // one genuine old entry replayed under 50 new seqs, each followed by a snapshot request
    const old = sealedUpdate('old');
    for (let seq = 1; seq <= 50; seq++) {
      send((e) => writeSealedEntry(e, seq, old));
      send((e) => writeSealedSnapshotRequest(e, seq));
    }
    await until(async () => doc.getText('t').length === 100_003 && cursors.length > 0 && cursors.at(-1) === 50, 'the replays read');
    // an edit now: its update reaches the server after any snapshot sent before it
    doc.getText('t').insert(0, '!');
    await until(async () => received.filter((m) => m.type === 'update').length === 2, 'the edit');
    expect(snapshots(received)).toEqual([]);
    expect(transport.pending).toBe(2);
    expect(errors.filter((m) => m.includes('no envelope in flight'))).toHaveLength(1);
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

  it('an entry, a snapshot or a presence from a key holder naming a client past 2^53 - 1 is applied to nothing and reported; the document and the awareness still encode', async () => {
    const { server, doc, awareness, errors } = await setup();
    // Checked before anything encodes them: without the screen, the test fails here rather than hang.
    const caught: string[] = [];
    trapUnsafeClients(doc, awareness, (what) => caught.push(what));
    const entry = (seq: number, envelope: Uint8Array): void => server.send(encodeSealedMessage((e) => writeSealedEntry(e, seq, envelope)));
    awareness.setLocalStateField('user', 'alice');
    const presence = keys.seal(EnvelopeKind.Presence, awarenessWithClient(INFINITY_VARUINT, 1, { user: 'eve' }));
    server.send(encodeSealedMessage((e) => writeSealedPeerPresence(e, 9, presence)));
    entry(1, keys.seal(EnvelopeKind.Update, updateWithClient(INFINITY_VARUINT)));
    entry(2, keys.seal(EnvelopeKind.Update, updateWithClient(TWO_POW_53_VARUINT)));
    server.send(encodeSealedMessage((e) => writeSealedStoredSnapshot(e, 3, keys.seal(EnvelopeKind.Snapshot, updateWithClient(INFINITY_VARUINT), 3))));
    entry(4, sealedUpdate('ok'));
    peerPresence(server, 9, [[777, 3, { user: 'bob' }]]);
    server.send(encodeSealedMessage((e) => writeSealedCaughtUp(e, 4)));
    await until(async () => caught.length > 0 || (doc.getText('t').toString() === 'ok' && awareness.getStates().has(777)), 'the genuine entry and presence applied');
    expect(caught).toEqual([]);
    expect(unsafeClients(doc, awareness)).toEqual([]);
    expect(doc.getText('forged').toString()).toBe('');
    expect(errors).toEqual([
      'entry 1 is not a Yjs update: refused: a number past 2^53 - 1 (over 8 bytes)',
      'entry 2 is not a Yjs update: refused: a number past 2^53 - 1 (9007199254740992)',
      'snapshot 3 is not a Yjs update: refused: a number past 2^53 - 1 (over 8 bytes)',
    ]);
    expect(Y.encodeStateAsUpdate(doc).byteLength).toBeGreaterThan(0);
    expect(encodeAwarenessUpdate(awareness, [...awareness.getStates().keys()]).byteLength).toBeGreaterThan(0);
  });

  it('a snapshot that does not open, then an older one that does: nothing after the older one\'s covers is claimed', async () => {
    const { server, received, doc, errors, cursors } = await setup();
    const send = (write: Parameters<typeof encodeSealedMessage>[0]): void => server.send(encodeSealedMessage(write));
    // entries 1..10 of one writer; a genuine snapshot of them up to 3, stored earlier
    const author = new Y.Doc();
    const states: Uint8Array[] = [];
    for (let i = 1; i <= 10; i++) {
      author.getText('t').insert(author.getText('t').length, `[e${i}]`);
      states.push(Y.encodeStateAsUpdate(author));
    }
    const genuineOld = keys.seal(EnvelopeKind.Snapshot, states[2] as Uint8Array, 3);
    // one covering 10 that does not open (garbage stored by a keyless writer), then the old one
    const garbage = new SealedKeys(ROOM, new Uint8Array(32).fill(9)).seal(EnvelopeKind.Snapshot, Uint8Array.from([0, 0]), 10);
    send((e) => writeSealedStoredSnapshot(e, 10, garbage));
    send((e) => writeSealedStoredSnapshot(e, 3, genuineOld));
    send((e) => writeSealedCaughtUp(e, 10));
    await until(async () => doc.getText('t').toString() === '[e1][e2][e3]' && errors.some((m) => m.startsWith('snapshot 10')), 'both snapshots read');
    // new entries after 10, then a snapshot request: entries 4..10 were never applied here
    const other = new Y.Doc();
    for (let seq = 11; seq < 11 + SNAPSHOT_MIN_NEW; seq++) {
      other.getText('u').insert(0, `[n${seq}]`);
      const update = keys.seal(EnvelopeKind.Update, Y.encodeStateAsUpdate(other));
      send((e) => writeSealedEntry(e, seq, update));
    }
    const last = 10 + SNAPSHOT_MIN_NEW;
    send((e) => writeSealedSnapshotRequest(e, last));
    await until(async () => snapshots(received).length > 0, 'a snapshot');
    expect(snapshots(received)).toEqual([3]);
    await until(async () => cursors.at(-1) === 3, 'progress stored at 3');
    expect(Math.max(...cursors)).toBe(3);
  });

  it('a caught-up beyond the entries sent, or a gap, moves the cursor no further: reported once, no snapshot over it, nothing stored past it', async () => {
    const { server, received, doc, errors, cursors } = await setup();
    const send = (write: Parameters<typeof encodeSealedMessage>[0]): void => server.send(encodeSealedMessage(write));
    const n = SNAPSHOT_MIN_NEW;
    for (let seq = 1; seq <= n; seq++) send((e) => writeSealedEntry(e, seq, sealedUpdate('a')));
    send((e) => writeSealedCaughtUp(e, 1_000_000));
    send((e) => writeSealedSnapshotRequest(e, 1_000_000));
    await until(async () => snapshots(received).length > 0, 'a snapshot');
    expect(snapshots(received)).toEqual([n]);
    // a gap: entry n + 4 after n (its content is genuine and applied, but those between were never seen)
    const reports = cursors.length;
    send((e) => writeSealedEntry(e, n + 4, sealedUpdate('b')));
    send((e) => writeSealedEntry(e, n + 5, sealedUpdate('c')));
    send((e) => writeSealedSnapshotRequest(e, n + 5));
    // progress is reported 100 ms after entries are applied: wait for that report
    await until(async () => doc.getText('t').length === n + 2 && cursors.length > reports, 'the entries after the gap applied and progress reported');
    expect(snapshots(received)).toEqual([n]);
    expect(errors.filter((m) => m.startsWith('protocol error'))).toHaveLength(1);
    expect(Math.max(...cursors)).toBe(n);
  });
});
