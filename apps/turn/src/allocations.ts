/**
 * Our bookkeeping for node-turn allocations, and the link to the data plane. Fixes: node-turn's
 * expiry timer only deletes the map entry and never closes the relay socket; update() without
 * an argument (a retransmitted Allocate) arms a NaN timer that drops the allocation at once;
 * stop() leaves every timer and socket alive. Here each allocation gets one timer we own, and
 * release() frees everything. The permissions and channel bindings node-turn's CreatePermission
 * and ChannelBind install are mirrored into the data plane, with their RFC 5766 lifetimes.
 */
import type { Socket } from 'node:dgram';
import type { Logger } from '@sync-suite/shared/node';
import type { NtAddress, NtAllocation, NtServer } from './node-turn.js';
import type { AllocationQuotas } from './quotas.js';
import type { RelayMetrics } from './metrics.js';
import type { DataPlane } from './data-plane/data-plane.js';
import type { RelayAllocation } from './data-plane/relay-allocation.js';
import { canonicalIp } from './ip.js';

interface Tracked {
  /** what the quota counts: the user, not the credential */
  quotaKey: string;
  relay: RelayAllocation;
  timer: NodeJS.Timeout | undefined;
  /** run when it is released (the EVEN-PORT reservation it made is closed with it) */
  cleanup: (() => void) | undefined;
}

export class AllocationRegistry {
  private readonly live = new Map<NtAllocation, Tracked>();

  constructor(
    private readonly server: NtServer,
    private readonly dataPlane: DataPlane,
    private readonly quotas: AllocationQuotas,
    private readonly metrics: RelayMetrics,
    private readonly log: Logger,
  ) {}

  get size(): number {
    return this.live.size;
  }

  track(allocation: NtAllocation, username: string, quotaKey: string, lifetime: number, cleanup?: () => void): void {
    clearTimeout(allocation.timer);
    allocation.timer = undefined;
    const client = allocation.transport.dst;
    const relay = this.dataPlane.add(
      { socket: allocation.transport.socket, address: canonicalIp(client.address) ?? client.address, port: client.port },
      allocation.sockets[0]!,
      username,
    );
    this.live.set(allocation, { quotaKey, relay, timer: undefined, cleanup });
    allocation.update = (seconds?: number) => this.schedule(allocation, seconds ?? allocation.lifetime);
    mirrorIntoDataPlane(allocation, relay);
    this.schedule(allocation, lifetime);
    this.metrics.allocations.inc();
    this.metrics.allocationsTotal.inc();
    this.log.info({ username, client: `${client.address}:${client.port}`, relay: relayOf(allocation), lifetime }, 'allocation created');
  }

  release(allocation: NtAllocation, reason: string): void {
    const tracked = this.live.get(allocation);
    if (!tracked) return;
    this.live.delete(allocation);
    clearTimeout(tracked.timer);
    clearTimeout(allocation.timer);
    if (this.server.allocations[allocation.fiveTuple] === allocation) delete this.server.allocations[allocation.fiveTuple];
    this.dataPlane.remove(tracked.relay);
    for (const socket of allocation.sockets) closeQuietly(socket);
    this.quotas.give(tracked.quotaKey);
    tracked.cleanup?.();
    this.metrics.allocations.dec();
    this.log.info({ username: tracked.relay.owner, relay: relayOf(allocation), reason }, 'allocation released');
  }

  /** The data plane's side of a live allocation. */
  relayOf(allocation: NtAllocation): RelayAllocation | undefined {
    return this.live.get(allocation)?.relay;
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
}

/**
 * node-turn calls allocation.permit() for CreatePermission (and fixes/channel-bind.ts for ChannelBind), and writes
 * channelBindings[channel] = peer for ChannelBind: both land in the data plane too. Reading an
 * expired binding removes it, so node-turn's ChannelBind checks see it unbound (RFC 5766
 * section 11: a binding lasts 10 minutes unless refreshed).
 */
function mirrorIntoDataPlane(allocation: NtAllocation, relay: RelayAllocation): void {
  // node-turn's own permissions map is read by nothing of ours (the data plane replaced its peer
  // side) and never shrinks: it is not filled
  allocation.permit = (address: string) => {
    relay.permit(address, Date.now());
  };
  allocation.channelBindings = new Proxy<Record<string, NtAddress | undefined>>({}, {
    get(target, key) {
      if (typeof key !== 'string' || !(key in target)) return undefined;
      if (!relay.channelLive(Number(key), Date.now())) delete target[key];
      return target[key];
    },
    set(target, key, peer: NtAddress) {
      if (typeof key !== 'string') return false;
      target[key] = peer;
      relay.bind(Number(key), peer.address, peer.port, Date.now());
      return true;
    },
  });
}

function relayOf(allocation: NtAllocation): string {
  return `${allocation.relayedTransportAddress.address}:${allocation.relayedTransportAddress.port}`;
}

function closeQuietly(socket: Socket): void {
  try {
    socket.close();
  } catch {
    // already closed
  }
}
