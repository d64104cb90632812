/**
 * Our bookkeeping for node-turn allocations. Fixes: node-turn's expiry timer only deletes the
 * map entry and never closes the relay socket; update() without an argument (a retransmitted
 * Allocate) arms a NaN timer that drops the allocation at once; stop() leaves every timer and
 * socket alive. Here each allocation gets one timer we own, and release() frees everything.
 */
import type { Socket } from 'node:dgram';
import type { Logger } from '@sync-suite/shared/node';
import { Address, type NtAllocation, type NtServer } from './node-turn.js';
import type { AllocationQuotas } from './quotas.js';
import type { RelayMetrics } from './metrics.js';
import { permitted } from './fixes/peer-requests.js';
import { wrapListeners } from './fixes/wrap.js';

type PeerDatagramHandler = (data: Buffer, rinfo: { address: string; port: number }) => void;

interface Tracked {
  username: string;
  timer: NodeJS.Timeout | undefined;
}

export class AllocationRegistry {
  private readonly live = new Map<NtAllocation, Tracked>();

  constructor(
    private readonly server: NtServer,
    private readonly quotas: AllocationQuotas,
    private readonly metrics: RelayMetrics,
    private readonly log: Logger,
  ) {}

  get size(): number {
    return this.live.size;
  }

  track(allocation: NtAllocation, username: string, lifetime: number): void {
    clearTimeout(allocation.timer);
    allocation.timer = undefined;
    const tracked: Tracked = { username, timer: undefined };
    this.live.set(allocation, tracked);
    allocation.update = (seconds?: number) => this.schedule(allocation, seconds ?? allocation.lifetime);
    this.schedule(allocation, lifetime);
    for (const socket of allocation.sockets) this.guardPeerSide(allocation, socket);
    this.metrics.allocations.inc();
    this.metrics.allocationsTotal.inc();
    this.log.info(
      { username, client: `${allocation.mappedAddress.address}:${allocation.mappedAddress.port}`, relay: relayOf(allocation), lifetime },
      'allocation created',
    );
  }

  release(allocation: NtAllocation, reason: string): void {
    const tracked = this.live.get(allocation);
    if (!tracked) return;
    this.live.delete(allocation);
    clearTimeout(tracked.timer);
    clearTimeout(allocation.timer);
    if (this.server.allocations[allocation.fiveTuple] === allocation) delete this.server.allocations[allocation.fiveTuple];
    for (const socket of allocation.sockets) closeQuietly(socket);
    this.quotas.give(tracked.username);
    this.metrics.allocations.dec();
    this.log.info({ username: tracked.username, relay: relayOf(allocation), reason }, 'allocation released');
  }

  releaseAll(reason: string): void {
    for (const allocation of [...this.live.keys()]) this.release(allocation, reason);
  }

  private schedule(allocation: NtAllocation, seconds: number): void {
    const tracked = this.live.get(allocation);
    if (!tracked) return;
    clearTimeout(tracked.timer);
    allocation.lifetime = seconds;
    allocation.timeToExpiry = Date.now() + seconds * 1000;
    tracked.timer = setTimeout(() => this.release(allocation, 'expired'), seconds * 1000);
  }

  /**
   * node-turn's peer-side handler throws on datagrams shorter than 4 bytes (uncaught: the
   * process dies); catch that, and count what it relays to the client.
   */
  private guardPeerSide(allocation: NtAllocation, socket: Socket): void {
    wrapListeners<PeerDatagramHandler>(socket, 'message', (original) => (data, rinfo) => {
      if (data.length < 4 || !permitted(allocation, normalize(rinfo.address))) return;
      try {
        original(data, rinfo);
        this.metrics.relayed('to_client', data.length);
      } catch (err) {
        this.log.debug({ err }, 'peer datagram dropped');
      }
    });
  }
}

function relayOf(allocation: NtAllocation): string {
  return `${allocation.relayedTransportAddress.address}:${allocation.relayedTransportAddress.port}`;
}

/** node-turn keys permissions by its own Address form (IPv6 expanded). */
function normalize(address: string): string {
  return new Address(address, 0).address;
}

function closeQuietly(socket: Socket): void {
  try {
    socket.close();
  } catch {
    // already closed
  }
}
