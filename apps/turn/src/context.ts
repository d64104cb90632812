/** What the node-turn fixes share: the wrapped server, the data plane and our policy objects. */
import type { Logger } from '@sync-suite/shared/node';
import type { NtServer } from './node-turn.js';
import type { AllocationRegistry } from './allocations.js';
import type { AllocationQuotas } from './quotas.js';
import type { RelayMetrics } from './metrics.js';
import type { PeerFilter } from './peer-filter.js';
import type { LifetimePolicy } from './lifetime.js';
import type { RelayPorts } from './relay-ports.js';
import type { RestCredentials } from './credentials.js';
import type { DataPlane } from './data-plane/data-plane.js';

export interface TurnContext {
  server: NtServer;
  log: Logger;
  metrics: RelayMetrics;
  registry: AllocationRegistry;
  dataPlane: DataPlane;
  quotas: AllocationQuotas;
  peers: PeerFilter;
  lifetime: LifetimePolicy;
  ports: RelayPorts;
  credentials: RestCredentials;
  /** STUN address family of the relay address: 1 IPv4, 2 IPv6 */
  relayFamily: number;
}
