/** TURN process: validate env, start TURN and its health/metrics endpoint, stop cleanly on SIGTERM/SIGINT. */
import { ConfigError, createLogger, loadEnvOrExit, stopOnSignals, turnConfigSchema } from '@sync-suite/shared/node';
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
  log.fatal({ err }, 'could not start');
  process.exit(1);
}
