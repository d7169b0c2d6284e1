import type { Kysely } from 'kysely';

/** Corporate device identifiers, device enrollment managers and device categories. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('imported_device_identities')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    // Graph importedDeviceIdentityType: imei | serialNumber | manufacturerModelSerial
    .addColumn('identity_type', 'text', (c) => c.notNull())
    // As returned (normalised: IMEI digits only, manufacturer,model,serial with commas).
    .addColumn('identifier', 'text', (c) => c.notNull())
    // What matching and uniqueness compare (rules.ts identifierKey).
    .addColumn('identifier_key', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('enrollment_state', 'text', (c) => c.notNull())
    .addColumn('platform', 'text', (c) => c.notNull())
    // The device last matched to this identifier (for Enrolled → Unknown when it stops matching).
    .addColumn('matched_device_id', 'text')
    .addColumn('last_contacted_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('imported_device_identities_key')
    .on('imported_device_identities')
    .columns(['tenant_id', 'identity_type', 'identifier_key'])
    .unique()
    .execute();
  await db.schema.createIndex('imported_device_identities_device').on('imported_device_identities').columns(['tenant_id', 'matched_device_id']).execute();

  await db.schema
    .createTable('device_enrollment_managers')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('device_enrollment_managers_pk', ['tenant_id', 'user_id'])
    .execute();
  // demEnrolledCount narrows to DEM-enrolled devices of a tenant before comparing the enrolling UPN.
  await db.schema.createIndex('managed_devices_enrollment_type').on('managed_devices').columns(['tenant_id', 'device_enrollment_type']).execute();

  await db.schema
    .createTable('device_categories')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('display_name', 'text', (c) => c.notNull())
    // Names are unique regardless of case: dynamic group rules compare them without case.
    .addColumn('display_name_lower', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('device_categories_name').on('device_categories').columns(['tenant_id', 'display_name_lower']).unique().execute();
  await db.schema.createIndex('managed_devices_category').on('managed_devices').columns(['tenant_id', 'device_category_id']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('managed_devices_category').ifExists().execute();
  await db.schema.dropIndex('managed_devices_enrollment_type').ifExists().execute();
  for (const t of ['device_categories', 'device_enrollment_managers', 'imported_device_identities']) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
