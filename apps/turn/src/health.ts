/**
 * The TURN server's operator endpoint: `GET /healthz` and `GET /metrics` (Prometheus text)
 * on TURN_METRICS_PORT. Plain node:http: two routes do not need a framework. With METRICS_TOKEN,
 * /metrics needs `Authorization: Bearer <METRICS_TOKEN>` (as the server's: apps/server/src/routes/metrics/index.ts);
 * /healthz stays open for health checks.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { sameSecret, type Logger } from '@sync-suite/shared/node';

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startHealthServer(
  registry: Registry,
  host: string,
  port: number,
  log: Logger,
  /** run before each scrape (counters kept outside prom-client are flushed into it) */
  beforeScrape: () => void = () => {},
  /** METRICS_TOKEN: when set, /metrics needs it as a bearer token */
  token?: string,
): Promise<HealthServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'ok' }));
      return;
    }
    if (req.method === 'GET' && path === '/metrics') {
      if (!bearerMatches(req.headers.authorization, token)) {
        res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' });
        res.end('{"error":"metrics need Authorization: Bearer <METRICS_TOKEN>"}');
        return;
      }
      beforeScrape();
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        (err: unknown) => {
          log.error({ err }, 'metrics collection failed');
          res.writeHead(500).end();
        },
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
  });
  await listen(server, host, port);
  return { port: (server.address() as AddressInfo).port, close: () => closeServer(server) };
}

/** True without a token; else the bearer token must be it (constant-time compare). */
function bearerMatches(header: string | undefined, token: string | undefined): boolean {
  if (!token) return true;
  if (!header?.startsWith('Bearer ')) return false;
  return sameSecret(header.slice(7).trim(), token);
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}
