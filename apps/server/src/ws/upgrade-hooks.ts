/**
 * Hooks every WebSocket route shares: admission on the HTTP upgrade request (ws/admission.ts),
 * and the handler for errors on an open socket. Socket errors (invalid frames, bad UTF-8,
 * unexpected RSV bits, oversized frames, connection resets) are the client's doing: they are
 * counted and logged at debug without a stack, never at error level.
 */
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import { Errors } from '@sync-suite/shared';
import { dropCachedPeerAddress, dropClearedTimer, httpMessageOf, tcpSocket } from './ws-internals.js';

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
    const refused = admission.check(req);
    if (!refused) return;
    const def = Errors[refused];
    const endpoint = endpointOf(req.url);
    metrics.rejectedMessages.inc({ endpoint, reason: refused === 'ERR_TOO_MANY_CONNECTIONS' ? 'too_many_connections' : 'too_many_upgrades' });
    log.debug({ endpoint, ip: req.ip, code: refused }, 'upgrade refused');
    return reply.code(def.httpStatus).header('connection', 'close').send({ error: def.code, message: def.message });
  });
}

/**
 * Lets the upgrade request go once its WebSocket is open (call first thing in a WebSocket route
 * handler, after copying what the connection needs from the request). Otherwise each socket keeps
 * the request alive for its whole life (bench/memory.ts): the net.Socket holds the ServerResponse
 * @fastify/websocket assigned to it (and that holds the IncomingMessage with its headers and URL),
 * and @fastify/websocket's error listener holds the Fastify request and reply. Socket errors go to
 * onSocketError with the endpoint alone.
 */
export function releaseUpgrade(app: FastifyInstance, socket: WebSocket, endpoint: string): void {
  const raw = tcpSocket(socket);
  if (raw) {
    const res = httpMessageOf(raw);
    if (res instanceof ServerResponse && res.socket === raw) res.detachSocket(raw);
    // The HTTP connection timeout was armed on the socket with a bound callback; ws turned it off
    // (setTimeout(0)) but node keeps the cleared timer on the socket.
    dropClearedTimer(raw);
    // The peer's address, cached on the socket when admission read the upgrade's address (an
    // object and its string, about 90 B for the socket's life): node reads it again if asked.
    dropCachedPeerAddress(raw);
  }
  // Ours goes on before theirs comes off: removing an event's last listener deletes the key from
  // ws's listener table, which turns it into a slower, larger dictionary for the socket's life.
  const theirs = socket.listeners('error');
  socket.on('error', errorListener(app, endpoint));
  for (const listener of theirs) socket.off('error', listener as (err: Error) => void);
}

/** One 'error' listener per app and endpoint (`this` is the socket), not a closure per socket. */
const errorListeners = new WeakMap<FastifyInstance, Map<string, (this: WebSocket, err: Error) => void>>();
function errorListener(app: FastifyInstance, endpoint: string): (this: WebSocket, err: Error) => void {
  let byEndpoint = errorListeners.get(app);
  if (!byEndpoint) errorListeners.set(app, (byEndpoint = new Map()));
  let listener = byEndpoint.get(endpoint);
  if (!listener) {
    listener = function (this: WebSocket, err: Error): void {
      onSocketError(app, err, this, endpoint);
    };
    byEndpoint.set(endpoint, listener);
  }
  return listener;
}

/** ws reports what the peer did wrong (WS_ERR_* codes) or a socket failure (ECONNRESET, EPIPE). */
export function onSocketError(app: FastifyInstance, err: Error, socket: WebSocket, endpoint: string): void {
  const code = (err as { code?: unknown }).code;
  const reason = typeof code === 'string' ? code.toLowerCase() : 'socket_error';
  const { metrics } = app.sync;
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') metrics.rejectedMessages.inc({ endpoint, reason: 'too_big' });
  else metrics.clientErrors.inc({ endpoint, reason });
  app.sync.log.debug({ endpoint, reason, detail: err.message }, 'websocket error');
  // ws has already sent its close frame for a protocol error (closeTimeout bounds the wait);
  // anything else ends the socket here.
  if (socket.readyState === socket.OPEN) socket.terminate();
}
