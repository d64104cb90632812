/**
 * Start the real server in-process on an ephemeral port, with config from env-style overrides
 * (validated by the same schema as production). Close it when the test ends.
 */
import type { FastifyInstance } from 'fastify';
import { Writable } from 'node:stream';
import { buildServer } from '../../apps/server/src/app.js';
import { createRoomToken, type CreateRoomTokenOptions } from '@sync-suite/shared';
import { createLogger, parseEnv, serverConfigSchema, type ServerConfig } from '@sync-suite/shared/node';
import { PerTest } from './per-test.js';

export interface TestServer {
  app: FastifyInstance;
  config: ServerConfig;
  /** http://127.0.0.1:PORT */
  url: string;
  /** ws://127.0.0.1:PORT */
  wsUrl: string;
  port: number;
  /** every log line written so far, parsed */
  logs: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

export const TEST_SECRET = 'test-secret-that-is-at-least-32-bytes-long!!';

/** A room token that a server started with AUTH_SECRET: TEST_SECRET accepts; valid 600 s unless `opts` says otherwise. */
export function testToken(sub: string, rooms: string[], opts: Partial<Omit<CreateRoomTokenOptions, 'sub' | 'rooms'>> = {}): Promise<string> {
  return createRoomToken(TEST_SECRET, { sub, rooms, ttlSeconds: 600, ...opts });
}

export async function startServer(env: Record<string, string | undefined> = {}): Promise<TestServer> {
  const config = parseEnv(serverConfigSchema, {
    HOST: '127.0.0.1',
    PORT: '0',
    STORAGE: 'memory',
    LOG_LEVEL: 'info',
    ...env,
  });
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const app = await buildServer(config, { logger: createLogger({ level: config.LOG_LEVEL, destination: sink }) });
  await app.listen({ host: config.HOST, port: config.PORT });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  const port = address.port;
  let closed = false;
  return {
    app,
    config,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    port,
    logs,
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
    },
  };
}

/**
 * `n` in-process instances with the same `env` (one PostgreSQL schema and one Redis prefix make
 * them a cluster), started one after another; if one fails, those already up are closed.
 */
export async function startServers(n: number, env: Record<string, string | undefined>): Promise<TestServer[]> {
  const servers: TestServer[] = [];
  try {
    for (let i = 0; i < n; i++) servers.push(await startServer(env));
  } catch (err) {
    await Promise.all(servers.map((s) => s.close()));
    throw err;
  }
  return servers;
}

/** The server one test starts, and what the test opens on it (see PerTest). */
export type ServerPerTest = PerTest<Parameters<typeof startServer>, TestServer>;

/** For a test file: `const scope = serverPerTest(); afterEach(() => scope.close());` */
export function serverPerTest(): ServerPerTest {
  return new PerTest(startServer);
}
