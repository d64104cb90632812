/**
 * GET /status.json: the numbers behind the status page. Counts only: no room names,
 * tokens, addresses or document contents; each instance's host name and process id only for a
 * caller that gave METRICS_TOKEN (without METRICS_TOKEN the page is open to anyone).
 */
import type { ClusterRead } from './cluster.js';
import { clusterTotals, type ClusterTotals, type InstanceFigures } from './instance.js';
import type { RatePoint } from './sampler.js';
import type { TurnProbe, TurnSnapshot } from './turn-probe.js';

export interface StatusSnapshot {
  time: string;
  uptimeSeconds: number;
  /** this instance's readiness (/readyz) */
  ready: boolean;
  /** the id of the instance that answered, as listed in `instances` */
  instance: string;
  /** every live instance added up (a shared PostgreSQL database counted once) */
  totals: ClusterTotals;
  /** every live instance, by id; just this one without REDIS_URL (`host` and `pid` only with `withHosts`) */
  instances: ListedInstance[];
  /** false when Redis could not be read: `instances` and `totals` are this instance's alone */
  complete: boolean;
  turn: TurnSnapshot | { configured: false };
  /** this instance's rates, one point a second over the last minute (the chart) */
  rates: RatePoint[];
}

/** An instance as listed: its host name and process id are left out for an unauthenticated caller. */
export type ListedInstance = Omit<InstanceFigures, 'host' | 'pid'> & Partial<Pick<InstanceFigures, 'host' | 'pid'>>;

export async function buildSnapshot(
  self: InstanceFigures,
  cluster: ClusterRead,
  rates: RatePoint[],
  turn: TurnProbe,
  ready: boolean,
  withHosts = false,
): Promise<StatusSnapshot> {
  const turnRead = turn.read();
  const instances = [self, ...cluster.peers].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return {
    time: new Date().toISOString(),
    uptimeSeconds: Math.round(process.uptime()),
    ready,
    instance: self.id,
    totals: clusterTotals(instances),
    instances: withHosts ? instances : instances.map(({ host: _host, pid: _pid, ...listed }) => listed),
    complete: cluster.complete,
    turn: turnRead ? await turnRead : { configured: false },
    rates,
  };
}
