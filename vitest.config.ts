import { defineConfig } from 'vitest/config';

/**
 * The whole suite runs twice: against embedded SQLite and against PostgreSQL.
 * The PostgreSQL leg uses DATABASE_URL when set, else a throwaway cluster started by
 * test/helpers/pg-global-setup.ts (initdb/pg_ctl in a temporary directory on a free port).
 */
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Vitest's default on a 2-core machine is one worker; much of the suite waits on PostgreSQL,
    // spawned servers and simulators, so two keep both cores busy.
    maxWorkers: Number(process.env.OPENENROLL_TEST_WORKERS) || 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: { name: 'sqlite', env: { OPENENROLL_TEST_STORE: 'sqlite' } },
      },
      {
        extends: true,
        test: {
          name: 'postgres',
          env: { OPENENROLL_TEST_STORE: 'postgres' },
          globalSetup: ['test/helpers/pg-global-setup.ts'],
        },
      },
    ],
  },
});
