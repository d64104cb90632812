/** STORAGE selects the engine. */
import type { ServerConfig } from '@sync-suite/shared/node';
import { MemoryStore } from './memory.js';
import { SqliteStore } from './sqlite.js';
import type { DocStore } from './types.js';

export function createDocStore(config: Pick<ServerConfig, 'STORAGE' | 'DATA_DIR'>): DocStore {
  switch (config.STORAGE) {
    case 'sqlite':
      return new SqliteStore(config.DATA_DIR);
    case 'memory':
      return new MemoryStore();
    case 'postgres':
      throw new Error('STORAGE=postgres is not yet supported by the relay (it arrives with the scale-out issue)');
  }
}
