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
import type { LogBudget } from './log-budget.js';

export interface TurnLimits {
  peersPerRequest: number;
  permissions: number;
  channels: number;
  reservations: number;
}

export interface TurnContext {
  server: NtServer;
  log: Logger;
  /** client-triggerable warn lines go through it (log-budget.ts) */
  logBudget: LogBudget;
  metrics: RelayMetrics;
  registry: AllocationRegistry;
  dataPlane: DataPlane;
  quotas: AllocationQuotas;
  peers: PeerFilter;
  lifetime: LifetimePolicy;
  ports: RelayPorts;
  credentials: RestCredentials;
  /** per-allocation and reservation limits (TURN_MAX_*): beyond them, 508 */
  limits: TurnLimits;
  /** STUN address family of the relay address: 1 IPv4, 2 IPv6 */
  relayFamily: number;
}
