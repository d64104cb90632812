/**
 * Messages whose cost is set by a count they announce, not by their bytes: an awareness update
 * with a huge number of tiny entries, and a sync step 1 whose state vector names millions of
 * clients. Both used to be decoded whole (seconds of event loop, hundreds of MB per frame, with a
 * read-only token). The awareness update is refused with 4413 from its count; the state vector
 * is not decoded past its bound and its step 1 is answered with the whole document (an honest
 * client may hold clients the room lost), the socket left open. The room goes on serving. Also
 * the counting decoders themselves, which build nothing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import { encodeAwarenessEntries, encodeRelayMessage, writeRelayAwareness, writeRelaySyncStep1, writeRelayUpdate } from '@sync-suite/shared';
import { Room } from '../src/relay/room.js';
import { LocalFanout } from '../src/relay/fanout.js';
import { DEFAULT_PRESENCE_LIMITS, DEFAULT_UPDATE_LIMITS } from '../src/relay/update-limits.js';
import { serverPerTest, TEST_SECRET, testToken, type TestServer } from '../../../test/helpers/server.js';
import { docUntil, metric, RawClient, stockProvider, synced, textOf } from '../../../test/fixtures/relay-clients.js';
import { countStateVector } from '../src/relay/update-check.js';
import { checkPresenceState, presenceEntryLimit, PresenceRefused, readPresence, type PresenceLimits } from '../src/relay/presence.js';

const WHOLE_ANSWERS = 'sync_relay_whole_document_answers_total';
const ROOM = 'acme-conversation-counts';
const scope = serverPerTest();
afterEach(() => scope.close());

const token = (scopeName: 'read' | 'write') => testToken('u1', [ROOM], { ttlSeconds: 60, scope: scopeName });

async function raw(server: TestServer, scopeName: 'read' | 'write'): Promise<RawClient> {
  const c = await RawClient.connect(`${server.wsUrl}/relay/${ROOM}?token=${await token(scopeName)}`);
  scope.track(c);
  await c.next((m) => m.type === 'sync-step1');
  return c;
}

/** `n` entries of a one-byte state ("0"), client ids from `first`. */
function tinyEntries(n: number, first = 16_384): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, n);
  for (let i = 0; i < n; i++) {
    encoding.writeVarUint(e, first + i);
    encoding.writeVarUint(e, 1);
    encoding.writeVarString(e, '0');
  }
  return encoding.toUint8Array(e);
}

/** A state vector naming `n` clients, from `first`. */
function stateVector(n: number, first = 16_384): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, n);
  for (let i = 0; i < n; i++) {
    encoding.writeVarUint(e, first + i);
    encoding.writeVarUint(e, 1);
  }
  return encoding.toUint8Array(e);
}

/** Sends a sync step 1 with `sv` and returns the step 2 that answers it. */
async function answerTo(c: RawClient, sv: Uint8Array): Promise<Uint8Array> {
  const from = c.messages.length;
  c.send(encodeRelayMessage((e) => writeRelaySyncStep1(e, sv)));
  const step2 = await c.next((m) => m.type === 'sync-step2' && c.messages.indexOf(m) >= from, 10_000, 'the answer to the sync step 1');
  return (step2 as { update: Uint8Array }).update;
}

/** The document a step 2 makes from nothing. */
function docOf(update: Uint8Array): Y.Doc {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, update);
  return doc;
}

function closeReason(c: RawClient): Promise<string> {
  return new Promise((resolve) => c.ws.once('close', (_code: number, reason: Buffer) => resolve(reason.toString())));
}

/** Two stock clients in the room: a write from one still reaches the other. */
async function stillServes(server: TestServer, text: string): Promise<void> {
  const [d1, d2] = [new Y.Doc(), new Y.Doc()];
  const p1 = stockProvider(3, server.wsUrl, ROOM, d1, { token: await token('write') });
  const p2 = stockProvider(2, server.wsUrl, ROOM, d2, { token: await token('read') });
  scope.track(p1, d1);
  scope.track(p2, d2);
  await Promise.all([synced(p1), synced(p2)]);
  d1.getText('text').insert(0, text);
  await docUntil(d2, () => textOf(d2).includes(text), 10_000, 'the write at the other client');
}

const errorLines = (server: TestServer) => server.logs.filter((l) => (l['level'] as number) >= 50);

describe('relay messages priced by a count', () => {
  it('an awareness update announcing 200,000 entries (read-only token) is refused with 4413 before they are read; the room goes on', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
    const hostile = await raw(server, 'read');
    const reason = closeReason(hostile);
    hostile.send(encodeRelayMessage((e) => writeRelayAwareness(e, tinyEntries(200_000))));
    expect(await hostile.closed(10_000)).toBe(4413);
    expect(await reason).toBe('presence over a limit: awareness_entries');
    await stillServes(server, 'after the awareness flood');
    expect(errorLines(server)).toEqual([]);
  });

  it("a stock client's echo of a full room (every id it heard) is within the bound: foreign entries are dropped, not refused", async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
    const c = await raw(server, 'read');
    // MAX_PEERS_PER_ROOM x RELAY_MAX_AWARENESS_STATES = 200 ids with the defaults, and its own.
    c.send(encodeRelayMessage((e) => writeRelayAwareness(e, tinyEntries(201))));
    await c.handled();
    expect(c.closeCode).toBeNull();
  });

  it('a sync step 1 naming 200,000 clients (read-only token) is answered with the whole document, not decoded; the socket stays open and the room goes on', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
    const writer = await raw(server, 'write');
    const content = new Y.Doc();
    content.getText('text').insert(0, 'the room');
    writer.send(encodeRelayMessage((e) => writeRelayUpdate(e, Y.encodeStateAsUpdate(content))));
    await writer.handled();
    const c = await raw(server, 'read');
    const whole = await answerTo(c, stateVector(200_000));
    expect(textOf(docOf(whole))).toBe('the room');
    await c.handled();
    expect(c.closeCode).toBeNull();
    expect(await metric(server.url, WHOLE_ANSWERS)).toBe(1);
    await stillServes(server, 'after the state vector flood');
    expect(errorLines(server)).toEqual([]);
  });

  it('a client holding more clients than the room has plus RELAY_MAX_STATE_VECTOR_CLIENTS (its storage was reset) syncs both ways', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, RELAY_MAX_STATE_VECTOR_CLIENTS: '50' });
    // The room lost what 100 clients wrote; one client wrote since.
    const writer = await raw(server, 'write');
    const since = new Y.Doc();
    since.clientID = 1;
    since.getMap('m').set('since', 'the reset');
    writer.send(encodeRelayMessage((e) => writeRelayUpdate(e, Y.encodeStateAsUpdate(since))));
    await writer.handled();
    // A client that still holds the 100 clients' edits, and the room's one.
    const held = new Y.Doc();
    for (let i = 0; i < 100; i++) {
      held.clientID = 1000 + i;
      held.getMap('m').set(`k${i}`, i);
    }
    const c = await raw(server, 'write');
    const answer = await answerTo(c, Y.encodeStateVector(held));
    expect(c.closeCode).toBeNull();
    Y.applyUpdate(held, answer);
    expect(held.getMap('m').get('since')).toBe('the reset');
    // and it gives the room back what the room lost
    c.send(encodeRelayMessage((e) => writeRelayUpdate(e, Y.encodeStateAsUpdate(held))));
    expect(docOf(await c.handled()).getMap('m').size).toBe(101);
    expect(c.closeCode).toBeNull();
  });

  it('a cold room (its document not built yet) answers a state vector past the bound with its whole stored content', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, RELAY_MAX_STATE_VECTOR_CLIENTS: '50' });
    const registry = server.app.relayRooms;
    if (!registry) throw new Error('no relay');
    const stored = new Y.Doc();
    stored.getText('text').insert(0, 'stored');
    await registry.store.append([{ room: ROOM, updates: [Y.encodeStateAsUpdate(stored)] }]);
    const cold: boolean[] = [];
    registry.on('loaded', (name: string) => {
      const room = registry.rooms.get(name);
      if (!room) return;
      const answer = room.answerStep1.bind(room);
      room.answerStep1 = (peer, sv) => {
        cold.push(room.isCold);
        return answer(peer, sv);
      };
    });
    // the step 1 goes out the moment the socket opens, before the room is built
    const c = RawClient.start(`${server.wsUrl}/relay/${ROOM}?token=${await token('read')}`);
    scope.track(c);
    c.ws.once('open', () => c.send(encodeRelayMessage((e) => writeRelaySyncStep1(e, stateVector(200_000)))));
    const step2 = (await c.next((m) => m.type === 'sync-step2', 10_000)) as { update: Uint8Array };
    expect(cold[0]).toBe(true);
    expect(textOf(docOf(step2.update))).toBe('stored');
    await c.handled();
    expect(c.closeCode).toBeNull();
  });

  it('a document with more clients than RELAY_MAX_STATE_VECTOR_CLIENTS still syncs: the bound counts clients beyond the room’s', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, RELAY_MAX_STATE_VECTOR_CLIENTS: '50' });
    // 300 clients wrote to the room (a new client id per session, as stock clients do).
    const writer = await raw(server, 'write');
    const doc = new Y.Doc();
    for (let i = 0; i < 300; i++) {
      doc.clientID = 1000 + i;
      doc.getText('text').insert(0, 'x');
    }
    writer.send(encodeRelayMessage((e) => writeRelayUpdate(e, Y.encodeStateAsUpdate(doc))));
    await writer.handled();
    // An honest peer holding all of them and a few of its own: answered.
    const peer = await raw(server, 'read');
    for (let i = 0; i < 10; i++) {
      doc.clientID = 5000 + i;
      doc.getText('text').insert(0, 'y');
    }
    expect(Y.decodeStateVector(Y.encodeStateVector(doc)).size).toBe(310);
    peer.send(encodeRelayMessage((e) => writeRelaySyncStep1(e, Y.encodeStateVector(doc))));
    await peer.next((m) => m.type === 'sync-step2');
    expect(peer.closeCode).toBeNull();
    expect(await metric(server.url, WHOLE_ANSWERS)).toBe(0);
    // 300 + 50 clients is the bound here: 351 are not decoded, and get the whole document.
    const past = await raw(server, 'read');
    const whole = await answerTo(past, stateVector(351, 1000));
    expect(docOf(whole).getText('text').length).toBe(300);
    expect(past.closeCode).toBeNull();
    expect(await metric(server.url, WHOLE_ANSWERS)).toBe(1);
  });
});

describe('countStateVector', () => {
  it('counts the entries of a real state vector', () => {
    const doc = new Y.Doc();
    for (let i = 0; i < 5; i++) {
      doc.clientID = 2 ** 31 + i;
      doc.getMap('m').set(String(i), i);
    }
    expect(countStateVector(Y.encodeStateVector(doc), 5)).toEqual({ ok: true, clients: 5, tooMany: false });
    expect(countStateVector(Y.encodeStateVector(new Y.Doc()), 0)).toEqual({ ok: true, clients: 0, tooMany: false });
  });

  it('finds too many from the count alone, before reading the entries it announces', () => {
    // announces 2^40 entries and holds none: a decoder that read them first would call it truncated
    const e = encoding.createEncoder();
    encoding.writeVarUint(e, 2 ** 40);
    expect(countStateVector(encoding.toUint8Array(e), 1000)).toEqual({ ok: true, clients: 2 ** 40, tooMany: true });
    expect(countStateVector(stateVector(1001), 1000)).toEqual({ ok: true, clients: 1001, tooMany: true });
    expect(countStateVector(stateVector(1000), 1000)).toEqual({ ok: true, clients: 1000, tooMany: false });
  });

  it('finds malformed state vectors where Y.decodeStateVector throws', () => {
    const sv = stateVector(3);
    for (const bad of [new Uint8Array(), sv.subarray(0, sv.length - 1), Uint8Array.from([1, 0x80]), Uint8Array.from([1, ...new Array<number>(9).fill(0xff), 1, 1])]) {
      expect(() => Y.decodeStateVector(bad)).toThrow();
      expect(countStateVector(bad, 10)).toMatchObject({ ok: false });
    }
  });
});

describe('readPresence', () => {
  const limits: PresenceLimits = { maxStateBytes: 100, maxStatesPerConnection: 4, maxValueDepth: 4, maxEntries: 10 };

  it('refuses from the count alone, before reading the entries it announces', () => {
    const e = encoding.createEncoder();
    encoding.writeVarUint(e, 2 ** 40);
    expect(() => readPresence(encoding.toUint8Array(e), limits)).toThrow(expect.objectContaining({ limit: 'awareness_entries' }) as Error);
    expect(() => readPresence(tinyEntries(11), limits)).toThrow(PresenceRefused);
    expect(readPresence(tinyEntries(10), limits)).toHaveLength(10);
  });

  it('refuses a client id or clock past 2^53 - 1 as malformed (clients encode them inexactly)', () => {
    const TWO_POW_53 = Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]);
    const entry = (id: number | Uint8Array, clock: number | Uint8Array): Uint8Array =>
      encoding.encode((e) => {
        encoding.writeVarUint(e, 1);
        for (const n of [id, clock]) {
          if (typeof n === 'number') encoding.writeVarUint(e, n);
          else encoding.writeUint8Array(e, n);
        }
        encoding.writeVarString(e, '{}');
      });
    expect(readPresence(entry(Number.MAX_SAFE_INTEGER, 1), limits)).toHaveLength(1);
    for (const bad of [entry(TWO_POW_53, 1), entry(1, TWO_POW_53)]) {
      expect(() => readPresence(bad, limits)).toThrow(expect.objectContaining({ limit: 'malformed' }) as Error);
    }
  });

  it('reads the headers only: a state is checked (JSON, nesting) when asked for', () => {
    const e = encoding.createEncoder();
    encoding.writeVarUint(e, 3);
    for (const [id, json] of [
      [1, '{"broken'],
      [2, ' null\n'],
      [3, '[[[[[1]]]]]'],
    ] as const) {
      encoding.writeVarUint(e, id);
      encoding.writeVarUint(e, 1);
      encoding.writeVarString(e, json);
    }
    const entries = readPresence(encoding.toUint8Array(e), limits);
    expect(entries.map((x) => [x.clientID, x.removed])).toEqual([
      [1, false],
      [2, true],
      [3, false],
    ]);
    expect(() => checkPresenceState(entries[0] as never, limits)).toThrow(expect.objectContaining({ limit: 'malformed' }) as Error);
    expect(() => checkPresenceState(entries[1] as never, limits)).not.toThrow();
    expect(() => checkPresenceState(entries[2] as never, limits)).toThrow(expect.objectContaining({ limit: 'value_depth' }) as Error);
  });

  it('allows four times a full room of ids by default', () => {
    expect(presenceEntryLimit(50, 4)).toBe(800);
  });
});

describe('awareness entry bound in a room spanning instances', () => {
  it("a newcomer echoing every state the room holds is not refused when other instances' states outnumber the static bound", () => {
    const presence = { ...DEFAULT_PRESENCE_LIMITS, maxEntries: 8 };
    const room = new Room('acme-conversation-wide', { fanout: new LocalFanout(), limits: DEFAULT_UPDATE_LIMITS, presence, onAccepted: () => undefined, onRemoteRefused: () => undefined });
    try {
      // 20 states from other instances (applied as they come, no bound of this instance's)
      const others = Array.from({ length: 20 }, (_, i) => ({ clientID: 1000 + i, clock: 1, json: '{"user":"x"}' }));
      const update = encodeAwarenessEntries(others);
      room.applyRemoteAwareness(update, encodeRelayMessage((e) => writeRelayAwareness(e, update)));
      expect(room.awareness.getStates().size).toBe(20);
      const closes: number[] = [];
      const peer = { id: 'newcomer', send: () => undefined, close: (code: number) => void closes.push(code) };
      room.join(peer);
      // stock y-websocket echoes the 20 states it was told, with its own
      const echo = encodeAwarenessEntries([...others, { clientID: 7, clock: 1, json: '{"user":"me"}' }]);
      expect(() => room.applyAwareness(echo, peer, encodeRelayMessage((e) => writeRelayAwareness(e, echo)))).not.toThrow();
      expect(room.awareness.getStates().get(7)).toEqual({ user: 'me' });
      // a message far past what the room holds is still refused from its count
      expect(() => room.applyAwareness(tinyEntries(100), peer, new Uint8Array())).toThrow(PresenceRefused);
    } finally {
      room.destroy();
    }
  });
});
