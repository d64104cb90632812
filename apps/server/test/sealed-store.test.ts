import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SQLITE_FILE_NAME } from '../src/relay/persistence/sqlite.js';
import { MemorySealedStore } from '../src/sealed/store/memory.js';
import { PostgresSealedStore } from '../src/sealed/store/postgres.js';
import { SqliteSealedStore } from '../src/sealed/store/sqlite.js';
import { PG_URL, schemaForThisFile } from './postgres-helpers.js';
import { describeSealedStoreContract } from './sealed-store-contract.js';

const dir = mkdtempSync(join(tmpdir(), 'sealed-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const schema = schemaForThisFile('sealed');

describeSealedStoreContract('memory', () => new MemorySealedStore());
describeSealedStoreContract('sqlite', () => new SqliteSealedStore(dir));
describeSealedStoreContract('postgres', () => new PostgresSealedStore(PG_URL, { schema }));

describe('sealed SQLite file from before the admin API', () => {
  it('gains the change-time column on open: old rooms show null until their next append', async () => {
    const old = mkdtempSync(join(dir, 'old-'));
    const db = new Database(join(old, SQLITE_FILE_NAME));
    db.exec(`CREATE TABLE sealed_rooms (room TEXT PRIMARY KEY, head INTEGER NOT NULL DEFAULT 0, covers INTEGER NOT NULL DEFAULT 0, snapshot BLOB);
      CREATE TABLE sealed_entries (room TEXT NOT NULL, seq INTEGER NOT NULL, envelope BLOB NOT NULL, PRIMARY KEY (room, seq)) WITHOUT ROWID;
      INSERT INTO sealed_rooms (room, head) VALUES ('acme-conversation-old', 1);
      INSERT INTO sealed_entries VALUES ('acme-conversation-old', 1, x'010203');`);
    db.close();
    const store = new SqliteSealedStore(old);
    await store.init();
    try {
      expect(await store.statRoom('acme-conversation-old')).toEqual({ room: 'acme-conversation-old', bytes: 3, entries: 1, lastChangeAt: null });
      expect(await store.append([{ room: 'acme-conversation-old', envelopes: [Uint8Array.from([4])] }])).toEqual([2]);
      expect((await store.statRoom('acme-conversation-old'))?.lastChangeAt).toBeGreaterThan(Date.now() - 60_000);
    } finally {
      await store.close();
    }
  });
});
