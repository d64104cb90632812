/**
 * Starts the TURN server and then the server as real processes on loopback, with the
 * variables of deploy/.env.example (secrets filled in, ports ephemeral), the way the
 * compose file wires them: the server hands out TURN URLs and reads TURN metrics.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnvFile, type Env } from './compose-model.js';
import { runProcess, type RunningProcess } from '../../test/helpers/process.js';

export const SMOKE_SECRETS = {
  AUTH_SECRET: 'smoke-auth-secret-that-is-at-least-32-bytes',
  TURN_SECRET: 'smoke-turn-secret-0123456789abcdef',
  METRICS_TOKEN: 'smoke-metrics-token',
};

export interface Stack {
  serverUrl: string;
  turnPort: number;
  turnMetricsUrl: string;
  server: RunningProcess;
  turn: RunningProcess;
  /** SIGTERM both; their exit codes */
  stop(): Promise<{ server: number | null; turn: number | null }>;
}

export interface StackOptions {
  root: string;
  /** how to run an app: e.g. ['--import', 'tsx', 'apps/server/src/main.ts'] */
  args: (app: 'server' | 'turn') => string[];
  cwd: string;
  dataDir: string;
  /** extra variables for both processes, e.g. STORAGE=postgres */
  env?: Env;
}

/** .env.example with secrets filled in and everything bound to loopback on free ports. */
export function smokeEnv(root: string, dataDir: string): Env {
  return {
    ...parseEnvFile(readFileSync(join(root, 'deploy/.env.example'), 'utf8')),
    ...SMOKE_SECRETS,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: '0',
    DATA_DIR: dataDir,
    TURN_LISTEN_IP: '127.0.0.1',
    TURN_RELAY_IP: '127.0.0.1',
    TURN_PORT: '0',
    TURN_METRICS_HOST: '127.0.0.1',
    TURN_METRICS_PORT: '0',
  };
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  const env = { PATH: process.env['PATH'] ?? '', ...smokeEnv(opts.root, opts.dataDir), ...opts.env };
  const turn = runProcess(process.execPath, opts.args('turn'), env, { cwd: opts.cwd });
  let server: RunningProcess | undefined;
  try {
    const up = await turn.waitForLine((l) => typeof l['metricsPort'] === 'number' && typeof l['listen'] === 'string');
    const turnPort = Number(String(up['listen']).split(':').at(-1));
    const turnMetricsUrl = `http://127.0.0.1:${up['metricsPort'] as number}/metrics`;
    server = runProcess(process.execPath, opts.args('server'), { ...env, TURN_URLS: `turn:127.0.0.1:${turnPort}`, TURN_METRICS_URL: turnMetricsUrl }, { cwd: opts.cwd });
    const listening = await server.waitForLine((l) => /^Server listening at http:\/\/127\.0\.0\.1:\d+/.test(String(l['msg'])));
    const serverUrl = /http:\/\/127\.0\.0\.1:\d+/.exec(String(listening['msg']))?.[0] as string;
    const s = server;
    return {
      serverUrl,
      turnPort,
      turnMetricsUrl,
      server: s,
      turn,
      async stop() {
        const [serverExit, turnExit] = await Promise.all([s.stop(), turn.stop()]);
        return { server: serverExit.code, turn: turnExit.code };
      },
    };
  } catch (err) {
    await Promise.all([turn.stop(), server?.stop()]);
    throw err;
  }
}
