/** The services of this test run (started by test/global-setup.ts, or given in the environment). */

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with vitest (test/global-setup.ts starts the services), or set it`);
  return value;
}

/** postgres:// URL of database `test`, user postgres (superuser), trust auth */
export const testDatabaseUrl = (): string => required('TEST_DATABASE_URL');
/** redis:// URL of a Redis with nothing else on it but other test files */
export const testRedisUrl = (): string => required('TEST_REDIS_URL');
