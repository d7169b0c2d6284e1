import type { Kysely } from 'kysely';

/**
 * The admin API's per-credential rate limit, counted in the store so every node sharing it agrees:
 * one row per key (principal, or address before authentication), the window it counts in and how
 * many requests fell in that window.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('rate_limit_counters')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('window_started_at', 'text', (c) => c.notNull())
    .addColumn('count', 'integer', (c) => c.notNull())
    .execute();
  // Finished windows are swept by age.
  await db.schema.createIndex('rate_limit_counters_window').on('rate_limit_counters').column('window_started_at').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('rate_limit_counters').ifExists().execute();
}
