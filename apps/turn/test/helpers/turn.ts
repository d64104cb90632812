/** Start createTurnServer in-process on ephemeral ports, logs captured, REST credentials at hand. */
import { createSocket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { createLogger, createTurnCredentials, parseEnv, turnConfigSchema } from '@sync-suite/shared/node';
import { createTurnServer, type TurnServer } from '../../src/server.js';
import { PerTest } from '../../../../test/helpers/per-test.js';
import { scrapeMetric } from '../../../../test/helpers/prometheus.js';
import { StunClient } from './stun-client.js';

export const SECRET = 'turn-test-secret-0123456789abcdef';

export interface TestTurn {
  turn: TurnServer;
  logs: Array<Record<string, unknown>>;
  /** emits 'log' for every line */
  events: EventEmitter;
  /** raw log text, to check that no password is ever written */
  text(): string;
  creds(sub?: string, ttl?: number, secret?: string): { username: string; credential: string };
  /** `name` or `name{label="value"}` from /metrics (see test/helpers/prometheus.ts): throws for a metric not exposed */
  metric(selector: string): Promise<number>;
  close(): Promise<void>;
}

export async function startTurn(env: Record<string, string> = {}, opts: { logIntervalMs?: number } = {}): Promise<TestTurn> {
  const config = parseEnv(turnConfigSchema, {
    TURN_SECRET: SECRET,
    TURN_LISTEN_IP: '127.0.0.1',
    TURN_PORT: '0',
    TURN_METRICS_HOST: '127.0.0.1',
    TURN_METRICS_PORT: '0',
    ...env,
  });
  const logs: Array<Record<string, unknown>> = [];
  const events = new EventEmitter();
  let raw = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      raw += chunk.toString();
      for (const line of chunk.toString().split('\n')) {
        if (!line) continue;
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        events.emit('log', entry);
      }
      cb();
    },
  });
  const turn = createTurnServer(config, { ...opts, logger: createLogger({ level: 'debug', destination: sink }) });
  await turn.start();
  return {
    turn, logs, events,
    text: () => raw,
    creds: (sub = 'alice', ttl = 600, secret = SECRET) => createTurnCredentials(secret, sub, ttl),
    metric: (selector) => scrapeMetric(`http://127.0.0.1:${turn.metricsPort}/metrics`, selector),
    close: () => turn.stop(),
  };
}

/** The TURN server one test starts, and what the test opens on it (see PerTest). */
export type TurnPerTest = PerTest<Parameters<typeof startTurn>, TestTurn>;

/** For a test file: `const scope = turnPerTest(); afterEach(() => scope.close());` */
export function turnPerTest(): TurnPerTest {
  return new PerTest(startTurn);
}

/** A STUN/TURN client of this test's TURN server with `creds`, closed when the test ends. */
export async function openStunClient(scope: TurnPerTest, creds: { username: string; credential: string }): Promise<StunClient> {
  const c = await StunClient.open(scope.current.turn.port, creds.username, creds.credential);
  scope.track(c);
  return c;
}

/** Resolve on the first log line matching `predicate`, or fail after `timeoutMs`. */
export function waitForLog(t: TestTurn, predicate: (e: Record<string, unknown>) => boolean, timeoutMs = 5000): Promise<Record<string, unknown>> {
  const found = t.logs.find(predicate);
  if (found) return Promise.resolve(found);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      t.events.off('log', onLog);
      reject(new Error('log line not seen'));
    }, timeoutMs);
    const onLog = (e: Record<string, unknown>) => {
      if (!predicate(e)) return;
      clearTimeout(timer);
      t.events.off('log', onLog);
      resolve(e);
    };
    t.events.on('log', onLog);
  });
}

/** Whether a UDP port on 127.0.0.1 is free (a relay socket or reservation released it). */
export async function canBind(port: number): Promise<boolean> {
  const s = createSocket('udp4');
  const ok = await new Promise<boolean>((resolve) => {
    s.once('error', () => resolve(false));
    s.bind(port, '127.0.0.1', () => resolve(true));
  });
  s.close();
  return ok;
}
