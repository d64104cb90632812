/** Server process: validate env, build, listen, shut down gracefully on SIGTERM/SIGINT. */
import { StartupError, listenStartupError, loadEnvOrExit, serverConfigSchema, stopOnSignals, type Logger } from '@sync-suite/shared/node';
import { buildServer } from './app.js';
import { warmUp } from './lifecycle/warm-up.js';

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

let stopping = false;
stopOnSignals(
  app.log as Logger,
  () => {
    stopping = true;
    return app.close();
  },
  config.SHUTDOWN_TIMEOUT_MS,
);

if (config.WARM_UP_AT_START) {
  const warm = await warmUp(app, config);
  if (warm.done) app.log.info({ ms: warm.ms }, 'warmed up: one relay connection to itself before listening');
  else if (stopping) app.log.info({ reason: warm.reason }, 'warm-up ended by the shutdown');
  else if (warm.failed) app.log.warn({ reason: warm.reason }, 'warm-up given up; the first connections compile what it would have');
  else app.log.info({ reason: warm.reason }, 'no warm-up');
}

// A signal during the warm-up: the shutdown under way ends the process, and the port never opens
// (Fastify would still listen after its close has begun).
if (!stopping) {
  try {
    await app.listen({ host: config.HOST, port: config.PORT });
  } catch (err) {
    failStartup(err, app.log as Logger);
  }
}
