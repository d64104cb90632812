/**
 * Relayed bytes and datagrams counted as plain numbers on the hot path (a prom-client label
 * lookup per datagram costs more than the lookup that relays it), moved into the Prometheus
 * counters when /metrics is scraped.
 */
import type { RelayMetrics } from '../metrics.js';
import type { NativeCounts } from './native-relay.js';

export class RelayCounters {
  toPeerBytes = 0;
  toPeerPackets = 0;
  toClientBytes = 0;
  toClientPackets = 0;

  /** counts kept elsewhere (the native path's), taken at each flush */
  pull: (() => NativeCounts) | undefined;

  constructor(private readonly metrics: RelayMetrics) {}

  /** Add what was counted since the last flush to the Prometheus counters. */
  flush(): void {
    const pulled = this.pull?.();
    if (pulled) {
      this.toPeerBytes += pulled.toPeerBytes;
      this.toPeerPackets += pulled.toPeerPackets;
      this.toClientBytes += pulled.toClientBytes;
      this.toClientPackets += pulled.toClientPackets;
      if (pulled.sendDrops > 0) this.metrics.sendDrops.inc(pulled.sendDrops);
      const native = pulled.toPeerPackets + pulled.toClientPackets;
      if (native > 0) this.metrics.nativePackets.inc(native);
    }
    if (this.toPeerPackets > 0) this.metrics.relayed('to_peer', this.toPeerBytes, this.toPeerPackets);
    if (this.toClientPackets > 0) this.metrics.relayed('to_client', this.toClientBytes, this.toClientPackets);
    this.toPeerBytes = this.toPeerPackets = this.toClientBytes = this.toClientPackets = 0;
  }
}
