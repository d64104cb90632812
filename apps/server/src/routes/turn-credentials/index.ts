/**
 * GET /turn-credentials: ICE servers for a caller holding a valid room token (any room: TURN
 * relays opaque, end-to-end encrypted bytes). TURN entries carry TURN REST API credentials
 * (`<expiry>:<sub>`, HMAC-SHA1 of TURN_SECRET); without TURN_SECRET only STUN is offered.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Errors, errorBody } from '@sync-suite/shared';
import { createTurnCredentials, turnUserId } from '@sync-suite/shared/node';
import { tokenFromRequest } from '../../auth/authenticate.js';
import { iceServersFor } from './ice-servers.js';
import { PerSubjectLimit } from './rate-limit.js';

export async function turnCredentialsRoutes(app: FastifyInstance): Promise<void> {
  const { config, auth } = app.sync;
  const limit = new PerSubjectLimit(config.TURN_CREDENTIALS_PER_MINUTE);
  app.get('/turn-credentials', async (req: FastifyRequest, reply) => {
    reply.header('cache-control', 'no-store');
    const result = await auth.verify(tokenFromRequest(req), 'turn');
    if (!result.ok) {
      req.log.info({ reason: result.reason }, 'turn credentials refused');
      const error = result.reason === 'missing' ? 'ERR_TOKEN_MISSING' : 'ERR_TOKEN_INVALID';
      return reply.code(Errors[error].httpStatus).send(errorBody(error));
    }
    const wait = limit.take(result.claims.sub);
    if (wait > 0) {
      req.log.info({ sub: result.claims.sub }, 'turn credentials rate limited');
      const { httpStatus, message } = Errors.ERR_RATE_LIMITED;
      return reply.code(httpStatus).header('retry-after', String(wait)).send({ error: 'ERR_RATE_LIMITED', message });
    }
    const ttl = config.TURN_TTL_SECONDS;
    const credentials = config.TURN_SECRET ? createTurnCredentials(config.TURN_SECRET, turnUserId(result.claims.sub), ttl) : undefined;
    return { iceServers: iceServersFor(config.TURN_URLS, req.hostname, credentials), ttl };
  });
}
