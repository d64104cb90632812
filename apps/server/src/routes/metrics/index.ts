/** GET /metrics in Prometheus text format, behind METRICS_TOKEN when it is set. */
import type { FastifyInstance } from 'fastify';
import { errorBody } from '@sync-suite/shared';
import { secretTokenMatches } from '../../auth/request-token.js';

export async function metricsRoutes(app: FastifyInstance): Promise<void> {
  const { registry } = app.sync.metrics;
  app.get('/metrics', async (req, reply) => {
    if (!secretTokenMatches(req, app.sync.config.METRICS_TOKEN)) {
      app.sync.metrics.authFailures.inc({ endpoint: 'metrics', reason: 'bad_metrics_token' });
      reply.code(401).header('www-authenticate', 'Bearer');
      return errorBody('ERR_TOKEN_INVALID', 'metrics need Authorization: Bearer <METRICS_TOKEN>');
    }
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
}
