/**
 * GET /status.json: the numbers behind the status page. Counts only: no room names,
 * tokens, addresses or document contents.
 */
import type { ServerMetrics } from '@sync-suite/shared/node';
import { total, type RatePoint, type RateSampler } from './sampler.js';
import type { TurnProbe, TurnSnapshot } from './turn-probe.js';

export interface StatusSnapshot {
  time: string;
  uptimeSeconds: number;
  ready: boolean;
  signaling: { peers: number; rooms: number };
  relay: { connections: number; rooms: number; updatesTotal: number };
  authFailuresTotal: number;
  /** sockets and messages refused or closed for cause: auth, limits, quotas, token expiry/revocation */
  refusalsTotal: number;
  webhookBacklog: number;
  turn: TurnSnapshot | { configured: false };
  rates: RatePoint[];
}

export async function buildSnapshot(
  metrics: ServerMetrics,
  sampler: RateSampler,
  turn: TurnProbe,
  ready: boolean,
): Promise<StatusSnapshot> {
  const turnRead = turn.read();
  return {
    time: new Date().toISOString(),
    uptimeSeconds: Math.round(process.uptime()),
    ready,
    signaling: { peers: await total(metrics.signalingConnections), rooms: await total(metrics.signalingTopics) },
    relay: {
      connections: await total(metrics.relayConnections),
      rooms: await total(metrics.relayRooms),
      updatesTotal: await total(metrics.relayUpdates),
    },
    authFailuresTotal: await total(metrics.authFailures),
    refusalsTotal:
      (await total(metrics.authFailures)) +
      (await total(metrics.rejectedMessages)) +
      (await total(metrics.quotaRefusals)) +
      (await total(metrics.tokenClosures)),
    webhookBacklog: await total(metrics.webhookBacklog),
    turn: turnRead ? await turnRead : { configured: false },
    rates: sampler.series(),
  };
}
