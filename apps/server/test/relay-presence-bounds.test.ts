/**
 * Presence is bounded: a connection sets or removes only the client ids it introduced (a read-only
 * member cannot remove someone else's), states have a size and a per-connection count, queries
 * are coalesced (no amplification from tiny queries), and a paused reader is cut off whatever
 * the message sizes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import { encodeAwarenessEntries, encodeRelayMessage, writeRelayAwareness, writeRelayQueryAwareness, writeRelayUpdate, type RelayMessage } from '@sync-suite/shared';
import { serverPerTest, TEST_SECRET, testToken, type TestServer } from '../../../test/helpers/server.js';
import { withTimeout } from '../../../test/helpers/timeout.js';
import { metric, RawClient, stockProvider, synced } from '../../../test/fixtures/relay-clients.js';
import { changedPresence, readPresence, type PresenceEntry } from '../src/relay/presence.js';

const ROOM = 'acme-conversation-presence';
const scope = serverPerTest();
afterEach(() => scope.close());

const token = (scope: 'read' | 'write') => testToken('u1', [ROOM], { ttlSeconds: 60, scope });

async function raw(server: TestServer, scopeName: 'read' | 'write'): Promise<RawClient> {
  const c = await RawClient.connect(`${server.wsUrl}/relay/${ROOM}?token=${await token(scopeName)}`);
  scope.track(c);
  await c.next((m) => m.type === 'sync-step1');
  return c;
}

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

const awarenessFrame = (entries: Array<{ clientID: number; clock: number; state: unknown }>) =>
  encodeRelayMessage((e) => writeRelayAwareness(e, encodeAwarenessEntries(entries.map((x) => ({ ...x, json: JSON.stringify(x.state), removed: x.state === null })))));

/** The presence states a newcomer is told about when it joins. */
async function statesSeenByNewcomer(server: TestServer): Promise<Map<number, unknown>> {
  const c = await raw(server, 'read');
  c.send(encodeRelayMessage((e) => writeRelayQueryAwareness(e)));
  const m = (await c.next((x) => x.type === 'awareness')) as Extract<RelayMessage, { type: 'awareness' }>;
  const a = new awarenessProtocol.Awareness(new Y.Doc());
  a.setLocalState(null);
  awarenessProtocol.applyAwarenessUpdate(a, m.update, 'test');
  const states = new Map(a.getStates());
  a.destroy();
  c.close();
  return states;
}

describe('relay presence bounds', () => {
  it("a read-only member can neither remove nor change another member's presence", async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
    const doc = new Y.Doc();
    const alice = stockProvider(3, server.wsUrl, ROOM, doc, { token: await token('write') });
    scope.track(alice, doc);
    await synced(alice);
    alice.awareness.setLocalStateField('user', 'alice');
    const reader = await raw(server, 'read');
    await reader.next((m) => m.type === 'awareness');
    const id = doc.clientID;
    reader.send(awarenessFrame([{ clientID: id, clock: 1000, state: null }]));
    reader.send(awarenessFrame([{ clientID: id, clock: 1001, state: { user: 'mallory' } }]));
    // Its own state is allowed (read-only members show presence too).
    reader.send(awarenessFrame([{ clientID: 4242, clock: 1, state: { user: 'reader' } }]));
    await withTimeout(
      (async () => {
        for (;;) {
          const states = await statesSeenByNewcomer(server);
          if (states.has(4242)) return states;
        }
      })(),
      10_000,
      'reader presence',
    );
    const states = await statesSeenByNewcomer(server);
    expect(states.get(id)).toEqual({ user: 'alice' });
    expect(states.get(4242)).toEqual({ user: 'reader' });
    expect(reader.closeCode).toBeNull();
  });

  it.each(['read', 'write'] as const)(
    'a %s member repeating its own state in one message: peers get one state per client id, a bounded frame, and nothing for an unchanged repeat',
    async (scopeName) => {
      const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
      const doc = new Y.Doc();
      const watcher = stockProvider(3, server.wsUrl, ROOM, doc, { token: await token('write') });
      scope.track(watcher, doc);
      await synced(watcher);
      const observer = await raw(server, 'read');
      const sender = await raw(server, scopeName);
      const big = { user: 'x'.repeat(15_000) };
      // 200 entries of its own id (3 MB): the reviewer's 600 made a 9.6 MB frame to every peer.
      const repeated = awarenessFrame(Array.from({ length: 200 }, () => ({ clientID: 4343, clock: 1, state: big })));
      expect(repeated.length).toBeGreaterThan(3_000_000);
      sender.send(repeated);
      sender.send(repeated); // unchanged: not forwarded
      sender.send(awarenessFrame([{ clientID: 4343, clock: 2, state: { user: 'small' } }]));
      const entriesOf = (m: RelayMessage): PresenceEntry[] =>
        readPresence((m as Extract<RelayMessage, { type: 'awareness' }>).update, { maxStateBytes: 1 << 24, maxStatesPerConnection: 1 << 20, maxValueDepth: 1 << 10, maxEntries: 1 << 20 });
      const about = (m: RelayMessage): boolean => m.type === 'awareness' && entriesOf(m).some((e) => e.clientID === 4343);
      await observer.next((m) => about(m) && entriesOf(m).some((e) => e.clock === 2), 10_000, 'the small state');
      const heard = observer.messages.filter(about).map(entriesOf);
      expect(heard.map((entries) => entries.map((e) => [e.clientID, e.clock]))).toEqual([[[4343, 1]], [[4343, 2]]]);
      const frames = observer.frames.filter((f) => f.length > 10_000);
      expect(frames.length).toBe(1);
      expect(frames[0]?.length).toBeLessThan(4 * 16_384);
      // A stock client sees the presence.
      await withTimeout(
        (async () => {
          while ((watcher.awareness.getStates().get(4343) as { user?: string } | undefined)?.user !== 'small') await new Promise((r) => setTimeout(r, 20));
        })(),
        5000,
        'stock client presence',
      );
      expect(sender.closeCode).toBeNull();
    },
  );

  it('keeps, per client id, the last entry the awareness protocol would apply', () => {
    const e = (clientID: number, clock: number, state: unknown): PresenceEntry => ({ clientID, clock, json: utf8(JSON.stringify(state)), removed: state === null });
    const held = new Map([[2, 10]]);
    const kept = changedPresence(
      [e(1, 5, 'a'), e(1, 7, 'b'), e(1, 6, 'c'), e(2, 10, 'stale'), e(3, 1, 'x'), e(1, 7, null), e(3, 1, 'repeat'), e(2, 9, null)],
      (id) => held.get(id),
      (id) => held.has(id),
    );
    expect(kept.map((x) => [x.clientID, x.clock, text(x.json)])).toEqual([
      [1, 7, 'null'],
      [3, 1, '"x"'],
    ]);
    expect(changedPresence([e(2, 10, null)], (id) => held.get(id), (id) => held.has(id)).map((x) => text(x.json))).toEqual(['null']);
  });

  it('refuses a presence state over RELAY_MAX_AWARENESS_BYTES with 4413', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
    const c = await raw(server, 'read');
    let reason = '';
    c.ws.on('close', (_code: number, r: Buffer) => (reason = r.toString()));
    c.send(awarenessFrame([{ clientID: 7, clock: 1, state: { blob: 'x'.repeat(20_000) } }]));
    expect(await c.closed(5000)).toBe(4413);
    expect(reason).toBe('presence over a limit: awareness_bytes');
    expect(await metric(server.url, 'sync_rejected_messages_total', { reason: 'presence_awareness_bytes' })).toBe(1);
  });

  it('one connection introduces at most RELAY_MAX_AWARENESS_STATES client ids', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
    const c = await raw(server, 'write');
    c.send(awarenessFrame(Array.from({ length: 10 }, (_, i) => ({ clientID: 100 + i, clock: 1, state: { n: i } }))));
    c.send(encodeRelayMessage((e) => writeRelayQueryAwareness(e)));
    await c.next((m) => m.type === 'awareness');
    expect([...(await statesSeenByNewcomer(server)).keys()].sort()).toEqual([100, 101, 102, 103]);
  });

  it('a removal the awareness protocol ignores (an older clock) leaves the id owned: counted, and removed when its owner leaves', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
    const c = await raw(server, 'write');
    c.send(awarenessFrame([{ clientID: 700, clock: 10, state: { n: 700 } }]));
    c.send(awarenessFrame([{ clientID: 700, clock: 1, state: null }])); // stale: y-protocols keeps the state
    // 700 still counts: with the default limit of 4, three more ids are taken and the fifth is not
    c.send(awarenessFrame([701, 702, 703, 704].map((clientID) => ({ clientID, clock: 1, state: { n: clientID } }))));
    c.send(encodeRelayMessage((e) => writeRelayQueryAwareness(e)));
    await c.next((m) => m.type === 'awareness');
    expect([...(await statesSeenByNewcomer(server)).keys()].sort()).toEqual([700, 701, 702, 703]);
    c.close();
    await withTimeout(
      (async () => {
        while ((await statesSeenByNewcomer(server)).size > 0);
      })(),
      10_000,
      'presence of the connection that left',
    );
  });

  it("a connection's presence goes when it leaves, with one id or several, and an id its owner removed is free again", async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
    /** Waits until a newcomer is told exactly these states. */
    const seen = (want: Record<number, unknown>, what: string) =>
      withTimeout(
        (async () => {
          for (;;) {
            const states = Object.fromEntries(await statesSeenByNewcomer(server));
            if (JSON.stringify(states) === JSON.stringify(want)) return;
          }
        })(),
        10_000,
        what,
      );
    const one = await raw(server, 'write');
    const several = await raw(server, 'write');
    one.send(awarenessFrame([{ clientID: 501, clock: 1, state: { n: 'one' } }]));
    several.send(awarenessFrame([601, 602, 603].map((clientID) => ({ clientID, clock: 1, state: { n: clientID } }))));
    await seen({ 501: { n: 'one' }, 601: { n: 601 }, 602: { n: 602 }, 603: { n: 603 } }, 'all states');
    // 501's owner removes it: another connection may then introduce it.
    one.send(awarenessFrame([{ clientID: 501, clock: 2, state: null }]));
    const next = await raw(server, 'write');
    next.send(awarenessFrame([{ clientID: 501, clock: 3, state: { n: 'next' } }]));
    await seen({ 501: { n: 'next' }, 601: { n: 601 }, 602: { n: 602 }, 603: { n: 603 } }, '501 taken over');
    several.close();
    await seen({ 501: { n: 'next' } }, 'several left');
    next.close();
    await seen({}, 'next left');
    expect(one.closeCode).toBeNull();
  });

  it('tiny queries do not multiply a large state: answers are coalesced per interval', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, MAX_MESSAGES_PER_SECOND: '100000' });
    const c = await raw(server, 'read');
    c.send(awarenessFrame([{ clientID: 9, clock: 1, state: { blob: 'x'.repeat(15_000) } }]));
    await c.next((m) => m.type === 'awareness'); // its own state, fanned out
    const before = c.messages.filter((m) => m.type === 'awareness').length;
    for (let i = 0; i < 500; i++) c.send(encodeRelayMessage((e) => writeRelayQueryAwareness(e)));
    const started = Date.now();
    // First answer at once, then one for all the others at the end of the interval.
    await c.next(() => c.messages.filter((m) => m.type === 'awareness').length >= before + 2, 5000, 'coalesced answers');
    const answers = c.messages.filter((m) => m.type === 'awareness').length - before;
    expect(answers).toBe(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    expect(await metric(server.url, 'sync_rejected_messages_total', { reason: 'awareness_query_coalesced' })).toBeGreaterThanOrEqual(498);
  });

  it('a paused reader is cut off at RELAY_MAX_OUTGOING_BYTES even when every message is large', async () => {
    const server = await scope.start({ RELAY_MAX_OUTGOING_BYTES: String(16 * 1024 * 1024), MAX_MESSAGES_PER_SECOND: '100000' });
    const paused = await RawClient.connect(`${server.wsUrl}/relay/${ROOM}`);
    scope.track(paused);
    await paused.next((m) => m.type === 'sync-step1');
    (paused.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const writer = await RawClient.connect(`${server.wsUrl}/relay/${ROOM}`);
    scope.track(writer);
    const doc = new Y.Doc();
    const updates: Uint8Array[] = [];
    doc.on('update', (u: Uint8Array) => updates.push(u));
    // Each message (6 MB) is over a quarter of the per-receiver buffer (20 MB): the allowance
    // rises behind each; only the absolute cap stops the paused reader.
    for (let i = 0; i < 10; i++) doc.getText('t').insert(0, String.fromCharCode(97 + i).repeat(6 * 1024 * 1024));
    for (const u of updates) writer.send(encodeRelayMessage((e) => writeRelayUpdate(e, u)));
    const deadline = Date.now() + 30_000;
    while ((await metric(server.url, 'sync_rejected_messages_total', { reason: 'slow_consumer' })) < 1) {
      if (Date.now() > deadline) throw new Error('paused reader never cut off');
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    doc.destroy();
  });
});
