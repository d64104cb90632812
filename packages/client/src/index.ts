// The browser / React Native / Node entry: no Node built-ins on this path.
export { SyncProvider } from './sync-provider.js';
export type { SyncProviderOptions, SyncProviderEvents, SyncProviderError } from './options.js';
export type { StatusEvent, SyncStatus } from './status.js';
export type { IceServerConfig } from './ice-servers.js';
export { indexedDbPersistence, type IndexedDbPersistenceOptions } from './persistence/indexeddb.js';
export { updateLogPersistence, type UpdateLogOptions } from './persistence/update-log.js';
export type { SyncPersistence, UpdateLogStore } from './persistence/types.js';
