/** GET /healthz (liveness) and GET /readyz (storage, redis, ... and not shutting down). */
import type { FastifyInstance } from 'fastify';

/** Probes come every few seconds: their request logs would flood the log at info. */
const PROBE = { logLevel: 'warn' } as const;

export async function healthRoutes(app: FastifyInstance): Promise<void> {
  app.get('/healthz', PROBE, async () => ({ status: 'ok' }));

  app.get('/readyz', PROBE, async (_req, reply) => {
    const { ready, checks } = await app.sync.readiness.report();
    reply.code(ready ? 200 : 503);
    return { status: ready ? 'ready' : 'unavailable', checks };
  });
}
