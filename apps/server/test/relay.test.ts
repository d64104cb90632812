import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import {
  encodeRelayMessage,
  writeRelayAwareness,
  writeRelayQueryAwareness,
  writeRelaySyncStep1,
  writeRelaySyncStep2,
  writeRelayUpdate,
  type RelayMessage,
} from '@sync-suite/shared';
import { serverPerTest } from '../../../test/helpers/server.js';
import {
  connectRawClient,
  docUntil,
  RawClient,
  stockClient,
  synced,
  textOf,
  until,
  type StockClient,
  type StockVersion,
} from '../../../test/fixtures/relay-clients.js';

const ROOM = 'acme-conversation-relay-1';
const scope = serverPerTest();
afterEach(() => scope.close());

function provider(version: StockVersion, room = ROOM, params: Record<string, string> = {}): StockClient {
  const c = stockClient(version, scope.current.wsUrl, room, params);
  scope.track(c);
  return c;
}

const raw = (room = ROOM, query = '') => connectRawClient(scope, `/relay/${room}${query}`);

const isType = (type: RelayMessage['type']) => (m: RelayMessage) => m.type === type;
const updateOf = (edit: (doc: Y.Doc) => void): Uint8Array => {
  const doc = new Y.Doc();
  edit(doc);
  return Y.encodeStateAsUpdate(doc);
};

describe('relay with stock y-websocket clients', () => {
  it.each([
    [3, 3],
    [2, 2],
    [3, 2],
  ] as const)('syncs text and awareness between y-websocket %d.x and %d.x', async (va, vb) => {
    await scope.start();
    const a = provider(va);
    const b = provider(vb);
    await Promise.all([synced(a.p), synced(b.p)]);
    a.doc.getText('text').insert(0, 'hello from a');
    await docUntil(b.doc, () => textOf(b.doc) === 'hello from a');
    b.doc.getText('text').insert(0, 'b says: ');
    await docUntil(a.doc, () => textOf(a.doc) === 'b says: hello from a');

    a.p.awareness.setLocalStateField('user', { name: 'alice' });
    const seen = () => (b.p.awareness.getStates().get(a.doc.clientID) as { user?: { name: string } } | undefined)?.user?.name === 'alice';
    await until(b.p.awareness as never, 'change', seen, 5000, 'awareness of a at b');

    // Closing a removes its awareness at b (broadcast by the server on close).
    a.p.destroy();
    await until(b.p.awareness as never, 'change', () => !b.p.awareness.getStates().has(a.doc.clientID), 5000, 'removal');
  });

  it('keeps data for a client that joins later (relay, not peer-to-peer)', async () => {
    await scope.start();
    const a = provider(3);
    await synced(a.p);
    a.doc.getArray<number>('list').push([1, 2, 3]);
    const b = provider(2);
    await synced(b.p);
    await docUntil(b.doc, () => b.doc.getArray('list').length === 3);
    expect(b.doc.getArray('list').toArray()).toEqual([1, 2, 3]);
  });
});

describe('relay protocol (raw frames)', () => {
  it('sends sync step 1 and known awareness on open, answers step 1', async () => {
    await scope.start();
    const first = await raw();
    await first.next(isType('sync-step1'));
    // first publishes awareness; a later connection receives it on open
    const aw = new awarenessProtocol.Awareness(new Y.Doc());
    aw.setLocalState({ name: 'first' });
    first.send(encodeRelayMessage((e) => writeRelayAwareness(e, awarenessProtocol.encodeAwarenessUpdate(aw, [aw.clientID]))));
    await first.next(isType('awareness'), 5000, 'awareness echo');
    aw.destroy();

    const update = updateOf((d) => d.getText('text').insert(0, 'raw'));
    first.send(encodeRelayMessage((e) => writeRelayUpdate(e, update)));
    await first.handled();

    const second = await raw();
    await second.next(isType('sync-step1'));
    await second.next(isType('awareness'), 5000, 'known awareness on open');
    second.send(encodeRelayMessage((e) => writeRelaySyncStep1(e, Y.encodeStateVector(new Y.Doc()))));
    const step2 = (await second.next(isType('sync-step2'))) as { update: Uint8Array };
    const doc = new Y.Doc();
    Y.applyUpdate(doc, step2.update);
    expect(textOf(doc)).toBe('raw');

    second.send(encodeRelayMessage((e) => writeRelayQueryAwareness(e)));
    await until(second.ws as never, 'decoded', () => second.messages.filter(isType('awareness')).length >= 2, 5000, 'query answer');

    // first leaves: second hears that its awareness state was removed
    first.close();
    await until(second.ws as never, 'decoded', () => second.messages.filter(isType('awareness')).length >= 3, 5000, 'removal');
    const removal = second.messages.filter(isType('awareness')).at(-1) as { update: Uint8Array };
    const target = new awarenessProtocol.Awareness(new Y.Doc());
    awarenessProtocol.applyAwarenessUpdate(target, (second.messages.find(isType('awareness')) as { update: Uint8Array }).update, null);
    expect(target.getStates().size).toBe(2); // first's state and target's own local state
    awarenessProtocol.applyAwarenessUpdate(target, removal.update, null);
    expect([...target.getStates().keys()]).toEqual([target.clientID]);
    target.destroy();
  });

  it('sends an update (or step 2) to the other connections, not back to its sender; awareness goes to the sender too', async () => {
    await scope.start();
    const [a, b] = [await raw(), await raw()];
    await Promise.all([a.next(isType('sync-step1')), b.next(isType('sync-step1'))]);
    const viaUpdate = updateOf((d) => d.getText('text').insert(0, 'by update'));
    a.send(encodeRelayMessage((e) => writeRelayUpdate(e, viaUpdate)));
    await b.next(isType('update'), 5000, 'update at b');
    // A step 2 that brings something new is re-encoded as an update for the others.
    const viaStep2 = updateOf((d) => d.getText('other').insert(0, 'by step 2'));
    a.send(encodeRelayMessage((e) => writeRelaySyncStep2(e, viaStep2)));
    await until(b.ws as never, 'decoded', () => b.messages.filter(isType('update')).length === 2, 5000, 'step 2 at b as an update');
    const aw = new awarenessProtocol.Awareness(new Y.Doc());
    aw.setLocalState({ name: 'a' });
    a.send(encodeRelayMessage((e) => writeRelayAwareness(e, awarenessProtocol.encodeAwarenessUpdate(aw, [aw.clientID]))));
    aw.destroy();

    const whole = new Y.Doc();
    Y.applyUpdate(whole, await a.handled());
    expect([textOf(whole), textOf(whole, 'other')]).toEqual(['by update', 'by step 2']);
    expect(a.messages.filter((m) => m.type === 'update')).toEqual([]);
    expect(a.messages.filter(isType('awareness'))).toHaveLength(1); // its own presence, back
    await b.next(isType('awareness'), 5000, 'awareness at b');
  });

  it('answers step 1 from storage even when it arrives before the room finished loading', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'relay-early-'));
    try {
      let server = await scope.start({ STORAGE: 'sqlite', DATA_DIR: dataDir });
      const writer = provider(3, 'acme-conversation-early');
      await synced(writer.p);
      writer.doc.getText('text').insert(0, 'stored before');
      const reader = provider(2, 'acme-conversation-early');
      await docUntil(reader.doc, () => textOf(reader.doc) === 'stored before');
      await server.close(); // graceful: commits, then closes sockets
      await scope.closeTracked();

      server = await scope.start({ STORAGE: 'sqlite', DATA_DIR: dataDir });
      // Step 1 goes out the moment the socket opens, while the server is still loading the room.
      const c = RawClient.start(`${server.wsUrl}/relay/acme-conversation-early`);
      scope.track(c);
      c.ws.once('open', () => c.send(encodeRelayMessage((e) => writeRelaySyncStep1(e, Y.encodeStateVector(new Y.Doc())))));
      const step2 = (await c.next(isType('sync-step2'))) as { update: Uint8Array };
      const doc = new Y.Doc();
      Y.applyUpdate(doc, step2.update);
      expect(textOf(doc)).toBe('stored before');
    } finally {
      await scope.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
