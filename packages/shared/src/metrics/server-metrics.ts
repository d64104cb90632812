/** The server's metrics (SPEC "Metrics (server)"), defined once and registered per registry. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createServerMetrics(registry: Registry = new Registry()) {
  const r = [registry];
  const metrics = {
    registry,
    signalingConnections: new Gauge({ name: 'sync_signaling_connections', help: 'Open signaling WebSockets', registers: r }),
    signalingTopics: new Gauge({ name: 'sync_signaling_topics', help: 'Signaling topics with at least one subscriber', registers: r }),
    signalingMessages: new Counter({
      name: 'sync_signaling_messages_total',
      help: 'Signaling messages received, by type',
      labelNames: ['type'] as const,
      registers: r,
    }),
    relayConnections: new Gauge({ name: 'sync_relay_connections', help: 'Open relay WebSockets', registers: r }),
    relayRooms: new Gauge({ name: 'sync_relay_rooms', help: 'Relay rooms held in memory', registers: r }),
    relayUpdates: new Counter({ name: 'sync_relay_updates_total', help: 'Document updates accepted by the relay', registers: r }),
    relayUpdateBytes: new Counter({
      name: 'sync_relay_update_bytes_total',
      help: 'Bytes of document updates accepted by the relay',
      registers: r,
    }),
    relayPersistSeconds: new Histogram({
      name: 'sync_relay_persist_seconds',
      help: 'Time to commit one batch of relay updates to storage',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: r,
    }),
    authFailures: new Counter({
      name: 'sync_auth_failures_total',
      help: 'Refused tokens, by endpoint and reason',
      labelNames: ['endpoint', 'reason'] as const,
      registers: r,
    }),
    rejectedMessages: new Counter({
      name: 'sync_rejected_messages_total',
      help: 'Messages or connections refused, by endpoint and reason',
      labelNames: ['endpoint', 'reason'] as const,
      registers: r,
    }),
    storageErrors: new Counter({
      name: 'sync_storage_errors_total',
      help: 'Storage operations that failed, by operation',
      labelNames: ['op'] as const,
      registers: r,
    }),
    redisMessages: new Counter({
      name: 'sync_redis_messages_total',
      help: 'Cross-instance messages, by direction (publish, receive)',
      labelNames: ['direction'] as const,
      registers: r,
    }),
    redisErrors: new Counter({ name: 'sync_redis_errors_total', help: 'Redis errors seen', registers: r }),
    quarantinedUpdates: new Counter({
      name: 'sync_relay_quarantined_updates_total',
      help: 'Stored or remote relay updates set aside because they failed to apply or passed a cost limit',
      labelNames: ['source'] as const,
      registers: r,
    }),
  };
  collectDefaultMetrics({ register: registry });
  return metrics;
}

export type ServerMetrics = ReturnType<typeof createServerMetrics>;

/** Names that SPEC fixes; a test checks each is exposed. */
export const SPEC_SERVER_METRICS = [
  'sync_signaling_connections',
  'sync_signaling_topics',
  'sync_signaling_messages_total',
  'sync_relay_connections',
  'sync_relay_rooms',
  'sync_relay_updates_total',
  'sync_relay_update_bytes_total',
  'sync_relay_persist_seconds',
  'sync_auth_failures_total',
  'sync_rejected_messages_total',
] as const;
