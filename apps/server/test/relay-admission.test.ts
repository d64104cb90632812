/** Relay admission and refusals: tokens, room names, read scope, bad input, size and rate limits, metrics. */
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { Errors, encodeRelayMessage, writeRelayAwareness, writeRelayUpdate, type RelayMessage } from '@sync-suite/shared';
import { serverPerTest, TEST_SECRET, testToken } from '../../../test/helpers/server.js';
import { upgradeStatus } from '../../../test/helpers/upgrade.js';
import { connectRawClient, docUntil, metric, stockProvider, synced, textOf } from '../../../test/fixtures/relay-clients.js';

const ROOM = 'acme-conversation-admission';
const scope = serverPerTest();
afterEach(() => scope.close());

const raw = (path: string) => connectRawClient(scope, path);

const token = (rooms: string[], scope: 'read' | 'write' = 'write') => testToken('u1', rooms, { ttlSeconds: 60, scope });
const textUpdate = (text: string): Uint8Array => {
  const d = new Y.Doc();
  d.getText('text').insert(0, text);
  return Y.encodeStateAsUpdate(d);
};
const isDenied = (m: RelayMessage) => m.type === 'auth' && m.authType === 0;

describe('relay auth', () => {
  it('refuses a missing or bad token with permission-denied then 4401, and counts it', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
    const none = await raw(`/relay/${ROOM}`);
    await none.next(isDenied, 5000, 'permission denied');
    expect(await none.closed()).toBe(4401);
    expect(none.messages.some((m) => m.type === 'sync-step1')).toBe(false);

    const bad = await raw(`/relay/${ROOM}?token=not-a-jwt`);
    await bad.next(isDenied);
    expect(await bad.closed()).toBe(4401);
    expect(await metric(server.url, 'sync_auth_failures_total', { endpoint: 'relay' })).toBe(2);
  });

  it('refuses a token for another room with permission-denied then 4403', async () => {
    await scope.start({ AUTH_SECRET: TEST_SECRET });
    const t = await token(['acme-conversation-other']);
    const c = await raw(`/relay/${ROOM}?token=${t}`);
    const denied = (await c.next(isDenied)) as { reason: string };
    expect(denied.reason).toContain('does not cover');
    expect(await c.closed()).toBe(4403);
  });

  it('refuses a malformed room name with 4400', async () => {
    await scope.start();
    for (const path of ['/relay/not-a-room', '/relay/', '/relay/acme-conversation-a/b']) {
      const c = await raw(path);
      expect(await c.closed()).toBe(4400);
    }
  });

  it('lets a stock client in with ?token= (params); a read token receives all, its updates are dropped and counted, its awareness passes', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET });
    const writerDoc = new Y.Doc();
    const writer = stockProvider(3, server.wsUrl, ROOM, writerDoc, { token: await token(['acme-conversation-*']) });
    const readerDoc = new Y.Doc();
    const reader = stockProvider(2, server.wsUrl, ROOM, readerDoc, { token: await token([ROOM], 'read') });
    scope.track(writer, reader, writerDoc, readerDoc);
    await Promise.all([synced(writer), synced(reader)]);

    writerDoc.getText('text').insert(0, 'from writer');
    await docUntil(readerDoc, () => textOf(readerDoc) === 'from writer');

    readerDoc.getText('text').insert(0, 'reader tries: ');
    reader.awareness.setLocalStateField('user', 'reader');
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no awareness from reader')), 5000);
      writer.awareness.on('change', () => {
        if (writer.awareness.getStates().get(readerDoc.clientID)?.['user'] !== 'reader') return;
        clearTimeout(timer);
        resolve();
      });
    });
    // The awareness (sent after the edit) has arrived, so the edit was seen and dropped.
    expect(await metric(server.url, 'sync_rejected_messages_total', { endpoint: 'relay', reason: 'read_only' })).toBeGreaterThanOrEqual(1);
    expect(textOf(writerDoc)).toBe('from writer');
    const check = await raw(`/relay/${ROOM}?token=${await token([ROOM], 'read')}`);
    await check.next((m) => m.type === 'sync-step1');
    expect(textOf(writerDoc)).toBe('from writer');
  });
});

describe('relay bad input and limits', () => {
  it('closes 4400 on an update that does not decode, counts it, and leaves the room intact', async () => {
    const server = await scope.start();
    const good = await raw(`/relay/${ROOM}`);
    good.send(encodeRelayMessage((e) => writeRelayUpdate(e, textUpdate('intact'))));
    await good.handled();

    const evil = await raw(`/relay/${ROOM}`);
    const broken = textUpdate('broken').slice(0, 9);
    evil.send(encodeRelayMessage((e) => writeRelayUpdate(e, broken)));
    expect(await evil.closed()).toBe(4400);

    const bogusAwareness = await raw(`/relay/${ROOM}`);
    bogusAwareness.send(encodeRelayMessage((e) => writeRelayAwareness(e, new Uint8Array([1, 5, 1, 3, 0x7b, 0x7b, 0x7b]))));
    expect(await bogusAwareness.closed()).toBe(4400);

    const garbage = await raw(`/relay/${ROOM}`);
    garbage.send(new Uint8Array([0, 9, 1, 2]));
    expect(await garbage.closed()).toBe(4400);

    expect(await metric(server.url, 'sync_rejected_messages_total', { endpoint: 'relay', reason: 'bad_update' })).toBe(1);
    expect(await metric(server.url, 'sync_rejected_messages_total', { endpoint: 'relay', reason: 'bad_awareness' })).toBe(1);
    expect(await metric(server.url, 'sync_rejected_messages_total', { endpoint: 'relay', reason: 'malformed' })).toBe(1);

    const docNow = new Y.Doc();
    const reader = stockProvider(3, server.wsUrl, ROOM, docNow);
    scope.track(reader, docNow);
    await synced(reader);
    expect(textOf(docNow)).toBe('intact');
    expect(good.closeCode).toBeNull();
  });

  it('closes 1009 above RELAY_MAX_MESSAGE_BYTES', async () => {
    const server = await scope.start({ RELAY_MAX_MESSAGE_BYTES: '1024' });
    const big = await raw(`/relay/${ROOM}`);
    big.send(encodeRelayMessage((e) => writeRelayUpdate(e, textUpdate('x'.repeat(2000)))));
    expect(await big.closed()).toBe(1009);
    expect(await metric(server.url, 'sync_rejected_messages_total', { reason: 'too_big' })).toBe(1);
  });

  it('slows a connection above the message rate without closing it, and closes 4429 far above it', async () => {
    // pace: 20/s; abuse: more than 2 x 20/s for 1 s, i.e. 40 messages read at once
    const env = { MAX_MESSAGES_PER_SECOND: '20', RATE_LIMIT_ABUSE_FACTOR: '2', RATE_LIMIT_ABUSE_SECONDS: '1' };
    const server = await scope.start(env);
    // A sync step 1 with an empty state vector: each is answered with a sync step 2 (presence
    // queries would not do: they are coalesced to one answer per interval).
    const query = new Uint8Array([0, 0, 1, 0]);
    const busy = await raw(`/relay/${ROOM}`);
    for (let i = 0; i < 35; i++) busy.send(query);
    // All 35 are answered (20 at once, the rest as the bucket refills); the socket stays open.
    await busy.next(() => busy.messages.filter((m) => m.type === 'sync-step2').length >= 35, 10_000, '35 answers');
    expect(busy.closeCode).toBeNull();
    expect(await metric(server.url, 'sync_rate_limit_pauses_total', { endpoint: 'relay' })).toBeGreaterThanOrEqual(1);

    const flood = await raw(`/relay/${ROOM}`);
    for (let i = 0; i < 200; i++) flood.send(query);
    expect(await flood.closed()).toBe(4429);
    expect(await metric(server.url, 'sync_rejected_messages_total', { reason: 'rate_limited' })).toBe(1);
    expect(busy.closeCode).toBeNull();
  });

  it('closes 4409 when the room is full', async () => {
    await scope.start({ MAX_PEERS_PER_ROOM: '2' });
    const a = await raw(`/relay/${ROOM}`);
    const b = await raw(`/relay/${ROOM}`);
    await Promise.all([a.next((m) => m.type === 'sync-step1'), b.next((m) => m.type === 'sync-step1')]);
    const c = await raw(`/relay/${ROOM}`);
    expect(await c.closed()).toBe(4409);
  });

  it('refuses upgrades beyond MAX_CONNECTIONS (signal and relay together) with HTTP 503', async () => {
    const server = await scope.start({ MAX_CONNECTIONS: '2' });
    const a = await raw(`/relay/${ROOM}`);
    const b = await raw(`/relay/acme-conversation-other`);
    await Promise.all([a.next((m) => m.type === 'sync-step1'), b.next((m) => m.type === 'sync-step1')]);
    expect(await upgradeStatus(`${server.url}/relay/${ROOM}`)).toBe(Errors.ERR_TOO_MANY_CONNECTIONS.httpStatus);
    expect(await upgradeStatus(`${server.url}/signal`)).toBe(503);
    expect(await metric(server.url, 'sync_rejected_messages_total', { reason: 'too_many_connections' })).toBe(2);
    // the ones admitted are untouched
    expect(a.closeCode).toBeNull();
    expect(b.closeCode).toBeNull();
  });
});

describe('relay metrics and readiness', () => {
  it('counts connections, rooms, updates, bytes and commit latency; /readyz checks storage', async () => {
    const server = await scope.start({ PERSIST_FLUSH_MS: '20' });
    const ready = await (await fetch(`${server.url}/readyz`)).json();
    expect(ready).toMatchObject({ checks: { storage: 'ok' } });

    const doc = new Y.Doc();
    const p = stockProvider(3, server.wsUrl, ROOM, doc);
    scope.track(p, doc);
    await synced(p);
    expect(await metric(server.url, 'sync_relay_connections')).toBe(1);
    expect(await metric(server.url, 'sync_relay_rooms')).toBe(1);
    const before = await metric(server.url, 'sync_relay_update_bytes_total');
    doc.getText('text').insert(0, 'counted');
    const otherDoc = new Y.Doc();
    const other = stockProvider(2, server.wsUrl, ROOM, otherDoc);
    scope.track(other, otherDoc);
    await docUntil(otherDoc, () => textOf(otherDoc) === 'counted');
    const updates = await metric(server.url, 'sync_relay_updates_total');
    expect(updates).toBeGreaterThanOrEqual(1);
    expect(await metric(server.url, 'sync_relay_update_bytes_total')).toBeGreaterThan(before);
    await server.app.sync.lifecycle.shutdown(() => undefined); // drain commits; histogram observes
    expect(await metric(server.url, 'sync_relay_persist_seconds_count')).toBeGreaterThanOrEqual(1);
  });
});
