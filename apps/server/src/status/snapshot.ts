/**
 * GET /status.json: the numbers behind the status page. Counts only: no room names,
 * tokens, addresses or document contents.
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
  /** every live instance, by id; just this one without REDIS_URL */
  instances: InstanceFigures[];
  /** false when Redis could not be read: `instances` and `totals` are this instance's alone */
  complete: boolean;
  turn: TurnSnapshot | { configured: false };
  /** this instance's rates, one point a second over the last minute (the chart) */
  rates: RatePoint[];
}

export async function buildSnapshot(
  self: InstanceFigures,
  cluster: ClusterRead,
  rates: RatePoint[],
  turn: TurnProbe,
  ready: boolean,
): Promise<StatusSnapshot> {
  const turnRead = turn.read();
  const instances = [self, ...cluster.peers].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return {
    time: new Date().toISOString(),
    uptimeSeconds: Math.round(process.uptime()),
    ready,
    instance: self.id,
    totals: clusterTotals(instances),
    instances,
    complete: cluster.complete,
    turn: turnRead ? await turnRead : { configured: false },
    rates,
  };
}
