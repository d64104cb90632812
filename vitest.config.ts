import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    // A throwaway PostgreSQL and Redis for the run: TEST_DATABASE_URL, TEST_REDIS_URL.
    globalSetup: ['test/global-setup.ts'],
    // forks: native WebRTC and SQLite addons are not safe in worker threads.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: true,
    maxWorkers: 2,
  },
});
