import type { Kysely } from 'kysely';

/**
 * Apple Configurator serials as Graph's importedAppleDeviceIdentity shows them: when the admin chose
 * their profile, when the device last reached the enrollment URL, and its platform once known.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('configurator_devices').addColumn('profile_assigned_at', 'text').execute();
  await db.schema.alterTable('configurator_devices').addColumn('last_contacted_at', 'text').execute();
  // unknown | ios | macOS
  await db.schema.alterTable('configurator_devices').addColumn('platform', 'text', (c) => c.notNull().defaultTo('unknown')).execute();
  // A profile can't be deleted while serials use it: found by this index.
  await db.schema.createIndex('configurator_devices_profile').on('configurator_devices').columns(['tenant_id', 'profile_id']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('configurator_devices_profile').execute();
  for (const c of ['platform', 'last_contacted_at', 'profile_assigned_at']) await db.schema.alterTable('configurator_devices').dropColumn(c).execute();
}
