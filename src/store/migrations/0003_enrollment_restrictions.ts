import type { Kysely } from 'kysely';

/** Enrollment restrictions (deviceEnrollmentConfigurations), their assignments, and assignment filters. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('enrollment_configurations')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.notNull())
    // Graph deviceEnrollmentConfigurationType: limit | platformRestrictions (the default) | singlePlatformRestriction
    .addColumn('configuration_type', 'text', (c) => c.notNull())
    .addColumn('is_default', 'integer', (c) => c.notNull().defaultTo(0))
    // Which priority list the policy is ordered in: 'limit' or 'platform:<platformType>' ('platform:*' for the default).
    .addColumn('priority_list', 'text', (c) => c.notNull())
    .addColumn('platform_type', 'text')
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('priority', 'integer', (c) => c.notNull())
    // Incremented on every edit; enrollments record the version they were evaluated against.
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('device_limit', 'integer')
    // JSON: the platformRestriction, or the default's per-platform restrictions.
    .addColumn('settings', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('enrollment_configurations_pk', ['tenant_id', 'id'])
    .execute();
  await db.schema
    .createIndex('enrollment_configurations_priority')
    .on('enrollment_configurations')
    .columns(['tenant_id', 'priority_list', 'priority'])
    .execute();

  await db.schema
    .createTable('assignment_filters')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    // Graph devicePlatformType
    .addColumn('platform', 'text', (c) => c.notNull())
    .addColumn('rule', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('assignment_filters_pk', ['tenant_id', 'id'])
    .execute();

  await db.schema
    .createTable('enrollment_configuration_assignments')
    .addColumn('tenant_id', 'text', (c) => c.notNull())
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('configuration_id', 'text', (c) => c.notNull())
    // groupAssignmentTarget | exclusionGroupAssignmentTarget | allLicensedUsersAssignmentTarget
    .addColumn('target_type', 'text', (c) => c.notNull())
    .addColumn('group_id', 'text')
    .addColumn('filter_id', 'text')
    // Graph deviceAndAppManagementAssignmentFilterType: none | include | exclude
    .addColumn('filter_type', 'text', (c) => c.notNull().defaultTo('none'))
    .addColumn('source', 'text', (c) => c.notNull().defaultTo('direct'))
    .addColumn('source_id', 'text')
    // Keeps the order the admin gave.
    .addColumn('position', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('enrollment_configuration_assignments_pk', ['tenant_id', 'id'])
    .addForeignKeyConstraint('enrollment_configuration_assignments_configuration', ['tenant_id', 'configuration_id'], 'enrollment_configurations', ['tenant_id', 'id'], (fk) =>
      fk.onDelete('cascade'),
    )
    .execute();
  await db.schema
    .createIndex('enrollment_configuration_assignments_configuration')
    .on('enrollment_configuration_assignments')
    .columns(['tenant_id', 'configuration_id'])
    .execute();
  await db.schema
    .createIndex('enrollment_configuration_assignments_filter')
    .on('enrollment_configuration_assignments')
    .columns(['tenant_id', 'filter_id'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['enrollment_configuration_assignments', 'assignment_filters', 'enrollment_configurations']) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
