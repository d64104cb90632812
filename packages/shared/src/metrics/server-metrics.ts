/** The server's metrics, defined once and registered per registry (a test checks the docs name only these and turn-metrics.ts). */
import { droppedLogLinesCounter } from './dropped-log-lines.js';
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
    unsentBytes: new Gauge({
      name: 'sync_unsent_bytes',
      help: 'Bytes the instance holds unsent to its WebSocket receivers (relay, sealed, signal): what each receiver holds of its own, and each large message held by reference by several receivers once; capped by MAX_UNSENT_BYTES_TOTAL',
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
    sealedConnections: new Gauge({ name: 'sync_sealed_connections', help: 'Open sealed-room WebSockets', registers: r }),
    sealedRooms: new Gauge({ name: 'sync_sealed_rooms', help: 'Sealed rooms held in memory', registers: r }),
    sealedEnvelopes: new Counter({
      name: 'sync_sealed_envelopes_total',
      help: 'Sealed envelopes accepted, by kind (update, snapshot, presence)',
      labelNames: ['kind'] as const,
      registers: r,
    }),
    sealedBytes: new Counter({ name: 'sync_sealed_bytes_total', help: 'Bytes of sealed envelopes accepted', registers: r }),
    sealedSnapshots: new Counter({ name: 'sync_sealed_snapshots_total', help: 'Sealed snapshots stored (compactions)', registers: r }),
    rateLimitPauses: new Counter({
      name: 'sync_rate_limit_pauses_total',
      help: 'Times a connection above MAX_MESSAGES_PER_SECOND had its reading paused, by endpoint',
      labelNames: ['endpoint'] as const,
      registers: r,
    }),
    clientErrors: new Counter({
      name: 'sync_client_errors_total',
      help: 'Client-caused transport errors (invalid WebSocket frames, bad HTTP), by endpoint and reason',
      labelNames: ['endpoint', 'reason'] as const,
      registers: r,
    }),
    tokenClosures: new Counter({
      name: 'sync_token_closures_total',
      help: 'Open sockets closed because their token expired or was revoked, by endpoint and reason',
      labelNames: ['endpoint', 'reason'] as const,
      registers: r,
    }),
    adminRequests: new Counter({
      name: 'sync_admin_requests_total',
      help: 'Admin API requests, by action and outcome',
      labelNames: ['action', 'outcome'] as const,
      registers: r,
    }),
    webhookDeliveries: new Counter({
      name: 'sync_webhook_deliveries_total',
      help: 'Webhook POSTs, by result (ok, retry, dropped, gave_up, deduplicated)',
      labelNames: ['result'] as const,
      registers: r,
    }),
    webhookBacklog: new Gauge({ name: 'sync_webhook_backlog', help: 'Webhook events waiting to be delivered (in the storage outbox)', registers: r }),
    quotaRefusals: new Counter({
      name: 'sync_quota_refusals_total',
      help: 'Updates or joins refused by a quota, by quota (room_bytes, new_rooms)',
      labelNames: ['quota'] as const,
      registers: r,
    }),
    /** log lines dropped because stdout did not take them (logging/stdout-destination.ts) */
    logLinesDropped: droppedLogLinesCounter('sync_log_lines_dropped_total', r),
    quarantinedUpdates: new Counter({
      name: 'sync_relay_quarantined_updates_total',
      help: 'Stored or remote relay updates set aside because they failed to apply or passed a cost limit',
      labelNames: ['source'] as const,
      registers: r,
    }),
    wholeDocumentAnswers: new Counter({
      name: 'sync_relay_whole_document_answers_total',
      help: 'Relay sync step 1s answered with the whole document: their state vector named more than RELAY_MAX_STATE_VECTOR_CLIENTS clients beyond the room\'s and was not decoded',
      registers: r,
    }),
  };
  collectDefaultMetrics({ register: registry });
  return metrics;
}

export type ServerMetrics = ReturnType<typeof createServerMetrics>;

/** The names operators rely on (README, docs/*.md); a test checks each is exposed. */
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
  'sync_sealed_connections',
  'sync_sealed_rooms',
  'sync_sealed_envelopes_total',
  'sync_sealed_bytes_total',
  'sync_sealed_snapshots_total',
] as const;
