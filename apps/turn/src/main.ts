/** TURN process: validate env, start TURN and the health/metrics endpoint, stop cleanly on SIGTERM/SIGINT. */
import { createLogger, createTurnMetrics, loadEnvOrExit, turnConfigSchema } from '@sync-suite/shared/node';
import { startHealthServer } from './health.js';

const config = loadEnvOrExit(turnConfigSchema);
const log = createLogger({ level: config.LOG_LEVEL, name: 'turn' });
const metrics = createTurnMetrics();
const health = await startHealthServer(metrics.registry, config.TURN_METRICS_HOST, config.TURN_METRICS_PORT, log);
log.info({ metricsPort: health.port }, 'turn health endpoint listening');

async function stop(signal: string): Promise<void> {
  log.info({ signal }, 'shutting down');
  await health.close();
  process.exit(0);
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
