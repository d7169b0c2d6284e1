import crypto from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createStore } from '../../src/store/db.js';
import { pgUrl, testDialect } from '../helpers/store.js';

/**
 * Deployments (and test runs) sharing one PostgreSQL database in different schemas: each migrates
 * its own schema, whatever the others hold or are doing at the same moment.
 */
describe.runIf(testDialect() === 'postgres')('PostgreSQL schemas side by side', () => {
  const dropSchemas = async (schemas: string[]) => {
    const client = new pg.Client({ connectionString: pgUrl() });
    await client.connect();
    try {
      for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
    } finally {
      await client.end();
    }
  };

  it('migrates while other schemas come and go in the same database', async () => {
    const schemas = Array.from({ length: 3 }, () => `mig_${crypto.randomBytes(5).toString('hex')}`);
    const stores = schemas.map((pgSchema) => createStore({ databaseUrl: pgUrl(), pgSchema, poolSize: 2 }));
    const churn = new pg.Client({ connectionString: pgUrl() });
    await churn.connect();
    let stop = false;
    // Another deployment's (or test run's) schemas, created with a serial column and dropped again, over and over.
    const churning = (async () => {
      for (let i = 0; !stop; i++) {
        const other = `churn_${crypto.randomBytes(4).toString('hex')}`;
        await churn.query(`CREATE SCHEMA ${other}; CREATE TABLE ${other}.t (id serial primary key, v text)`);
        await churn.query(`DROP SCHEMA ${other} CASCADE`);
      }
    })();
    try {
      for (let round = 0; round < 3; round++) await Promise.all(stores.map((s) => s.migrate()));
    } finally {
      stop = true;
      await churning;
      await churn.end();
      await Promise.all(stores.map((s) => s.close()));
      await dropSchemas(schemas);
    }
  });

  it('migrates fresh schemas at once, and again while the others exist, each with its own migration tables', async () => {
    const schemas = Array.from({ length: 4 }, () => `mig_${crypto.randomBytes(5).toString('hex')}`);
    const stores = schemas.map((pgSchema) => createStore({ databaseUrl: pgUrl(), pgSchema, poolSize: 2 }));
    try {
      const applied = await Promise.all(stores.map((s) => s.migrate()));
      for (const names of applied) expect(names.length).toBeGreaterThan(10);
      // A second run finds its own tables up to date.
      expect(await Promise.all(stores.map((s) => s.migrate()))).toEqual(schemas.map(() => []));
      for (const [i, s] of stores.entries()) {
        const rows = await s.db.selectFrom('kysely_migration' as never).select('name' as never).execute();
        expect(rows).toHaveLength(applied[i]!.length);
      }
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await dropSchemas(schemas);
    }
  });
});
