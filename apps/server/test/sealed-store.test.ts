import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate, MIGRATIONS } from '../src/relay/persistence/postgres-migrations.js';
import { SQLITE_FILE_NAME } from '../src/relay/persistence/sqlite.js';
import { MemorySealedStore } from '../src/sealed/store/memory.js';
import { PostgresSealedStore } from '../src/sealed/store/postgres.js';
import { SqliteSealedStore } from '../src/sealed/store/sqlite.js';
import { newSealedGeneration, SEALED_ROW_OVERHEAD_BYTES, type SealedStore } from '../src/sealed/store/types.js';
import { dropSchemas, PG_URL, schemaForThisFile, uniqueSchema, withPg } from './postgres-helpers.js';
import { describeSealedStoreContract } from './sealed-store-contract.js';

const dir = mkdtempSync(join(tmpdir(), 'sealed-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const schema = schemaForThisFile('sealed');

describeSealedStoreContract('memory', () => new MemorySealedStore());
describeSealedStoreContract('sqlite', () => new SqliteSealedStore(dir), {
  // another connection renames the snapshots' table: every statement that names it fails
  hideSnapshots: async () => {
    const rename = (from: string, to: string): void => {
      const db = new Database(join(dir, SQLITE_FILE_NAME), { timeout: 5000 });
      try {
        db.exec(`ALTER TABLE ${from} RENAME TO ${to}`);
      } finally {
        db.close();
      }
    };
    rename('sealed_snapshots', 'sealed_snapshots_hidden');
    return async () => rename('sealed_snapshots_hidden', 'sealed_snapshots');
  },
});
describeSealedStoreContract('postgres', () => new PostgresSealedStore(PG_URL, { schema }), {
  // the snapshot column renamed: every statement that names it fails
  hideSnapshots: async () => {
    await withPg((c) => c.query(`ALTER TABLE "${schema}".sealed_rooms RENAME COLUMN snapshot TO snapshot_hidden`));
    return async () => {
      await withPg((c) => c.query(`ALTER TABLE "${schema}".sealed_rooms RENAME COLUMN snapshot_hidden TO snapshot`));
    };
  },
});

describe('sealed storage from earlier versions: counters computed once, stored data still loads', () => {
  const ROW = SEALED_ROW_OVERHEAD_BYTES;

  it('SQLite: a file from before the admin API gains the change-time column, the counters, and its snapshot moves out of sealed_rooms', async () => {
    const old = mkdtempSync(join(dir, 'old-'));
    const db = new Database(join(old, SQLITE_FILE_NAME));
    db.exec(`CREATE TABLE sealed_rooms (room TEXT PRIMARY KEY, head INTEGER NOT NULL DEFAULT 0, covers INTEGER NOT NULL DEFAULT 0, snapshot BLOB);
      CREATE TABLE sealed_entries (room TEXT NOT NULL, seq INTEGER NOT NULL, envelope BLOB NOT NULL, PRIMARY KEY (room, seq)) WITHOUT ROWID;
      INSERT INTO sealed_rooms (room, head) VALUES ('acme-conversation-old', 1);
      INSERT INTO sealed_entries VALUES ('acme-conversation-old', 1, x'010203');
      INSERT INTO sealed_rooms (room, head, covers, snapshot) VALUES ('acme-conversation-snap', 3, 2, x'0909090909');
      INSERT INTO sealed_entries VALUES ('acme-conversation-snap', 3, x'0102');`);
    db.close();
    let generations: number[] = [];
    const store = new SqliteSealedStore(old);
    await store.init();
    try {
      expect(await store.statRoom('acme-conversation-old')).toEqual({ room: 'acme-conversation-old', bytes: 3 + ROW, entries: 1, lastChangeAt: null });
      expect(await store.stats('acme-conversation-snap')).toMatchObject({ head: 3, snapshotCovers: 2, entries: 1, bytes: 5 + 2 + 2 * ROW });
      const read = await store.read('acme-conversation-snap', 0);
      expect(read.snapshot).toEqual({ covers: 2, envelope: Uint8Array.from([9, 9, 9, 9, 9]) });
      expect(read.entries.map((e) => e.seq)).toEqual([3]);
      expect(await store.append([{ room: 'acme-conversation-old', envelopes: [Uint8Array.from([4])] }])).toEqual([2]);
      expect((await store.statRoom('acme-conversation-old'))?.lastChangeAt).toBeGreaterThan(Date.now() - 60_000);
      expect(await store.stats('acme-conversation-old')).toMatchObject({ entries: 2, bytes: 4 + 2 * ROW });
      // rows from before generations got one each when the file opened
      generations = [(await store.generation('acme-conversation-old')).current, (await store.generation('acme-conversation-snap')).current];
      expect(generations.every((g) => Number.isSafeInteger(g) && g > 0 && g < 2 ** 48)).toBe(true);
      expect(generations[0]).not.toBe(generations[1]);
    } finally {
      await store.close();
    }
    // kept across a restart
    const reopened = new SqliteSealedStore(old);
    await reopened.init();
    try {
      expect([await reopened.generation('acme-conversation-old'), await reopened.generation('acme-conversation-snap')]).toEqual(generations.map((current) => ({ current })));
    } finally {
      await reopened.close();
    }
    const after = new Database(join(old, SQLITE_FILE_NAME), { readonly: true });
    try {
      const columns = after.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('sealed_rooms')").all().map((c) => c.name);
      expect(columns).not.toContain('snapshot');
    } finally {
      after.close();
    }
  });

  it('PostgreSQL: migration 7 computes the counters of rooms stored before it; migration 8 gives each a generation, kept across a restart', async () => {
    const name = uniqueSchema('sealedmig');
    await withPg(async (c) => {
      await c.query(`CREATE SCHEMA "${name}"; SET search_path TO "${name}"`);
      await migrate(c, MIGRATIONS.filter((m) => m.version < 7));
      await c.query(`INSERT INTO sealed_rooms (room, head) VALUES ('acme-conversation-old', 2);
        INSERT INTO sealed_entries VALUES ('acme-conversation-old', 1, '\\x010203'), ('acme-conversation-old', 2, '\\x04');
        INSERT INTO sealed_rooms (room, head, covers, snapshot) VALUES ('acme-conversation-snap', 3, 2, '\\x0909090909');
        INSERT INTO sealed_entries VALUES ('acme-conversation-snap', 3, '\\x0102');`);
    });
    const store = new PostgresSealedStore(PG_URL, { schema: name });
    try {
      await store.init();
      expect(await store.stats('acme-conversation-old')).toMatchObject({ head: 2, snapshotCovers: 0, entries: 2, bytes: 4 + 2 * ROW });
      expect(await store.statRoom('acme-conversation-snap')).toMatchObject({ entries: 2, bytes: 5 + 2 + 2 * ROW });
      expect((await store.read('acme-conversation-snap', 0)).snapshot).toEqual({ covers: 2, envelope: Uint8Array.from([9, 9, 9, 9, 9]) });
      expect(await store.append([{ room: 'acme-conversation-old', envelopes: [Uint8Array.from([5, 5])] }])).toEqual([3]);
      expect(await store.stats('acme-conversation-old')).toMatchObject({ entries: 3, bytes: 6 + 3 * ROW });
      const generations = [(await store.generation('acme-conversation-old')).current, (await store.generation('acme-conversation-snap')).current];
      expect(generations.every((g) => Number.isSafeInteger(g) && g > 0 && g < 2 ** 48)).toBe(true);
      expect(generations[0]).not.toBe(generations[1]);
      await store.close();
      const again = new PostgresSealedStore(PG_URL, { schema: name });
      await again.init();
      try {
        expect([await again.generation('acme-conversation-old'), await again.generation('acme-conversation-snap')]).toEqual(generations.map((current) => ({ current })));
      } finally {
        await again.close();
      }
    } finally {
      await store.close();
      await dropSchemas([name]);
    }
  });

  it('PostgreSQL: a snapshot replace counts the entries that stay again (an older instance appending after migration 7 left the counters wrong)', async () => {
    const name = uniqueSchema('sealedcount');
    const store = new PostgresSealedStore(PG_URL, { schema: name });
    const room = 'acme-conversation-miscounted';
    try {
      await store.init();
      await store.append([{ room, envelopes: [Uint8Array.from([1, 1, 1]), Uint8Array.from([2, 2]), Uint8Array.from([3])] }]);
      // appends that did not count (as an older instance's do): the counters lag behind the rows
      await withPg((c) => c.query(`UPDATE "${name}".sealed_rooms SET entries = 1, entry_bytes = 1 WHERE room = $1`, [room]));
      expect(await store.replaceWithSnapshot(room, 2, Uint8Array.from([9, 9, 9, 9]))).toBe(true);
      expect(await store.stats(room)).toMatchObject({ head: 3, snapshotCovers: 2, entries: 1, bytes: 1 + ROW + 4 + ROW });
    } finally {
      await store.close();
      await dropSchemas([name]);
    }
  });

  it('SQLite: a delete the version before this one made (deleted_generation alone) is read as deleted; this one writes that column as it did', async () => {
    const file = join(mkdtempSync(join(dir, 'previous-')), SQLITE_FILE_NAME);
    const store = new SqliteSealedStore(dirname(file));
    await store.init();
    // another connection, as that version's process on a file it wrote (or after a rollback)
    const onFile = async <T>(work: (db: Database.Database) => T): Promise<T> => {
      const db = new Database(file, { timeout: 5000 });
      try {
        return work(db);
      } finally {
        db.close();
      }
    };
    try {
      await readsPreviousVersionDeletes(store, {
        purge: (room) =>
          onFile((db) => {
            db.prepare('DELETE FROM sealed_entries WHERE room = ?').run(room);
            db.prepare('UPDATE sealed_rooms SET head = 0, entries = 0, entry_bytes = 0, deleted_generation = generation, generation = ? WHERE room = ?').run(newSealedGeneration(), room);
          }),
        deletedColumn: (room) => onFile((db) => (db.prepare<[string], { d: number }>('SELECT deleted_generation AS d FROM sealed_rooms WHERE room = ?').get(room) as { d: number }).d),
      });
    } finally {
      await store.close();
    }
  });

  it('PostgreSQL: a delete an instance of the version before this one made (deleted_generation alone, a rolling upgrade) is read as deleted; this one writes that column as it did', async () => {
    const name = uniqueSchema('sealedprev');
    const store = new PostgresSealedStore(PG_URL, { schema: name });
    try {
      await store.init();
      await readsPreviousVersionDeletes(store, {
        purge: (room) =>
          withPg(async (c) => {
            await c.query(`DELETE FROM "${name}".sealed_entries WHERE room = $1`, [room]);
            await c.query(`UPDATE "${name}".sealed_rooms SET head = 0, entries = 0, entry_bytes = 0, deleted_generation = generation, generation = $2::bigint WHERE room = $1`, [
              room,
              newSealedGeneration(),
            ]);
          }),
        deletedColumn: async (room) => withPg(async (c) => Number((await c.query<{ d: string }>(`SELECT deleted_generation AS d FROM "${name}".sealed_rooms WHERE room = $1`, [room])).rows[0]?.d)),
      });
    } finally {
      await store.close();
      await dropSchemas([name]);
    }
  });
});

/** What the version before this one did to a sealed room's row: its purge, and the one column it read. */
interface PreviousVersion {
  purge(room: string): Promise<void>;
  deletedColumn(room: string): Promise<number>;
}

async function readsPreviousVersionDeletes(store: SealedStore, previous: PreviousVersion): Promise<void> {
  const room = 'acme-conversation-previous';
  await store.append([{ room, envelopes: [Uint8Array.from([1])] }]);
  const g1 = (await store.generation(room)).current;
  await previous.purge(room);
  const g2 = (await store.generation(room)).current;
  expect(g2).not.toBe(g1);
  expect([await store.generationDeleted(room, g1), await store.generationDeleted(room, g2)]).toEqual([true, false]);
  // this version's purges: the column as that version wrote it (the ended generation, unless
  // nothing was stored in it since an earlier delete), for its instances still running
  await store.append([{ room, envelopes: [Uint8Array.from([2])] }]);
  await store.purgeRoom(room);
  expect(await previous.deletedColumn(room)).toBe(g2);
  const g3 = (await store.generation(room)).current;
  await store.purgeRoom(room);
  expect(await previous.deletedColumn(room)).toBe(g2);
  expect(await Promise.all([g1, g2, g3].map((g) => store.generationDeleted(room, g)))).toEqual([true, true, true]);
}
