// Node-only exports: config, metrics, logging, TURN credentials.
export * from './index.js';
export * from './turn/rest-credentials.js';
export * from './config/env.js';
export * from './config/server-config.js';
export * from './config/node-env.js';
export * from './config/turn-config.js';
export * from './metrics/server-metrics.js';
export * from './metrics/turn-metrics.js';
export * from './metrics/fold-on-collect.js';
export * from './logging/logger.js';
export * from './logging/log-budget.js';
export * from './logging/report-gate.js';
export * from './process/stop-on-signals.js';
export * from './auth/same-secret.js';
export * from './config/startup-error.js';
