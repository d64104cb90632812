/** STORAGE selects the engine. */
import type { ServerConfig, ServerMetrics } from '@sync-suite/shared/node';
import type { SqliteThreads } from '../../storage/sqlite-thread.js';
import { MemoryStore } from './memory.js';
import { PostgresStore } from './postgres.js';
import { SqliteStore } from './sqlite.js';
import type { EngineStore } from './types.js';

export function createDocStore(
  config: Pick<ServerConfig, 'STORAGE' | 'DATA_DIR'> & Partial<Pick<ServerConfig, 'DATABASE_URL'>>,
  metrics?: ServerMetrics,
  /** the server's storage threads, shared by its relay and sealed SQLite engines */
  sqliteThreads?: SqliteThreads,
): EngineStore {
  switch (config.STORAGE) {
    case 'sqlite':
      return new SqliteStore(config.DATA_DIR, sqliteThreads);
    case 'memory':
      return new MemoryStore();
    case 'postgres':
      if (!config.DATABASE_URL) throw new Error('STORAGE=postgres needs DATABASE_URL');
      // append and compact failures are counted by the flush queue and the registry.
      return new PostgresStore(config.DATABASE_URL, {
        onError: (op) => {
          if (op === 'load' || op === 'pool') metrics?.storageErrors.inc({ op });
        },
      });
  }
}
