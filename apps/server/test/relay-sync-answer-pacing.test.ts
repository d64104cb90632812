/**
 * A sync step 1 is a few bytes and its answer can be the whole document: a connection (read-only
 * is enough) that asks again and again must not keep the server encoding and sending the document
 * at its message rate. After a large answer (the connection's first excepted), its next step 1
 * waits for RELAY_SYNC_ANSWER_INTERVAL_MS; every step 1 is still answered, in order, and an honest
 * client's later step 1s (it holds the document, their answers are small) are answered at once.
 * The whole document (the answer to an empty state vector) is encoded once per version of the
 * document and shared: a connection per request gets no more encodings than one connection; and
 * other large answers that had to be encoded are bounded per token sub
 * (RELAY_LARGE_SYNC_ANSWERS_PER_MINUTE), so a state vector crafted to miss most of the document,
 * sent on a connection per request, gets no more either.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { encodeRelayMessage, writeRelayQueryAwareness, writeRelaySyncStep1, writeRelayUpdate, type RelayMessage } from '@sync-suite/shared';
import { serverPerTest, TEST_SECRET, testToken, type TestServer } from '../../../test/helpers/server.js';
import { metric, RawClient } from '../../../test/fixtures/relay-clients.js';
import { captureUpdate } from '../../../test/helpers/capture-update.js';

const ROOM = 'acme-conversation-step1';
const scope = serverPerTest();
afterEach(() => scope.close());

async function raw(server: TestServer, scopeName: 'read' | 'write'): Promise<RawClient> {
  const token = await testToken(scopeName === 'read' ? 'reader' : 'writer', [ROOM], { scope: scopeName });
  const c = await RawClient.connect(`${server.wsUrl}/relay/${ROOM}?token=${token}`);
  scope.track(c);
  await c.next((m) => m.type === 'sync-step1');
  return c;
}

const step1 = (doc: Y.Doc) => encodeRelayMessage((e) => writeRelaySyncStep1(e, Y.encodeStateVector(doc)));
const answers = (c: RawClient): Array<Extract<RelayMessage, { type: 'sync-step2' }>> =>
  c.messages.filter((m): m is Extract<RelayMessage, { type: 'sync-step2' }> => m.type === 'sync-step2');

/** A room whose document is 300 kB: its whole state is a large answer. */
async function largeRoom(server: TestServer): Promise<{ writer: RawClient; doc: Y.Doc }> {
  const writer = await raw(server, 'write');
  const doc = new Y.Doc();
  for (let i = 0; i < 3; i++) {
    const update = captureUpdate(doc, () => doc.getText('text').insert(0, String(i).repeat(100_000)));
    writer.send(encodeRelayMessage((e) => writeRelayUpdate(e, update)));
  }
  expect((await writer.handled()).byteLength).toBeGreaterThan(300_000);
  return { writer, doc };
}

/**
 * The server's count of paced step 1s, read every 20 ms until it counts one, `done` holds (an
 * answer came instead) or 5 s passed; a step 1 is counted once the server has read it.
 */
async function pacedCount(server: TestServer, done: () => boolean): Promise<number> {
  const deadline = Date.now() + 5000;
  let paced = 0;
  while (Date.now() < deadline && !done()) {
    paced = await metric(server.url, 'sync_rejected_messages_total', { reason: 'sync_step1_paced' }).catch(() => 0);
    if (paced > 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return paced;
}

describe('sync step 1 answers (RELAY_SYNC_ANSWER_INTERVAL_MS)', () => {
  it('a read-only connection asking for the whole document again and again gets it once per interval', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, MAX_MESSAGES_PER_SECOND: '100000', RELAY_SYNC_ANSWER_INTERVAL_MS: '60000' });
    const { writer, doc } = await largeRoom(server);
    const reader = await raw(server, 'read');
    const empty = new Y.Doc();
    for (let i = 0; i < 50; i++) reader.send(step1(empty));
    await reader.next(() => answers(reader).length >= 2, 5000, 'the first two answers');
    // The third waits for the interval: the server counts it as paced once it has read it.
    const paced = await pacedCount(server, () => answers(reader).length >= 50);
    expect(answers(reader).length, 'whole-document answers sent for 50 step 1s of 4 bytes').toBe(2);
    expect(paced).toBe(1);
    // The room goes on meanwhile: another reader hears the writer's update.
    const other = await raw(server, 'read');
    const update = captureUpdate(doc, () => doc.getText('text').insert(0, 'more'));
    writer.send(encodeRelayMessage((e) => writeRelayUpdate(e, update)));
    await other.updatesHeard(1);
    expect([reader.closeCode, writer.closeCode]).toEqual([null, null]);
  });

  it('every step 1 is still answered, in order, and an up-to-date client is answered at once', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, MAX_MESSAGES_PER_SECOND: '100000', RELAY_SYNC_ANSWER_INTERVAL_MS: '200' });
    const { doc } = await largeRoom(server);
    // An honest client: its opening sync is large, its later step 1s (it holds the document) are not paced.
    const honest = await raw(server, 'write');
    honest.send(step1(new Y.Doc()));
    await honest.next(() => answers(honest).length >= 1);
    for (let i = 0; i < 5; i++) honest.send(step1(doc));
    await honest.next(() => answers(honest).length >= 6, 5000, 'six answers');
    expect(await metric(server.url, 'sync_rejected_messages_total', { reason: 'sync_step1_paced' }).catch(() => 0)).toBe(0);

    // Four whole-document step 1s then a presence query: four answers, then the query's.
    const asker = await raw(server, 'read');
    const from = asker.messages.length;
    for (let i = 0; i < 4; i++) asker.send(step1(new Y.Doc()));
    asker.send(encodeRelayMessage((e) => writeRelayQueryAwareness(e)));
    await asker.next((m) => m.type === 'awareness', 5000, 'the query answered after the step 1s');
    const types = asker.messages.slice(from).map((m) => m.type);
    expect(types).toEqual(['sync-step2', 'sync-step2', 'sync-step2', 'sync-step2', 'awareness']);
    expect(await metric(server.url, 'sync_rejected_messages_total', { reason: 'sync_step1_paced' })).toBe(2);
  });
});

describe('the whole document as an answer', () => {
  it('is encoded once per version of the document, however many connections ask, and never served stale', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, MAX_MESSAGES_PER_SECOND: '100000' });
    const { writer, doc } = await largeRoom(server);
    const room = server.app.relayRooms.rooms.get(ROOM);
    const cached = (): unknown => (room as unknown as { wholeAnswer?: Uint8Array | null }).wholeAnswer;
    const ask = async (): Promise<Uint8Array> => {
      const c = await raw(server, 'read');
      c.send(step1(new Y.Doc()));
      const answer = (await c.next((m) => m.type === 'sync-step2')) as Extract<RelayMessage, { type: 'sync-step2' }>;
      c.close();
      return answer.update;
    };
    const first = Buffer.from(await ask());
    const shared = cached();
    expect(shared, 'the whole-document answer kept for the next asker').toBeInstanceOf(Uint8Array);
    // A connection per request: the same encoding each time.
    for (let i = 0; i < 5; i++) expect(first.equals(await ask())).toBe(true);
    expect(cached()).toBe(shared);
    // The document changes: the next asker gets the new version.
    const update = captureUpdate(doc, () => doc.getText('text').insert(0, 'changed'));
    writer.send(encodeRelayMessage((e) => writeRelayUpdate(e, update)));
    await writer.handled();
    const fresh = new Y.Doc();
    Y.applyUpdate(fresh, await ask());
    expect(fresh.getText('text').toString()).toBe(doc.getText('text').toString());
    expect(cached()).not.toBe(shared);
  });
});

describe('RELAY_LARGE_SYNC_ANSWERS_PER_MINUTE', () => {
  it('a connection per request with a state vector that lacks most of the document: bounded per token sub', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, MAX_MESSAGES_PER_SECOND: '100000', RELAY_LARGE_SYNC_ANSWERS_PER_MINUTE: '2' });
    await largeRoom(server);
    const peek = await raw(server, 'read');
    const known = (peek.messages.find((m) => m.type === 'sync-step1') as Extract<RelayMessage, { type: 'sync-step1' }>).stateVector;
    const client = [...Y.decodeStateVector(known).keys()][0] as number;
    // Names one of the document's clients at clock 1: the answer is nearly all of it, encoded for this state vector.
    const crafted = encodeRelayMessage((e) => writeRelaySyncStep1(e, Y.encodeStateVector(new Map([[client, 1]]))));
    const askers: RawClient[] = [];
    for (let i = 0; i < 2; i++) {
      const c = await raw(server, 'read');
      askers.push(c);
      c.send(crafted);
      await c.next((m) => m.type === 'sync-step2');
      c.close();
    }
    const third = await raw(server, 'read');
    third.send(crafted);
    const paced = await pacedCount(server, () => answers(third).length > 0);
    expect(answers(third).length, 'large answers encoded for a third connection of the same sub').toBe(0);
    expect(paced).toBe(1);
    // Another sub is not held back, nor is the whole document an empty state vector gets.
    const newcomer = await raw(server, 'read');
    newcomer.send(step1(new Y.Doc()));
    await newcomer.next((m) => m.type === 'sync-step2', 5000, 'the whole document for an empty state vector');
    const otherToken = await testToken('someone-else', [ROOM], { scope: 'read' });
    const other = await RawClient.connect(`${server.wsUrl}/relay/${ROOM}?token=${otherToken}`);
    scope.track(other);
    await other.next((m) => m.type === 'sync-step1');
    other.send(crafted);
    await other.next((m) => m.type === 'sync-step2', 5000, "another sub's answer");
  });
});
