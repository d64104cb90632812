/** A storage engine that cannot start, as a StartupError naming the variable to fix. */
import { StartupError, describeUrl, withoutSecrets, type ServerConfig } from '@sync-suite/shared/node';

export function storageStartupError(config: Pick<ServerConfig, 'STORAGE' | 'DATA_DIR' | 'DATABASE_URL'>, err: unknown): StartupError {
  const e = (err ?? {}) as { code?: string; message?: string };
  const reason = e.message ?? String(err);
  if (config.STORAGE === 'postgres' && config.DATABASE_URL) {
    const url = config.DATABASE_URL;
    return new StartupError('DATABASE_URL', `cannot use PostgreSQL at ${describeUrl(url)}: ${withoutSecrets(reason, url)}`);
  }
  return new StartupError('DATA_DIR', `cannot open the SQLite database in ${config.DATA_DIR}: ${reason}`);
}
