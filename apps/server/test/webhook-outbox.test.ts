/**
 * The webhook outbox of every storage engine (memory, SQLite, PostgreSQL): bounded by dropping
 * the oldest, claims held for their lease and given to one claimer, retry and release, the next
 * due time; SQLite ends the claims of a previous run when it reopens its file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { MemoryStore } from '../src/relay/persistence/memory.js';
import { PostgresStore } from '../src/relay/persistence/postgres.js';
import { SqliteStore } from '../src/relay/persistence/sqlite.js';
import type { EngineStore } from '../src/relay/persistence/types.js';
import { PG_URL, uniqueSchema, dropSchemas } from './postgres-helpers.js';

const dirs: string[] = [];
const schemas: string[] = [];
afterAll(async () => {
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
  await dropSchemas(schemas);
});

/** A maker per engine: each call of the maker it returns opens the same storage again. */
const engines: Array<[string, () => () => EngineStore]> = [
  ['memory', () => () => new MemoryStore()],
  [
    'sqlite',
    () => {
      const d = mkdtempSync(join(tmpdir(), 'webhook-outbox-'));
      dirs.push(d);
      return () => new SqliteStore(d);
    },
  ],
  [
    'postgres',
    () => {
      const schema = uniqueSchema('outbox');
      schemas.push(schema);
      return () => new PostgresStore(PG_URL, { schema });
    },
  ],
];

describe.each(engines)('webhook outbox: %s', (name, storage) => {
  const open: EngineStore[] = [];
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
  });
  const store = async (make: () => EngineStore): Promise<EngineStore> => {
    const s = make();
    open.push(s);
    await s.init();
    return s;
  };

  it('drops the oldest past the bound, claims each entry once per lease, retries, releases, reports the next due time', async () => {
    const s = await store(storage());
    const o = s.webhookOutbox();
    expect(await o.stats()).toEqual({ size: 0, nextDue: null });
    for (const body of ['a', 'b', 'c']) expect(await o.add(body, 1000, null)).toBe(0);
    expect(await o.add('d', 1000, 3)).toBe(1); // 'a' dropped
    expect(await o.stats()).toEqual({ size: 3, nextDue: 1000 });

    const first = await o.claim(2000, 10_000, 2);
    expect(first.map((e) => [e.body, e.attempts])).toEqual([['b', 0], ['c', 0]]);
    const second = await o.claim(2000, 10_000, 10);
    expect(second.map((e) => e.body)).toEqual(['d']);
    expect(await o.claim(2000, 10_000, 10)).toEqual([]);
    expect(await o.stats()).toEqual({ size: 3, nextDue: 12_000 });

    const [b, c] = first as [(typeof first)[0], (typeof first)[0]];
    await o.retry(b.id, 1, 5000);
    expect((await o.stats()).nextDue).toBe(5000);
    expect(await o.claim(4999, 10_000, 10)).toEqual([]);
    expect(await o.claim(5000, 10_000, 10)).toEqual([{ id: b.id, body: 'b', attempts: 1 }]);

    await o.release([c.id]);
    expect((await o.claim(6000, 10_000, 10)).map((e) => e.body)).toEqual(['c']);
    // 'd' was held until 12 000: its lease over, anyone may claim it.
    expect((await o.claim(12_000, 10_000, 10)).map((e) => e.body)).toEqual(['d']);

    for (const e of [...first, ...second]) await o.remove(e.id);
    expect(await o.stats()).toEqual({ size: 0, nextDue: null });
  });

  it.runIf(name !== 'memory')('keeps entries across a reopen; only SQLite (one process per file) ends old claims', async () => {
    const make = storage();
    const s = await store(make);
    await s.webhookOutbox().add('kept', 1000, null);
    expect(await s.webhookOutbox().claim(1000, 60_000, 10)).toHaveLength(1);
    await s.close();
    open.splice(0);

    const again = (await store(make)).webhookOutbox();
    expect(await again.stats()).toMatchObject({ size: 1 });
    const claimed = await again.claim(2000, 60_000, 10);
    expect(claimed.map((e) => e.body)).toEqual(name === 'sqlite' ? ['kept'] : []);
  });
});
