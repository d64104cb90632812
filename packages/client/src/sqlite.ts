/**
 * `@sync-suite/client/sqlite`: persistence for Node and Electron (main process) in a SQLite file,
 * with better-sqlite3 (an optional peer dependency: `npm install better-sqlite3`).
 *
 *   new SyncProvider(doc, { ..., persistence: sqlitePersistence('/path/app.db', { name: room }) })
 */
import { SqliteUpdateStore } from './persistence/sqlite-store.js';
import type { SyncPersistence } from './persistence/types.js';
import { updateLogPersistence, type UpdateLogOptions } from './persistence/update-log.js';

export type { SyncPersistence, UpdateLogStore } from './persistence/types.js';

export interface SqlitePersistenceOptions extends UpdateLogOptions {
  /** which document of the file, when several share it (default 'default'; e.g. the room name) */
  name?: string;
}

export function sqlitePersistence(file: string, opts: SqlitePersistenceOptions = {}): SyncPersistence {
  let store: SqliteUpdateStore | undefined;
  // The file opens with the persistence (inside SyncProvider), so a missing better-sqlite3 is reported there.
  const opened = (): SqliteUpdateStore => (store ??= new SqliteUpdateStore(file, opts.name ?? 'default'));
  const lazy = {
    load: () => opened().load(),
    append: (u: Uint8Array) => opened().append(u),
    replaceAll: (s: Uint8Array) => opened().replaceAll(s),
    getMeta: (k: string) => opened().getMeta(k),
    setMeta: (k: string, v: Uint8Array) => opened().setMeta(k, v),
    close: () => store?.close(),
  };
  return updateLogPersistence(lazy, opts);
}
