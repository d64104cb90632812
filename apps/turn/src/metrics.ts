/** The SPEC TURN metrics plus a packet counter, so tests and operators can prove traffic went through the relay. */
import { Counter } from 'prom-client';
import { createTurnMetrics } from '@sync-suite/shared/node';

export type Direction = 'to_peer' | 'to_client';

export function createRelayMetrics() {
  const base = createTurnMetrics();
  const relayedPackets = new Counter({
    name: 'turn_relayed_packets_total',
    help: 'Datagrams relayed, by direction (to_peer, to_client)',
    labelNames: ['direction'] as const,
    registers: [base.registry],
  });
  const requests = new Counter({
    name: 'turn_requests_total',
    help: 'STUN/TURN requests received, by method (allocate, refresh, channel_bind, ...)',
    labelNames: ['method'] as const,
    registers: [base.registry],
  });
  return {
    ...base,
    requests,
    relayed(direction: Direction, bytes: number, packets = 1): void {
      base.relayedBytes.inc({ direction }, bytes);
      relayedPackets.inc({ direction }, packets);
    },
  };
}

export type RelayMetrics = ReturnType<typeof createRelayMetrics>;
