/**
 * Snapshot refutation on an instance whose room did not store the snapshot: A and B share
 * PostgreSQL and Redis; B holds the room (dave, a writer) when mallory stores a garbage snapshot
 * through A. A reader on B is served it by catch-up and reports it: B must ask dave for a
 * replacement (before: B knew only the snapshots it stored or filled a gap with, and dropped the
 * report as stale).
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeEnvelope, RawSealed } from '../../../test/fixtures/sealed-raw.js';
import { startServer, TEST_SECRET, testToken, type TestServer } from '../../../test/helpers/server.js';
import { testRedisUrl } from '../../../test/helpers/test-env.js';
import { schemaForThisFile, urlWithSchema } from './postgres-helpers.js';
import { sealedRegistry } from '../src/routes/sealed/index.js';

const schema = schemaForThisFile('sealedrefutecluster');
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});
const ROOM = 'acme-conversation-refute-cluster';
const env = (n: number): Uint8Array => fakeEnvelope([n, 0xee, n]);

async function client(server: TestServer, sub: string, scopeName: 'read' | 'write' = 'write'): Promise<RawSealed> {
  const token = await testToken(sub, [ROOM], scopeName === 'read' ? { scope: 'read' } : {});
  const c = await RawSealed.connect(server.wsUrl, `/sealed/${ROOM}?token=${token}`);
  cleanup.push(() => c.close());
  c.hello(0, 0);
  await c.next('caught-up');
  return c;
}

describe('sealed snapshot refutation across instances', () => {
  it('a snapshot stored through another instance and served by catch-up can be refuted here', async () => {
    const common = {
      AUTH_SECRET: TEST_SECRET,
      STORAGE: 'postgres',
      DATABASE_URL: urlWithSchema(schema),
      REDIS_URL: testRedisUrl(),
      REDIS_PREFIX: `refute-${randomBytes(4).toString('hex')}:`,
      PERSIST_FLUSH_MS: '10',
      SEALED_REFUTATION_INTERVAL_MS: '1000',
    };
    const a = await startServer({ ...common, SEALED_SNAPSHOT_AFTER: '3' });
    cleanup.push(() => a.close());
    // B never asks for a compaction snapshot itself: a request dave gets is a refutation's
    const b = await startServer({ ...common, SEALED_SNAPSHOT_AFTER: '1000' });
    cleanup.push(() => b.close());
    const mallory = await client(a, 'mallory');
    const dave = await client(b, 'dave');
    for (let i = 1; i <= 3; i++) mallory.update(i, env(i));
    const asked = await mallory.next('snapshot-request');
    mallory.snapshot(asked.upTo, env(66)); // garbage: no server can tell
    await dave.wait(() => dave.messages.filter((m) => m.type === 'entry').length >= 3, 'entries at dave');
    const store = sealedRegistry(b.app)?.store;
    for (let i = 0; i < 250 && (await store?.stats(ROOM))?.snapshotCovers !== 3; i++) await new Promise((r) => setTimeout(r, 20));
    expect((await store?.stats(ROOM))?.snapshotCovers).toBe(3);

    const reader = await client(b, 'reader', 'read');
    expect(reader.messages.some((m) => m.type === 'snapshot' && m.covers === 3)).toBe(true);
    reader.snapshotBad(3);
    await dave.wait(() => dave.messages.some((m) => m.type === 'snapshot-request'), 'a replacement request at dave (on B)');
  });
});
