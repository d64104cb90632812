/**
 * Hooks every WebSocket route shares: admission on the HTTP upgrade request (ws/admission.ts),
 * and the handler for errors on an open socket. Socket errors (invalid frames, bad UTF-8,
 * unexpected RSV bits, oversized frames, connection resets) are the client's doing: they are
 * counted and logged at debug without a stack, never at error level.
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { Errors } from '@sync-suite/shared';

/** The endpoint label of a request path, for metrics. */
export function endpointOf(url: string): string {
  if (url === '/signal' || url.startsWith('/signal?')) return 'signal';
  const first = /^\/([a-z-]+)/.exec(url)?.[1];
  return first === 'relay' || first === 'sealed' ? first : 'other';
}

/** Refuses upgrades over the instance cap or the address's budget with an HTTP status; no WebSocket is made. */
export function installAdmission(app: FastifyInstance): void {
  app.websocketServer.on('connection', (ws: WebSocket, req: IncomingMessage) => app.sync.admission.watch(ws, req));
  app.addHook('onRequest', async (req, reply) => {
    if (!req.ws) return;
    const { admission, metrics, log } = app.sync;
    const refused = admission.check(req, app.websocketServer.clients.size);
    if (!refused) return;
    const def = Errors[refused];
    const endpoint = endpointOf(req.url);
    metrics.rejectedMessages.inc({ endpoint, reason: refused === 'ERR_TOO_MANY_CONNECTIONS' ? 'too_many_connections' : 'too_many_upgrades' });
    log.debug({ endpoint, ip: req.ip, code: refused }, 'upgrade refused');
    return reply.code(def.httpStatus).header('connection', 'close').send({ error: def.code, message: def.message });
  });
}

/** ws reports what the peer did wrong (WS_ERR_* codes) or a socket failure (ECONNRESET, EPIPE). */
export function onSocketError(app: FastifyInstance, err: Error, socket: WebSocket, req: FastifyRequest): void {
  const code = (err as { code?: unknown }).code;
  const reason = typeof code === 'string' ? code.toLowerCase() : 'socket_error';
  const endpoint = endpointOf(req.url);
  const { metrics } = app.sync;
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') metrics.rejectedMessages.inc({ endpoint, reason: 'too_big' });
  else metrics.clientErrors.inc({ endpoint, reason });
  req.log.debug({ endpoint, reason, detail: err.message }, 'websocket error');
  // ws has already sent its close frame for a protocol error (closeTimeout bounds the wait);
  // anything else ends the socket here.
  if (socket.readyState === socket.OPEN) socket.terminate();
}
