import { sql, type Kysely } from 'kysely';

/**
 * The push job's work list: queue rows not yet pushed. The queue keeps every command's history, so
 * without this the job read the whole table each run. Partial: a row leaves it once pushed or fetched.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createIndex('mdm_command_queue_unpushed')
    .on('mdm_command_queue')
    .columns(['tenant_id', 'command_uuid', 'enrollment_id'])
    .where(sql<boolean>`push_sent_at is null and status = 'queued'`)
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('mdm_command_queue_unpushed').ifExists().execute();
}
