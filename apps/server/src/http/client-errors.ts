/**
 * What clients get wrong on plain HTTP is theirs, not the server's: malformed requests, request
 * and header timeouts, 4xx errors from routes are counted and logged at debug or info without a
 * stack trace. Only 5xx errors are logged at error level, with their stack.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance } from 'fastify';

const LABELS: Record<string, [number, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'timeout'],
  HPE_HEADER_OVERFLOW: [431, 'header_overflow'],
};

/** Fastify's clientErrorHandler option: answers like Fastify's own, counts instead of logging. */
export function clientErrorHandler(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason] = LABELS[err.code ?? ''] ?? [400, 'bad_request'];
  this.sync?.metrics.clientErrors.inc({ endpoint: 'http', reason });
  this.log.debug({ reason, code: err.code }, 'http client error');
  const body = JSON.stringify({ error: STATUS_CODES[status], message: reason, statusCode: status });
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy();
}

/** Root error handler: same reply shape as Fastify's, 4xx without a stack in the log. */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) req.log.error({ err }, 'request failed');
    else req.log.info({ status, code: err.code, detail: err.message }, 'request refused');
    const message = status >= 500 ? 'internal error' : err.message;
    return reply.code(status).send({ statusCode: status, ...(err.code ? { code: err.code } : {}), error: STATUS_CODES[status], message });
  });
}
