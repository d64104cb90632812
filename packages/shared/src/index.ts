// Browser-safe exports: used by clients as well as servers.
export * from './rooms/room-name.js';
export * from './auth/room-token.js';
export * from './auth/token-id.js';
export * from './errors.js';
export * from './protocol/signaling.js';
export * from './protocol/relay.js';
export * from './protocol/sealed.js';
