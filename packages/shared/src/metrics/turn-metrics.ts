/**
 * The TURN server's metrics, every one defined here (README "Endpoints", docs/turn.md "Metrics
 * and logs"; a test checks the docs name only metrics defined here or in server-metrics.ts).
 */
import { droppedLogLinesCounter } from './dropped-log-lines.js';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export function createTurnMetrics(registry: Registry = new Registry()) {
  const r = [registry];
  const metrics = {
    registry,
    allocations: new Gauge({ name: 'turn_allocations', help: 'Live TURN allocations', registers: r }),
    allocationsTotal: new Counter({ name: 'turn_allocations_total', help: 'TURN allocations created', registers: r }),
    authFailures: new Counter({
      name: 'turn_auth_failures_total',
      help: 'Refused TURN credentials',
      labelNames: ['reason'] as const,
      registers: r,
    }),
    relayedBytes: new Counter({
      name: 'turn_relayed_bytes_total',
      help: 'Bytes relayed, by direction (to_peer, to_client)',
      labelNames: ['direction'] as const,
      registers: r,
    }),
    deniedPeers: new Counter({ name: 'turn_denied_peers_total', help: 'Requests toward denied peer addresses', registers: r }),
    /** requests refused 508 by a per-allocation or reservation limit (TURN_MAX_*) */
    capacityRejections: new Counter({
      name: 'turn_capacity_rejections_total',
      help: 'TURN requests refused with 508 by a limit (peers_per_request, permissions, channels, reservations)',
      labelNames: ['limit'] as const,
      registers: r,
    }),
    quotaRejections: new Counter({ name: 'turn_quota_rejections_total', help: 'Allocations refused by quota', labelNames: ['quota'] as const, registers: r }),
    /** log lines dropped because stdout did not take them (logging/stdout-destination.ts) */
    logLinesDropped: droppedLogLinesCounter('turn_log_lines_dropped_total', r),
    /** so tests and operators can prove traffic went through the relay */
    relayedPackets: new Counter({
      name: 'turn_relayed_packets_total',
      help: 'Datagrams relayed, by direction (to_peer, to_client)',
      labelNames: ['direction'] as const,
      registers: r,
    }),
    /** the native path drops a datagram the kernel would not take at once (a full socket buffer, or another send error) */
    sendDrops: new Counter({ name: 'turn_relay_send_drops_total', help: 'Datagrams the native ChannelData path could not send (dropped)', registers: r }),
    /** so operators and tests see the native path at work */
    nativePackets: new Counter({ name: 'turn_relayed_native_packets_total', help: 'Datagrams relayed by the native ChannelData path (also in turn_relayed_packets_total)', registers: r }),
    requests: new Counter({
      name: 'turn_requests_total',
      help: 'STUN/TURN requests received, by method (allocate, refresh, channel_bind, ...)',
      labelNames: ['method'] as const,
      registers: r,
    }),
  };
  // The event-loop delay histogram samples on a timer: prom-client's 10 ms default wakes an idle
  // relay about 190 times a second (0.8 % of a core, measured with strace). 100 ms still catches
  // every stall longer than that, which is what matters for relayed media.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  return metrics;
}

export type TurnMetrics = ReturnType<typeof createTurnMetrics>;

export const SPEC_TURN_METRICS = [
  'turn_allocations',
  'turn_allocations_total',
  'turn_auth_failures_total',
  'turn_relayed_bytes_total',
  'turn_denied_peers_total',
] as const;
