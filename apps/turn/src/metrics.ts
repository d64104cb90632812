/** The TURN metrics (all defined in packages/shared/src/metrics/turn-metrics.ts), and one call that counts a relayed datagram in both byte and packet counters. */
import { createTurnMetrics } from '@sync-suite/shared/node';

export type Direction = 'to_peer' | 'to_client';

export function createRelayMetrics() {
  const base = createTurnMetrics();
  return {
    ...base,
    relayed(direction: Direction, bytes: number, packets = 1): void {
      base.relayedBytes.inc({ direction }, bytes);
      base.relayedPackets.inc({ direction }, packets);
    },
  };
}

export type RelayMetrics = ReturnType<typeof createRelayMetrics>;
