/**
 * The admin operations of every storage engine (memory, SQLite, PostgreSQL): rooms listed in
 * byte order by prefix and `after`, one room's figures, purge, stored revocations, and the bytes held.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { MemoryStore } from '../src/relay/persistence/memory.js';
import { PostgresStore } from '../src/relay/persistence/postgres.js';
import { SqliteStore } from '../src/relay/persistence/sqlite.js';
import type { EngineStore } from '../src/relay/persistence/types.js';
import { PG_URL, schemaForThisFile } from './postgres-helpers.js';

const schema = schemaForThisFile('storeadmin');
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const engines: Array<[string, () => EngineStore]> = [
  ['memory', () => new MemoryStore()],
  [
    'sqlite',
    () => {
      const d = mkdtempSync(join(tmpdir(), 'store-admin-'));
      dirs.push(d);
      return new SqliteStore(d);
    },
  ],
  ['postgres', () => new PostgresStore(PG_URL, { schema })],
];

describe.each(engines)('admin operations: %s', (_name, make) => {
  const open: EngineStore[] = [];
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
  });
  const store = async (): Promise<EngineStore> => {
    const s = make();
    open.push(s);
    await s.init();
    return s;
  };

  it('reports the bytes it holds, which grow with what is stored', async () => {
    const s = await store();
    const before = await s.storageBytes();
    expect(before).toBeGreaterThanOrEqual(0);
    // Incompressible, and larger than what an engine allocates ahead (SQLite pages, PostgreSQL TOAST chunks).
    await s.append([{ room: `size-conversation-${Math.random().toString(36).slice(2)}`, updates: [randomBytes(300_000)] }]);
    expect(await s.storageBytes()).toBeGreaterThan(before + 200_000);
  });

  it('lists rooms in byte order by prefix and after, with their figures; purges one', async () => {
    const s = await store();
    const tag = `r${Math.random().toString(36).slice(2, 8)}`;
    const names = [`${tag}-conversation-b`, `${tag}-conversation-A`, `${tag}-conversation-a-1`, `${tag}x-conversation-z`];
    const before = Date.now();
    await s.append(names.map((room, i) => ({ room, updates: [new Uint8Array(10 + i), new Uint8Array(5)] })));
    await s.compact(names[0] as string, { snapshot: new Uint8Array(7), throughSeq: Number.MAX_SAFE_INTEGER });

    const page = await s.listRooms(`${tag}-`, '', 2);
    expect(page.map((r) => r.room)).toEqual([`${tag}-conversation-A`, `${tag}-conversation-a-1`]);
    const rest = await s.listRooms(`${tag}-`, `${tag}-conversation-a-1`, 10);
    expect(rest.map((r) => r.room)).toEqual([`${tag}-conversation-b`]);
    expect(rest[0]).toMatchObject({ bytes: 7, entries: 1 }); // compacted: the snapshot alone
    const a = await s.statRoom(`${tag}-conversation-A`);
    expect(a).toMatchObject({ room: `${tag}-conversation-A`, bytes: 16, entries: 2 });
    expect(a?.lastChangeAt).toBeGreaterThanOrEqual(before - 1000);

    await s.purgeRoom(`${tag}-conversation-A`);
    expect(await s.statRoom(`${tag}-conversation-A`)).toBeNull();
    expect(await s.load(`${tag}-conversation-A`)).toEqual({ snapshot: null, snapshotSeq: 0, updates: [], lastSeq: 0, generation: 1 }) // a purge moves the room to its next generation;
    expect((await s.listRooms(`${tag}-`, '', 10)).map((r) => r.room)).toEqual([`${tag}-conversation-a-1`, `${tag}-conversation-b`]);
    expect(await s.statRoom(`${tag}-never`)).toBeNull();
  });

  it('stores revocations and loads the ones still in force', async () => {
    const s = await store();
    const now = Math.floor(Date.now() / 1000);
    const tag = Math.random().toString(36).slice(2, 8);
    await s.saveRevocation({ sub: `alice-${tag}`, until: now + 100 });
    await s.saveRevocation({ jti: `jti-${tag}`, until: now + 100 });
    await s.saveRevocation({ sub: `old-${tag}`, until: now + 1 });
    const mine = (list: Awaited<ReturnType<EngineStore['loadRevocations']>>) => list.filter((r) => (r.sub ?? r.jti ?? '').endsWith(tag));
    expect(mine(await s.loadRevocations(now))).toHaveLength(3);
    expect(mine(await s.loadRevocations(now + 50))).toEqual(
      expect.arrayContaining([{ sub: `alice-${tag}`, until: now + 100 }, { jti: `jti-${tag}`, until: now + 100 }]),
    );
    expect(mine(await s.loadRevocations(now + 50))).toHaveLength(2);
  });
});
