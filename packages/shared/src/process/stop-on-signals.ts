/**
 * Both processes stop the same way: on the first SIGTERM or SIGINT, run `stop` once and exit
 * 0, or exit 1 if it fails or (when a budget is given) takes longer than `timeoutMs`.
 */
import type { Logger } from 'pino';

export function stopOnSignals(log: Logger, stop: () => Promise<void>, timeoutMs?: number): void {
  let stopping = false;
  const onSignal = async (signal: NodeJS.Signals): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    if (timeoutMs !== undefined) {
      setTimeout(() => {
        log.error({ timeoutMs }, 'shutdown timed out');
        process.exit(1);
      }, timeoutMs).unref();
    }
    try {
      await stop();
      log.info('stopped');
      process.exit(0);
    } catch (err) {
      log.error({ err }, 'shutdown failed');
      process.exit(1);
    }
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void onSignal(signal));
}
