/**
 * vitest globalSetup: a throwaway PostgreSQL and Redis for this test run, on free ports,
 * handed to every test file as TEST_DATABASE_URL and TEST_REDIS_URL (the test workers inherit
 * this process's environment). Either variable already set: that service is used instead and
 * nothing is started for it.
 */
import { startPostgres, startRedis, type Service } from './helpers/services.js';

export default async function setup(): Promise<() => Promise<void>> {
  const started: Service[] = [];
  const stopAll = async (): Promise<void> => {
    for (const s of started.splice(0).reverse()) await s.stop();
  };
  try {
    if (!process.env['TEST_DATABASE_URL']) {
      const pg = await startPostgres();
      started.push(pg);
      process.env['TEST_DATABASE_URL'] = pg.url;
    }
    if (!process.env['TEST_REDIS_URL']) {
      const redis = await startRedis();
      started.push(redis);
      process.env['TEST_REDIS_URL'] = redis.url;
    }
  } catch (err) {
    await stopAll();
    throw new Error(`test services: ${(err as Error).message} (or run \`npm run test:setup\`)`);
  }
  return stopAll;
}
