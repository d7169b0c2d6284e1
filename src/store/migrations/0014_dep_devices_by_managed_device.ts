import type { Kysely } from 'kysely';

/** ADE devices found from their managed device (CheckOut, the MDM core's look-ups) without scanning the tenant's fleet. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('dep_devices_managed_device').on('dep_devices').columns(['tenant_id', 'managed_device_id']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('dep_devices_managed_device').ifExists().execute();
}
