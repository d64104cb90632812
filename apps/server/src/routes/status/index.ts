/**
 * GET /status (a live HTML page) and GET /status.json (its numbers). Behind METRICS_TOKEN
 * when set: `Authorization: Bearer` or, for a browser, `?token=` (the page passes it on
 * as a bearer header; logs redact it). With REDIS_URL, every instance publishes its figures
 * (status/cluster.ts) and each page shows them all with their totals.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { buildSnapshot } from '../../status/snapshot.js';
import { ClusterStatus } from '../../status/cluster.js';
import { InstanceReader } from '../../status/instance.js';
import { RateSampler } from '../../status/sampler.js';
import { STATUS_CSP, STATUS_PAGE } from '../../status/page.js';
import { TurnProbe } from '../../status/turn-probe.js';
import { redisKeys } from '../../fanout/redis-keys.js';
import { errorBody } from '@sync-suite/shared';
import { secretTokenMatches } from '../../auth/request-token.js';

export async function statusRoutes(app: FastifyInstance): Promise<void> {
  const { config, metrics, readiness, lifecycle, storageSize } = app.sync;
  const sampler = new RateSampler(metrics, 60, (err) => app.log.warn({ err }, 'status sampling failed'));
  const turn = new TurnProbe(config.TURN_METRICS_URL, config.METRICS_TOKEN);
  // Random per process: an instance restarted on the same host is a new row, not a revived one.
  const reader = new InstanceReader(randomBytes(6).toString('hex'), metrics, sampler, storageSize);
  sampler.start();
  app.addHook('onClose', async () => sampler.stop());

  let cluster: ClusterStatus | undefined;
  if (app.redisLink) {
    cluster = new ClusterStatus(await app.redisLink, redisKeys(config.REDIS_PREFIX).status(), () => reader.read());
    cluster.start();
    // Before release closes Redis: the other pages stop listing this instance at once.
    lifecycle.on('drain', () => cluster?.stop(reader.id));
  }

  const allowed = (req: FastifyRequest, reply: FastifyReply): boolean => {
    reply.header('cache-control', 'no-store');
    if (secretTokenMatches(req, config.METRICS_TOKEN, { query: true })) return true;
    metrics.authFailures.inc({ endpoint: 'status', reason: 'bad_metrics_token' });
    reply.code(401).header('www-authenticate', 'Bearer');
    return false;
  };

  app.get('/status', async (req, reply) => {
    if (!allowed(req, reply)) return errorBody('ERR_TOKEN_INVALID', 'the status page needs ?token=<METRICS_TOKEN>');
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', STATUS_CSP)
      .header('referrer-policy', 'no-referrer')
      .header('x-content-type-options', 'nosniff');
    return STATUS_PAGE;
  });

  app.get('/status.json', async (req, reply) => {
    if (!allowed(req, reply)) return errorBody('ERR_TOKEN_INVALID', 'status needs Authorization: Bearer <METRICS_TOKEN>');
    const { ready } = await readiness.report();
    // Host names and pids only for a caller that proved METRICS_TOKEN: without it the page is open.
    const authenticated = config.METRICS_TOKEN !== undefined;
    return buildSnapshot(await reader.read(), cluster?.read() ?? { peers: [], complete: true }, sampler.series(), turn, ready, authenticated);
  });
}
