/**
 * /admin/*: revocation and room administration for the app backend. Off (every path 404) unless
 * ADMIN_TOKEN is set; then every request needs `Authorization: Bearer <ADMIN_TOKEN>`, compared in
 * constant time: without it any /admin/* path, known or not, is a 401; with it an unknown path is
 * a 404. Each request and its outcome is logged (caller address, action, target; never a token);
 * refused requests within a log budget (REFUSED_LINES_PER_MINUTE, then one count a minute), as
 * anyone can send them.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorBody } from '@sync-suite/shared';
import { LogBudget } from '@sync-suite/shared/node';
import { secretTokenMatches } from '../../auth/request-token.js';
import { revokeRoutes } from './revoke.js';
import { roomRoutes } from './rooms.js';

const REFUSED = 'admin request refused: bad or missing admin token';
/** refused-request lines written per minute; the rest are counted in one line a minute */
export const REFUSED_LINES_PER_MINUTE = 20;

export async function adminRoutes(app: FastifyInstance, opts: { logIntervalMs?: number } = {}): Promise<void> {
  const token = app.sync.config.ADMIN_TOKEN;
  if (!token) return;
  const budget = new LogBudget<typeof REFUSED>(app.log.child({ component: 'admin' }), REFUSED_LINES_PER_MINUTE, opts.logIntervalMs ?? 60_000);
  app.addHook('onClose', async () => budget.close());
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    if (secretTokenMatches(req, token)) return;
    app.sync.metrics.authFailures.inc({ endpoint: 'admin', reason: 'bad_admin_token' });
    app.sync.metrics.adminRequests.inc({ action: 'any', outcome: 'unauthorized' });
    budget.warn(REFUSED, { admin: 'refused', ip: req.ip, url: req.url.split('?')[0]?.slice(0, 256) });
    return reply
      .code(401)
      .header('www-authenticate', 'Bearer')
      .send(errorBody('ERR_TOKEN_INVALID', 'admin API needs Authorization: Bearer <ADMIN_TOKEN>'));
  });
  await app.register(revokeRoutes);
  await app.register(roomRoutes);
  // Any other /admin path: a not-found handler for the prefix, in this plugin's context, so the
  // token check above answers first (a wildcard route would do the same but is not a route).
  await app.register(
    async (admin) => {
      admin.setNotFoundHandler((req, reply) => reply.code(404).send({ message: `Route ${req.method}:${req.url.split('?')[0]?.slice(0, 256)} not found`, error: 'Not Found', statusCode: 404 }));
    },
    { prefix: '/admin' },
  );
}
