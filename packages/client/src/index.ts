export { SyncProvider } from './sync-provider.js';
export type { SyncProviderOptions, SyncProviderEvents, SyncProviderError } from './options.js';
export type { StatusEvent, SyncStatus } from './status.js';
export type { IceServerConfig } from './ice-servers.js';
export { decideRelay, peersCovered, type PolicyInput, type RelayDecision } from './relay-policy.js';
export { statusOf } from './status.js';
export { endpointsFor } from './endpoints.js';
export { tokenExpiresAt } from './token-expiry.js';
