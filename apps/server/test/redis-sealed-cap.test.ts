/**
 * Sealed entries on Redis keep within REDIS_MAX_RELAY_MESSAGE_BYTES, as relay updates do
 * (sealed/remote-intake.ts): a commit larger than the bound goes out in several messages, and
 * an envelope too large alone is announced by the commit's last seq and read from storage by the
 * other instance. Two instances on the real Redis and PostgreSQL; a raw subscriber on the room's
 * channel sees every message published.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BusKind, readBusFrame, readGenerationPayload } from '../src/fanout/bus-frame.js';
import { redisKeys } from '../src/fanout/redis-keys.js';
import { sealedRegistry } from '../src/routes/sealed/index.js';
import { SEALED_ROW_OVERHEAD_BYTES } from '../src/sealed/store/types.js';
import { startServers, TEST_SECRET, testToken, type TestServer } from '../../../test/helpers/server.js';
import { fakeEnvelope, RawSealed } from '../../../test/fixtures/sealed-raw.js';
import { testRedisUrl } from '../../../test/helpers/test-env.js';
import { schemaForThisFile, urlWithSchema } from './postgres-helpers.js';

const schema = schemaForThisFile('sealedcap');
const CAP = 8192;

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** Two instances whose commits wait for the test (`commit`), and a raw subscriber on `room`'s channel. */
async function cluster(room: string): Promise<{ servers: [TestServer, TestServer]; published: Array<{ bytes: number; kind: number }>; allPublished: () => Promise<void> }> {
  const prefix = `test-${randomBytes(5).toString('hex')}:`;
  const servers = (await startServers(2, {
    AUTH_SECRET: TEST_SECRET,
    STORAGE: 'postgres',
    DATABASE_URL: urlWithSchema(schema),
    REDIS_URL: testRedisUrl(),
    REDIS_PREFIX: prefix,
    REDIS_MAX_RELAY_MESSAGE_BYTES: String(CAP),
    // presence limits within the cap (the config refuses a cap below them)
    RELAY_MAX_AWARENESS_BYTES: '4096',
    SEALED_MAX_PRESENCE_BYTES: '4096',
    PERSIST_FLUSH_MS: '600000', // the test commits (one commit for all it wrote)
  })) as [TestServer, TestServer];
  cleanup.push(() => Promise.all(servers.map((s) => s.close())));
  const raw = new Redis(testRedisUrl());
  cleanup.push(() => raw.disconnect());
  const published: Array<{ bytes: number; kind: number }> = [];
  raw.on('messageBuffer', (_channel: Buffer, message: Buffer) => {
    const read = readBusFrame(message);
    // entries and checks go out with their generation (SealedAt): the sealed kind inside
    const kind = !read.ok ? -1 : read.frame.kind === BusKind.SealedAt ? (readGenerationPayload(read.frame.payload)?.message[0] ?? -2) : read.frame.kind;
    published.push({ bytes: message.length, kind });
  });
  const channel = redisKeys(prefix).sealedRoom(room);
  await raw.subscribe(channel);
  const marker = new Redis(testRedisUrl());
  cleanup.push(() => marker.disconnect());
  /** Redis delivers a channel's messages in publish order: once a marker published now arrives, so has everything before it. */
  const allPublished = async (): Promise<void> => {
    await marker.publish(channel, 'end');
    await vi.waitFor(() => expect(published.at(-1)?.kind).toBe(-1), { timeout: 5000, interval: 10 });
    published.pop();
  };
  return { servers, published, allPublished };
}

async function device(server: TestServer, room: string): Promise<RawSealed> {
  const token = await testToken('alice', ['acme-*']);
  const c = await RawSealed.connect(server.wsUrl, `/sealed/${room}?token=${token}`);
  cleanup.push(() => c.close());
  c.hello(0);
  await c.next('caught-up');
  return c;
}

/** `writer` sends `envelopes`; once its instance holds them all, they are committed together. */
async function commitTogether(server: TestServer, room: string, writer: RawSealed, envelopes: Uint8Array[]): Promise<void> {
  envelopes.forEach((e, i) => writer.update(i + 1, e));
  const registry = sealedRegistry(server.app);
  if (!registry) throw new Error('no sealed registry');
  const pending = envelopes.reduce((n, e) => n + e.length + SEALED_ROW_OVERHEAD_BYTES, 0);
  await vi.waitFor(() => expect(registry.rooms.get(room)?.pendingBytes).toBe(pending), { timeout: 10_000, interval: 10 });
  await registry.queue.flush();
  await writer.wait(() => writer.messages.filter((m) => m.type === 'ack').length === envelopes.length, 'acks');
}

function entriesOf(c: RawSealed): Array<{ seq: number; envelope: number[] }> {
  return c.messages.flatMap((m) => (m.type === 'entry' ? [{ seq: m.seq, envelope: [...m.envelope] }] : []));
}

/**
 * Two instances, a device on each: `envelopes` committed together on the first reach the other
 * whole and in order, and nothing published on the room's channel is over the cap. Returns what
 * was published.
 */
async function deliveredWhole(room: string, envelopes: Uint8Array[]) {
  const { servers, published, allPublished } = await cluster(room);
  const [a, b] = [await device(servers[0], room), await device(servers[1], room)];
  await commitTogether(servers[0], room, a, envelopes);
  const want = envelopes.map((e, i) => ({ seq: i + 1, envelope: [...e] }));
  await b.wait(() => entriesOf(b).length === want.length, `${want.length} entries on the other instance`, 10_000);
  expect(entriesOf(b)).toEqual(want);
  await allPublished();
  expect(Math.max(...published.map((p) => p.bytes))).toBeLessThanOrEqual(CAP);
  return published;
}

describe('sealed entries on Redis', () => {
  it('a commit larger than REDIS_MAX_RELAY_MESSAGE_BYTES goes out in messages within it, and reaches the other instance whole and in order', async () => {
    const room = 'acme-conversation-sealedcap-split';
    const envelopes = Array.from({ length: 12 }, (_, i) => fakeEnvelope([i + 1, 0xee, i + 1], 3000)); // 36 KB over an 8 KB bound
    const published = await deliveredWhole(room, envelopes);
    expect(published.filter((p) => p.kind === BusKind.SealedEntries).length).toBeGreaterThan(1);
  });

  it('an envelope larger than the bound alone is announced by the last seq, and the other instance reads the commit from storage', async () => {
    const room = 'acme-conversation-sealedcap-large';
    const envelopes = [fakeEnvelope([1, 0xee], 100), fakeEnvelope([2, 0xee], 3 * CAP), fakeEnvelope([3, 0xee], 100)];
    const published = await deliveredWhole(room, envelopes);
    expect(published.map((p) => p.kind)).toContain(BusKind.SealedCheck);
  });
});
