/** STORAGE selects the sealed engine, as it does the relay's (relay/persistence/create-store.ts). */
import type { ServerConfig, ServerMetrics } from '@sync-suite/shared/node';
import type { SqliteThreads } from '../../storage/sqlite-thread.js';
import { MemorySealedStore } from './memory.js';
import { PostgresSealedStore } from './postgres.js';
import { SqliteSealedStore } from './sqlite.js';
import type { SealedStore } from './types.js';

export function createSealedStore(
  config: Pick<ServerConfig, 'STORAGE' | 'DATA_DIR'> & Partial<Pick<ServerConfig, 'DATABASE_URL'>>,
  metrics?: ServerMetrics,
  /** the server's storage threads, shared by its relay and sealed SQLite engines */
  sqliteThreads?: SqliteThreads,
): SealedStore {
  switch (config.STORAGE) {
    case 'sqlite':
      return new SqliteSealedStore(config.DATA_DIR, sqliteThreads);
    case 'memory':
      return new MemorySealedStore();
    case 'postgres':
      if (!config.DATABASE_URL) throw new Error('STORAGE=postgres needs DATABASE_URL');
      return new PostgresSealedStore(config.DATABASE_URL, {
        onError: (op) => {
          if (op === 'read' || op === 'stats' || op === 'pool') metrics?.storageErrors.inc({ op: `sealed_${op}` });
        },
      });
  }
}
