import { defineConfig } from 'vitest/config';

/**
 * The whole suite runs twice: against embedded SQLite and against PostgreSQL.
 * The PostgreSQL leg uses DATABASE_URL when set, else a throwaway cluster started by
 * test/helpers/pg-global-setup.ts (initdb/pg_ctl in a temporary directory on a free port).
 */
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
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
