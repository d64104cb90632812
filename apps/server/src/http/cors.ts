/**
 * CORS for the plain-HTTP endpoints that browser apps on another origin call
 * (/turn-credentials, /healthz, /readyz). Tokens travel in `Authorization`, never in
 * cookies, so no credentials mode is needed; WebSockets are not subject to CORS.
 */
import type { FastifyInstance } from 'fastify';

const CORS_PATHS = new Set(['/turn-credentials', '/healthz', '/readyz']);

/** Hooks on the root instance so that every route in CORS_PATHS gets the headers. */
export function installCors(app: FastifyInstance, origins: readonly string[]): void {
  const allowed = (origin: string): string | undefined => {
    if (origins.includes('*')) return '*';
    return origins.includes(origin) ? origin : undefined;
  };

  app.addHook('onRequest', async (req, reply) => {
    const origin = req.headers.origin;
    if (!origin || !CORS_PATHS.has(req.routeOptions.url ?? '')) return;
    const allow = allowed(origin);
    if (!allow) return;
    reply.header('access-control-allow-origin', allow);
    if (allow !== '*') reply.header('vary', 'Origin');
  });

  for (const path of CORS_PATHS) {
    app.options(path, async (_req, reply) => {
      reply
        .header('access-control-allow-methods', 'GET')
        .header('access-control-allow-headers', 'authorization')
        .header('access-control-max-age', '600')
        .code(204);
      return reply.send();
    });
  }
}
