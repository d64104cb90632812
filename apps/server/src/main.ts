/** Server process: validate env, build, listen, shut down gracefully on SIGTERM/SIGINT. */
import { StartupError, listenStartupError, loadEnvOrExit, serverConfigSchema, stopOnSignals, type Logger } from '@sync-suite/shared/node';
import { buildServer } from './app.js';

const config = loadEnvOrExit(serverConfigSchema);

/** A cause the operator can fix is one line on stderr, like a configuration error; anything else is logged in full. */
function failStartup(err: unknown, log?: Logger): never {
  const known = err instanceof StartupError ? err : listenStartupError(err, 'PORT', 'HOST');
  if (!known) log?.fatal({ err }, 'could not start');
  process.stderr.write(`${known ? known.message : `startup failed: ${err instanceof Error ? err.message : String(err)}`}\n`);
  process.exit(1);
}

const app = await buildServer(config).catch((err: unknown) => failStartup(err));

if (!config.AUTH_SECRET) {
  app.log.warn('AUTH_SECRET is not set: authentication is OFF, anyone can join any room (refused when NODE_ENV=production)');
}

stopOnSignals(app.log as Logger, () => app.close(), config.SHUTDOWN_TIMEOUT_MS);

try {
  await app.listen({ host: config.HOST, port: config.PORT });
} catch (err) {
  failStartup(err, app.log as Logger);
}
