/** Server process: validate env, build, listen, shut down gracefully on SIGTERM/SIGINT. */
import { loadEnvOrExit, serverConfigSchema, stopOnSignals, type Logger } from '@sync-suite/shared/node';
import { buildServer } from './app.js';

const config = loadEnvOrExit(serverConfigSchema);
const app = await buildServer(config);

if (!config.AUTH_SECRET) {
  app.log.warn('AUTH_SECRET is not set: authentication is OFF, anyone can join any room (refused when NODE_ENV=production)');
}

stopOnSignals(app.log as Logger, () => app.close(), config.SHUTDOWN_TIMEOUT_MS);

try {
  await app.listen({ host: config.HOST, port: config.PORT });
} catch (err) {
  app.log.fatal({ err }, 'could not listen');
  process.exit(1);
}
