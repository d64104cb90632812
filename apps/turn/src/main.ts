/** TURN process: validate env, start TURN and its health/metrics endpoint, stop cleanly on SIGTERM/SIGINT. */
import { ConfigError, createLogger, listenStartupError, loadEnvOrExit, stopOnSignals, turnConfigSchema } from '@sync-suite/shared/node';
import { createTurnServer, type TurnServer } from './server.js';

const config = loadEnvOrExit(turnConfigSchema);
const log = createLogger({ level: config.LOG_LEVEL, name: 'turn' });

let turn: TurnServer;
try {
  turn = createTurnServer(config, { logger: log });
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
}

stopOnSignals(log, () => turn.stop());

try {
  await turn.start();
} catch (err) {
  // UDP sockets fail in bind (the STUN/TURN listener), TCP servers in listen (health and metrics).
  const udp = (err as { syscall?: string }).syscall === 'bind';
  const known = udp ? listenStartupError(err, 'TURN_PORT', 'TURN_LISTEN_IP') : listenStartupError(err, 'TURN_METRICS_PORT', 'TURN_METRICS_HOST');
  if (!known) log.fatal({ err }, 'could not start');
  process.stderr.write(`${known ? known.message : 'startup failed: see the log above'}\n`);
  process.exit(1);
}
