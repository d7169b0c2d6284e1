import type { Kysely } from 'kysely';

/**
 * ADE sync: which full fetch listed each device, so a fetch that resumes after a crash can still
 * tell at its end which devices Apple no longer lists (seen_at_apple alone can't: it also says
 * "ever seen at Apple", which the device status needs).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // The full fetch the token's cursor belongs to (kept across pages and restarts).
  await db.schema.alterTable('dep_tokens').addColumn('fetch_id', 'text').execute();
  // The last full fetch that listed the device.
  await db.schema.alterTable('dep_devices').addColumn('fetch_id', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('dep_devices').dropColumn('fetch_id').execute();
  await db.schema.alterTable('dep_tokens').dropColumn('fetch_id').execute();
}
