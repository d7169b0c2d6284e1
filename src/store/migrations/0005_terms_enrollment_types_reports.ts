import type { Kysely } from 'kysely';

/**
 * Terms and conditions (with acceptances), Apple enrollment type profiles, the user-targeted
 * assignments both share, and the enrollment reports: attempts, first-enrollment policy
 * snapshots, Company Portal enrollment sessions and report export jobs.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('terms_and_conditions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('title', 'text')
    .addColumn('body_text', 'text')
    .addColumn('acceptance_statement', 'text')
    // Starts at 1; bumped when users must accept again, never lowered.
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('terms_and_conditions_name').on('terms_and_conditions').columns(['tenant_id', 'display_name']).execute();

  // One user per terms: the version they last accepted. Accepting an older version than the current one doesn't count.
  await db.schema
    .createTable('terms_acceptances')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('terms_id', 'text', (c) => c.notNull().references('terms_and_conditions.id').onDelete('cascade'))
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('user_principal_name', 'text')
    .addColumn('user_display_name', 'text')
    .addColumn('accepted_version', 'integer', (c) => c.notNull())
    .addColumn('accepted_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('terms_acceptances_user').on('terms_acceptances').columns(['tenant_id', 'terms_id', 'user_id']).unique().execute();
  await db.schema.createIndex('terms_acceptances_by_user').on('terms_acceptances').columns(['tenant_id', 'user_id']).execute();

  await db.schema
    .createTable('apple_enrollment_type_profiles')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('platform', 'text', (c) => c.notNull())
    .addColumn('default_enrollment_type', 'text', (c) => c.notNull())
    // JSON array of {ownerType, enrollmentType}; non-empty means "determine based on user choice".
    .addColumn('available_options', 'text', (c) => c.notNull().defaultTo('[]'))
    // 0 is the highest; contiguous per platform. Not unique: a reorder moves several rows at once.
    .addColumn('priority', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('apple_enrollment_type_profiles_priority')
    .on('apple_enrollment_type_profiles')
    .columns(['tenant_id', 'platform', 'priority'])
    .execute();

  // Assignments of user-targeted enrollment objects (terms, enrollment type profiles).
  await db.schema
    .createTable('enrollment_user_assignments')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('object_type', 'text', (c) => c.notNull())
    .addColumn('object_id', 'text', (c) => c.notNull())
    // 'allLicensedUsers' | 'group' | 'exclusionGroup'
    .addColumn('target_type', 'text', (c) => c.notNull())
    .addColumn('group_id', 'text')
    // 'allLicensedUsers' or the group id: one assignment per target, and a group can't be both included and excluded.
    .addColumn('target_key', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('enrollment_user_assignments_target')
    .on('enrollment_user_assignments')
    .columns(['tenant_id', 'object_type', 'object_id', 'target_key'])
    .unique()
    .execute();
  await db.schema
    .createIndex('enrollment_user_assignments_group')
    .on('enrollment_user_assignments')
    .columns(['tenant_id', 'object_type', 'group_id'])
    .execute();

  // Every enrollment attempt the gate decided: failures for the failures report, successes with their applied policies.
  await db.schema
    .createTable('enrollment_attempts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('occurred_at', 'text', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('failure_category', 'text')
    .addColumn('message', 'text')
    .addColumn('os_platform', 'text', (c) => c.notNull())
    .addColumn('os_version', 'text')
    .addColumn('user_id', 'text')
    .addColumn('user_principal_name', 'text')
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('activity_id', 'text', (c) => c.notNull())
    .addColumn('device_id', 'text')
    .addColumn('applied', 'text', (c) => c.notNull().defaultTo('[]'))
    .execute();
  await db.schema.createIndex('enrollment_attempts_time').on('enrollment_attempts').columns(['tenant_id', 'outcome', 'occurred_at']).execute();
  await db.schema.createIndex('enrollment_attempts_user').on('enrollment_attempts').columns(['tenant_id', 'user_id']).execute();

  // The policies applied when a device first enrolled; written once per device.
  await db.schema
    .createTable('enrollment_device_snapshots')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('device_id', 'text', (c) => c.notNull())
    .addColumn('attempt_id', 'text', (c) => c.notNull())
    .addColumn('user_principal_name', 'text')
    .addColumn('enrolled_at', 'text', (c) => c.notNull())
    .addColumn('applied', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('enrollment_device_snapshots_pk', ['tenant_id', 'device_id'])
    .execute();

  // Company Portal enrollment attempts, for the incomplete user enrollments report.
  await db.schema
    .createTable('enrollment_sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('user_id', 'text')
    .addColumn('user_principal_name', 'text')
    .addColumn('platform', 'text', (c) => c.notNull())
    .addColumn('started_at', 'text', (c) => c.notNull())
    .addColumn('last_activity_at', 'text', (c) => c.notNull())
    // The action (screen or flow) the user is on.
    .addColumn('action_name', 'text', (c) => c.notNull())
    // 'inProgress' | 'completed' | 'incomplete' (an idle inProgress attempt is incomplete once 30 minutes pass).
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('ended_at', 'text')
    .addColumn('end_action_name', 'text')
    .addColumn('end_user_action', 'text')
    .addColumn('device_id', 'text')
    .execute();
  await db.schema.createIndex('enrollment_sessions_time').on('enrollment_sessions').columns(['tenant_id', 'started_at']).execute();
  await db.schema.createIndex('enrollment_sessions_user').on('enrollment_sessions').columns(['tenant_id', 'user_id', 'status']).execute();

  await db.schema
    .createTable('report_export_jobs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('report_name', 'text', (c) => c.notNull())
    .addColumn('filter', 'text')
    .addColumn('select_columns', 'text')
    .addColumn('search', 'text')
    .addColumn('format', 'text', (c) => c.notNull())
    .addColumn('localization_type', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('request_date_time', 'text', (c) => c.notNull())
    .addColumn('expiration_date_time', 'text')
    .addColumn('row_count', 'integer')
    .addColumn('content', 'text')
    .addColumn('content_bytes', 'integer')
    .addColumn('error', 'text')
    // Who asked, and the scope tags the report was produced under (null: every scope).
    .addColumn('requested_by', 'text', (c) => c.notNull())
    .addColumn('requester_scope', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('report_export_jobs_tenant').on('report_export_jobs').columns(['tenant_id', 'request_date_time']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of [
    'report_export_jobs',
    'enrollment_sessions',
    'enrollment_device_snapshots',
    'enrollment_attempts',
    'enrollment_user_assignments',
    'apple_enrollment_type_profiles',
    'terms_acceptances',
    'terms_and_conditions',
  ]) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
