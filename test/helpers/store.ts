import crypto from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { createStore, type Store } from '../../src/store/db.js';

export type TestDialect = 'sqlite' | 'postgres';

export const testDialect = (): TestDialect => (process.env.OPENENROLL_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite');

/** The PostgreSQL URL of this test run (throwaway cluster or DATABASE_URL). */
export function pgUrl(): string {
  return inject('pgUrl');
}

/**
 * A fresh, migrated store for one test: in-memory SQLite, or its own PostgreSQL schema
 * (dropped again on close), so test files run in parallel without seeing each other.
 */
export async function createTestStore(): Promise<Store & { pgSchema?: string | undefined }> {
  if (testDialect() === 'sqlite') {
    const store = createStore({ sqliteFile: ':memory:' });
    await store.migrate();
    return store;
  }
  const url = pgUrl();
  const schema = `t_${crypto.randomBytes(6).toString('hex')}`;
  const store = createStore({ databaseUrl: url, pgSchema: schema, poolSize: 5 });
  await store.migrate();
  return {
    ...store,
    pgSchema: schema,
    async close() {
      await store.close();
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}
