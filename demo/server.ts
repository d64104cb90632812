/**
 * `npm run demo`: the sync server with the demo conversation view served from the same origin
 * (so the page reaches /turn-credentials, /signal and /relay without CORS). Open
 * http://127.0.0.1:4455/?name=ada in one browser and ?name=bob in another (or a second
 * origin such as http://localhost:4455 — tabs of one origin sync through BroadcastChannel).
 *
 * The demo mints room tokens for anyone who asks (GET /demo/token): a real app issues them from
 * its own backend after logging the user in. Env: DEMO_PORT (4455), DEMO_HOST (127.0.0.1), and
 * the server's own variables (STORAGE defaults to memory here).
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createRoomToken } from '@sync-suite/shared';
import { createLogger, parseEnv, serverConfigSchema, stopOnSignals } from '@sync-suite/shared/node';
import { buildServer } from '../apps/server/src/app.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));

async function bundle(): Promise<string> {
  const result = await build({
    entryPoints: [`${HERE}src/app.ts`],
    bundle: true,
    // the workspace's @sync-suite/client from its TypeScript source (packages/client/package.json)
    conditions: ['@sync-suite/source'],
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    minify: true,
    define: { 'process.env.NODE_ENV': '"production"', global: 'globalThis' },
    logLevel: 'silent',
  });
  const out = result.outputFiles[0];
  if (!out) throw new Error('esbuild produced no output');
  return out.text;
}

export interface Demo {
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

export async function startDemo(opts: { port?: number; host?: string; env?: Record<string, string | undefined> } = {}): Promise<Demo> {
  const secret = randomBytes(32).toString('hex');
  const config = parseEnv(serverConfigSchema, { STORAGE: 'memory', LOG_LEVEL: 'warn', ...opts.env, HOST: opts.host ?? '127.0.0.1', PORT: String(opts.port ?? 4455), AUTH_SECRET: secret });
  const app = await buildServer(config, { logger: createLogger({ level: config.LOG_LEVEL }) });
  const [html, js] = await Promise.all([readFile(`${HERE}index.html`, 'utf8'), bundle()]);
  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(html));
  app.get('/demo.js', async (_req, reply) => reply.type('text/javascript; charset=utf-8').send(js));
  app.get('/demo/token', async (req, reply) => {
    const { sub, room } = req.query as { sub?: string; room?: string };
    if (!sub || !room) return reply.code(400).send({ error: 'sub and room are required' });
    return { token: await createRoomToken(secret, { sub: sub.slice(0, 64), rooms: [room], ttlSeconds: 3600 }) };
  });
  await app.listen({ host: config.HOST, port: config.PORT });
  const address = app.server.address();
  const port = address && typeof address === 'object' ? address.port : config.PORT;
  return { app, url: `http://${config.HOST}:${port}`, close: () => app.close() };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const port = Number(process.env['DEMO_PORT'] ?? 4455);
  const demo = await startDemo({ port, host: process.env['DEMO_HOST'] ?? '127.0.0.1', env: process.env });
  demo.app.log.warn(`demo at ${demo.url}/?name=ada (and ?name=bob in another browser)`);
  stopOnSignals(demo.app.log as Logger, demo.close);
}
