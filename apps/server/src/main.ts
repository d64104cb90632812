/** Server process: validate env, build, listen, shut down gracefully on SIGTERM/SIGINT. */
import { loadEnvOrExit, serverConfigSchema } from '@sync-suite/shared/node';
import { buildServer } from './app.js';

const config = loadEnvOrExit(serverConfigSchema);
const app = await buildServer(config);

if (!config.AUTH_SECRET) {
  app.log.warn('AUTH_SECRET is not set: authentication is OFF, anyone can join any room (refused when NODE_ENV=production)');
}

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  app.log.info({ signal }, 'shutting down');
  const timer = setTimeout(() => {
    app.log.error({ timeoutMs: config.SHUTDOWN_TIMEOUT_MS }, 'shutdown timed out');
    process.exit(1);
  }, config.SHUTDOWN_TIMEOUT_MS);
  timer.unref();
  try {
    await app.close();
    app.log.info('stopped');
    process.exit(0);
  } catch (err) {
    app.log.error({ err }, 'shutdown failed');
    process.exit(1);
  }
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));

try {
  await app.listen({ host: config.HOST, port: config.PORT });
} catch (err) {
  app.log.fatal({ err }, 'could not listen');
  process.exit(1);
}
