/** GET /metrics in Prometheus text format, behind METRICS_TOKEN when it is set. */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { sameSecret } from '../../auth/same-secret.js';

export function bearerMatches(req: FastifyRequest, expected: string | undefined): boolean {
  if (!expected) return true;
  const header = req.headers.authorization;
  const given = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7) : '';
  return sameSecret(given, expected);
}

export async function metricsRoutes(app: FastifyInstance): Promise<void> {
  const { registry } = app.sync.metrics;
  app.get('/metrics', async (req, reply) => {
    if (!bearerMatches(req, app.sync.config.METRICS_TOKEN)) {
      app.sync.metrics.authFailures.inc({ endpoint: 'metrics', reason: 'bad_metrics_token' });
      reply.code(401).header('www-authenticate', 'Bearer');
      return { error: 'ERR_TOKEN_INVALID', message: 'metrics need Authorization: Bearer <METRICS_TOKEN>' };
    }
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
}
