/**
 * Refuting a sealed snapshot (docs/PROTOCOL-sealed.md, "Refuting a snapshot"), raw clients: a
 * device reports that the stored snapshot does not open; the server asks a writer other than its
 * author for a replacement, stores it at equal covers and sends it to the reporter. Bounds: a
 * refutation of another than the current snapshot is ignored, and a refuted snapshot makes the room
 * ask at most once per SEALED_REFUTATION_INTERVAL_MS.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readSealedServerMessage } from '@sync-suite/shared';
import { serverPerTest, TEST_SECRET, testToken } from '../../../test/helpers/server.js';
import { fakeEnvelope, RawSealed } from '../../../test/fixtures/sealed-raw.js';
import { sealedRegistry } from '../src/routes/sealed/index.js';
import { SealedRoom, type SealedPeer } from '../src/sealed/room.js';

const ROOM = 'acme-conversation-refute';
const scope = serverPerTest();
afterEach(() => scope.close());

const env = (n: number): Uint8Array => fakeEnvelope([n, 0xee, n]);
const requests = (c: RawSealed): number => c.messages.filter((m) => m.type === 'snapshot-request').length;

async function client(sub: string, scopeName: 'read' | 'write' = 'write'): Promise<RawSealed> {
  const token = await testToken(sub, [ROOM], scopeName === 'read' ? { scope: 'read' } : {});
  const c = await RawSealed.connect(scope.current.wsUrl, `/sealed/${ROOM}?token=${token}`);
  scope.track(c);
  c.hello(0, 0);
  await c.next('caught-up');
  return c;
}

describe('sealed snapshot refutation (server)', () => {
  it('asks a writer other than the author, stores its answer at equal covers, sends it to the reporter; ignores a non-current snapshot; one request per interval', async () => {
    const server = await scope.start({ AUTH_SECRET: TEST_SECRET, PERSIST_FLUSH_MS: '10', SEALED_SNAPSHOT_AFTER: '3', SEALED_REFUTATION_INTERVAL_MS: '600000' });
    const store = sealedRegistry(server.app)?.store;
    const mallory = await client('mallory'); // first in join order: asked first
    const alice = await client('alice');
    for (let i = 1; i <= 3; i++) mallory.update(i, env(i));
    const asked = await mallory.next('snapshot-request');
    mallory.snapshot(asked.upTo, env(66)); // garbage: the server cannot tell
    for (let i = 0; i < 250 && (await store?.stats(ROOM))?.snapshotCovers !== 3; i++) await new Promise((r) => setTimeout(r, 20));
    expect((await store?.stats(ROOM))?.snapshotCovers).toBe(3);
    expect(requests(alice)).toBe(0);

    // a read-only device (it may hold the key) reads the snapshot and refutes it
    const reader = await client('reader', 'read');
    expect(reader.messages.find((m) => m.type === 'snapshot')).toMatchObject({ covers: 3 });
    reader.snapshotBad(2); // not the current snapshot: ignored
    reader.presence(env(1)); // a round trip through the socket's order: alice gets it after any request it caused
    await alice.next('presence');
    expect(requests(alice)).toBe(0);
    expect((await server.app.inject({ url: '/metrics' })).body).toMatch(/sync_rejected_messages_total\{endpoint="sealed",reason="stale_snapshot_bad"\} 1/);

    reader.snapshotBad(3);
    const replace = await alice.next('snapshot-request'); // alice, not mallory (the author, first in join order)
    expect(replace.upTo).toBe(3);
    expect(requests(mallory)).toBe(1);
    alice.snapshot(3, env(77)); // as much as the refuted one: taken, as its replacement
    const pushed = await reader.next('snapshot', reader.messages.findIndex((m) => m.type === 'caught-up'));
    expect(pushed).toEqual({ type: 'snapshot', covers: 3, envelope: env(77) });
    expect((await store?.read(ROOM, 0))?.snapshot).toEqual({ covers: 3, envelope: env(77) });

    // the replacement refuted in turn (a hostile reporter): not asked again within the interval
    const presences = alice.messages.filter((m) => m.type === 'presence').length;
    reader.snapshotBad(3);
    reader.presence(env(2));
    await alice.wait(() => alice.messages.filter((m) => m.type === 'presence').length > presences, 'second presence');
    await mallory.wait(() => mallory.messages.filter((m) => m.type === 'presence').length >= 2, 'presence at mallory');
    expect(requests(alice)).toBe(1);
    expect(requests(mallory)).toBe(1);
  });
});

class Peer implements SealedPeer {
  readonly frames: string[] = [];
  readonly caughtUp = true;
  constructor(
    readonly peer: number,
    readonly sub: string,
    readonly writable = true,
  ) {}
  deliver(): void {}
  send(frame: Uint8Array): void {
    const m = readSealedServerMessage(frame);
    if (m.ok) this.frames.push(m.message.type);
  }
  close(): void {}
}

describe('SealedRoom.refute', () => {
  it('never asks the author (by sub too) or a reporter; waits out the interval, then asks again', () => {
    const room = new SealedRoom('r', 10, 0, { readAfter: async () => ({ snapshot: null, entries: [], head: 10, generation: 0 }), snapshotAfter: 1000, onGapFillFailed: () => undefined, onGenerationMoved: () => undefined, refutationIntervalMs: 60_000 });
    const author = new Peer(1, 'mallory');
    const authorAgain = new Peer(2, 'mallory'); // another socket of the same token sub
    const reporter = new Peer(3, 'bob');
    const honest = new Peer(4, 'alice');
    for (const p of [author, authorAgain, reporter]) room.join(p);
    expect(room.takeSnapshotAnswer(1)).toBe(false);
    room.compacted(8, env(1), { peer: 1, sub: 'mallory' });
    expect(room.refute(3, 7, 0)).toBe(false); // not the current one
    expect(room.refute(3, 8, 0)).toBe(true);
    expect([author, authorAgain, reporter].map((p) => p.frames)).toEqual([[], [], []]); // nobody to ask yet
    room.join(honest);
    room.maybeAskSnapshot(1);
    expect(honest.frames).toEqual(['snapshot-request']);
    expect(room.takeSnapshotAnswer(4)).toEqual({ refuted: 8 });
    room.compacted(8, env(2), { peer: 4, sub: 'alice' });
    expect(reporter.frames).toEqual(['snapshot']); // the replacement, to who reported the old one
    // refuted again at once (a hostile reporter): within the interval, nobody is asked
    expect(room.refute(3, 8, 2)).toBe(true);
    room.maybeAskSnapshot(59_000);
    expect([author, authorAgain, honest].map((p) => p.frames.filter((f) => f === 'snapshot-request').length)).toEqual([0, 0, 1]);
    // after it: a writer other than the author (alice) and the reporter; mallory's sockets only because nobody else is left
    room.maybeAskSnapshot(60_002);
    expect([author, authorAgain].map((p) => p.frames.filter((f) => f === 'snapshot-request').length)).toEqual([1, 0]);
  });
});
