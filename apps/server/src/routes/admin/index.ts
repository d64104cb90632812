/**
 * /admin/*: revocation and room administration for the app backend. Off (every path 404) unless
 * ADMIN_TOKEN is set; then every request needs `Authorization: Bearer <ADMIN_TOKEN>`, compared in
 * constant time. Each request and its outcome is logged (caller address, action, target; never a token).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorBody } from '@sync-suite/shared';
import { secretTokenMatches } from '../../auth/request-token.js';
import { revokeRoutes } from './revoke.js';
import { roomRoutes } from './rooms.js';

export async function adminRoutes(app: FastifyInstance): Promise<void> {
  const token = app.sync.config.ADMIN_TOKEN;
  if (!token) return;
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    if (secretTokenMatches(req, token)) return;
    app.sync.metrics.authFailures.inc({ endpoint: 'admin', reason: 'bad_admin_token' });
    app.sync.metrics.adminRequests.inc({ action: 'any', outcome: 'unauthorized' });
    req.log.warn({ admin: 'refused', ip: req.ip, url: req.url.split('?')[0] }, 'admin request refused: bad or missing admin token');
    return reply
      .code(401)
      .header('www-authenticate', 'Bearer')
      .send(errorBody('ERR_TOKEN_INVALID', 'admin API needs Authorization: Bearer <ADMIN_TOKEN>'));
  });
  await app.register(revokeRoutes);
  await app.register(roomRoutes);
}
