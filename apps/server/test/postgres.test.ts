/**
 * STORAGE=postgres on the real PostgreSQL: the shared DocStore contract, idempotent and
 * concurrent migrations, and compaction by several instances while others append.
 */
import type pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import * as Y from 'yjs';
import { compactRoom } from '../src/relay/compaction.js';
import { mergeStoredRoom } from '../src/relay/persistence/merge.js';
import { PostgresStore } from '../src/relay/persistence/postgres.js';
import { MIGRATIONS, migrate } from '../src/relay/persistence/postgres-migrations.js';
import { describeDocStoreContract } from './persistence-contract.js';
import { PG_URL, dropSchemas, uniqueSchema, urlWithSchema, withPg } from './postgres-helpers.js';

const schemas: string[] = [];
const stores: PostgresStore[] = [];
afterAll(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => undefined);
  await dropSchemas(schemas);
});

function schema(): string {
  const s = uniqueSchema('pg');
  schemas.push(s);
  return s;
}

async function openStores(n: number, name = schema()): Promise<PostgresStore[]> {
  const list = Array.from({ length: n }, () => new PostgresStore(PG_URL, { schema: name }));
  stores.push(...list);
  await Promise.all(list.map((s) => s.init()));
  return list;
}

const contractSchema = schema();
describeDocStoreContract('postgres', () => new PostgresStore(PG_URL, { schema: contractSchema }), async (_store, room, edit) => {
  await withPg(async (c) => {
    const { rows } = await c.query<{ snapshot: Buffer }>(`SELECT snapshot FROM "${contractSchema}".relay_snapshots WHERE room = $1`, [room]);
    const row = rows[0];
    if (row) await c.query(`UPDATE "${contractSchema}".relay_snapshots SET snapshot = $1 WHERE room = $2`, [Buffer.from(edit(new Uint8Array(row.snapshot))), room]);
  });
}, () => new PostgresStore(PG_URL, { schema: contractSchema }));

describe('postgres migrations', () => {
  it('run at start, once, even when several instances start together and restart', async () => {
    const name = schema();
    await openStores(4, name);
    const [again] = await openStores(1, name); // a restart: nothing left to apply
    const rows = await withPg((c) => c.query<{ version: number }>(`SELECT version FROM "${name}".relay_migrations ORDER BY version`));
    expect(rows.rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
    await again?.check();
  });

  it('rooms stored before room generations (migration 11) are in generation 0, and a purge moves them on', async () => {
    const name = schema();
    await withPg(async (c) => {
      await c.query(`CREATE SCHEMA "${name}"`);
      await c.query(`SET search_path TO "${name}"`);
      await migrate(c, MIGRATIONS.filter((m) => m.version < 11));
      await c.query(`INSERT INTO relay_rooms (room, appended) VALUES ('r', 1)`);
      await c.query(`INSERT INTO relay_updates (room, data) VALUES ('r', '\\x010203')`);
    });
    const [store] = (await openStores(1, name)) as [PostgresStore];
    expect(await store.load('r')).toMatchObject({ updates: [new Uint8Array([1, 2, 3])], generation: 0 });
    expect(await store.append([{ room: 'r', updates: [new Uint8Array([4])], generation: 0 }])).toEqual([]);
    await store.purgeRoom('r');
    expect(await store.append([{ room: 'r', updates: [new Uint8Array([5])], generation: 0 }])).toEqual(['r']);
    expect(await store.load('r')).toMatchObject({ updates: [], generation: 1 });
  });

  it('takes its schema from the search_path of DATABASE_URL', async () => {
    const name = schema();
    await withPg((c) => c.query(`CREATE SCHEMA "${name}"`));
    const store = new PostgresStore(urlWithSchema(name));
    stores.push(store);
    await store.init();
    await store.append([{ room: 'acme-conversation-x', updates: [new Uint8Array([1])] }]);
    const count = await withPg((c) => c.query<{ n: string }>(`SELECT count(*) AS n FROM "${name}".relay_updates`));
    expect(count.rows[0]?.n).toBe('1');
  });

  it('refuses a schema name that is not a plain identifier', () => {
    expect(() => new PostgresStore(PG_URL, { schema: 'x; drop table y' })).toThrow(/invalid PostgreSQL schema/);
  });

  it('fails init with the driver error when the database is unreachable', async () => {
    const store = new PostgresStore('postgres://postgres@127.0.0.1:1/test');
    await expect(store.init()).rejects.toThrow();
    await expect(store.check()).rejects.toThrow(/before init/);
  });
});

describe('postgres with several instances on one room', () => {
  it('loses no update while three instances append and compact concurrently', async () => {
    const [a, b, c] = (await openStores(3)) as [PostgresStore, PostgresStore, PostgresStore];
    const room = 'acme-conversation-storm';
    const writers = [a, b, c].map((store, w) => writeStorm(store, room, w, 60));
    let compactions = 0;
    const compactors = [a, b, c].map(async (store) => {
      for (let i = 0; i < 15; i++) compactions += (await compactRoom(store, room)) > 0 ? 1 : 0;
    });
    await Promise.all([...writers, ...compactors]);
    expect(compactions).toBeGreaterThan(0);
    for (const store of [a, b, c]) {
      const list = arrayOf(mergeStoredRoom(await store.load(room)));
      expect(list.length).toBe(180);
      expect(new Set(list).size).toBe(180);
    }
  });

  it('never compacts the same entries twice: racing compactions of one log apply once', async () => {
    const [a, b] = (await openStores(2)) as [PostgresStore, PostgresStore];
    const room = 'acme-conversation-race';
    await writeStorm(a, room, 0, 20);
    const [seenA, seenB] = await Promise.all([a.load(room), b.load(room)]);
    expect(seenA.lastSeq).toBe(seenB.lastSeq);
    await Promise.all([
      a.compact(room, { snapshot: mergeStoredRoom(seenA), throughSeq: seenA.lastSeq }),
      b.compact(room, { snapshot: mergeStoredRoom(seenB), throughSeq: seenB.lastSeq }),
    ]);
    const row = await withPg((c) =>
      c.query<{ compactions: number; through_seq: string }>(
        `SELECT compactions, through_seq FROM "${storeSchema(a)}".relay_snapshots WHERE room = $1`,
        [room],
      ),
    );
    expect(row.rows[0]?.compactions).toBe(1);
    expect(Number(row.rows[0]?.through_seq)).toBe(seenA.lastSeq);
    expect(arrayOf(mergeStoredRoom(await b.load(room)))).toHaveLength(20);
  });

  it('an append still open when a compactor reads cannot be overtaken by a later one', async () => {
    const [a, b] = (await openStores(2)) as [PostgresStore, PostgresStore];
    const room = 'acme-conversation-order';
    const name = storeSchema(a);
    await writeStorm(a, room, 0, 3);
    await withPg(async (slow) => {
      // Another instance's append, as the store does it, left open after drawing its seq.
      await slow.query('BEGIN');
      await slow.query(`UPDATE "${name}".relay_rooms SET appended = appended + 1 WHERE room = $1`, [room]);
      await slow.query(`INSERT INTO "${name}".relay_updates (room, data) VALUES ($1, $2)`, [room, Buffer.from(entry(9, 'slow'))]);
      // A later append must wait for it: were it to commit first, a compactor reading now would
      // see its higher seq and fold away the lower one that commits afterwards.
      const later = writeStorm(b, room, 1, 1);
      await Promise.race([later, lockWaitBehind(slow)]);
      const seen = await a.load(room);
      const compacting = a.compact(room, { snapshot: mergeStoredRoom(seen), throughSeq: seen.lastSeq }); // waits for the room lock too
      await slow.query('COMMIT');
      await Promise.all([later, compacting]);
    });
    expect(arrayOf(mergeStoredRoom(await a.load(room))).sort()).toEqual(['0:0', '0:1', '0:2', '1:0', 'slow']);
  });
});

/**
 * Resolves once some session waits for a lock that `holder` holds (no event exists for that).
 * Only this test's own connection counts: a lock wait of another test file cannot satisfy it.
 */
async function lockWaitBehind(holder: pg.Client, ms = 5000): Promise<void> {
  const pid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
  const deadline = Date.now() + ms;
  await withPg(async (c) => {
    for (;;) {
      const r = await c.query(`SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, [pid]);
      if ((r.rowCount ?? 0) > 0) return;
      if (Date.now() > deadline) throw new Error(`no session waits behind backend ${pid}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  });
}

function entry(client: number, text: string): Uint8Array {
  const doc = new Y.Doc();
  doc.clientID = client;
  doc.getArray<string>('log').push([text]);
  return Y.encodeStateAsUpdate(doc);
}

/** Each write is one transaction holding one Y.Array entry `${writer}:${n}`. */
async function writeStorm(store: PostgresStore, room: string, writer: number, count: number): Promise<void> {
  const doc = new Y.Doc();
  doc.clientID = 1000 + writer;
  for (let n = 0; n < count; n++) {
    let update: Uint8Array | null = null;
    doc.once('update', (u: Uint8Array) => (update = u));
    doc.getArray<string>('log').push([`${writer}:${n}`]);
    await store.append([{ room, updates: [update as unknown as Uint8Array] }]);
  }
  doc.destroy();
}

function arrayOf(update: Uint8Array): string[] {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, update);
  return doc.getArray<string>('log').toArray();
}

function storeSchema(store: PostgresStore): string {
  return (store as unknown as { opts: { schema: string } }).opts.schema;
}
