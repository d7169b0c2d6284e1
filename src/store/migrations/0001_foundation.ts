import type { Kysely } from 'kysely';

/* Migrations use only types both dialects share: text, integer, bigint. */

export async function up(db: Kysely<unknown>): Promise<void> {
  // One row: which tenant is the default. Its primary key makes first-start bootstrap race-free across nodes.
  await db.schema
    .createTable('instance')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('default_tenant_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('tenants')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('is_default', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('oidc_tenant_key', 'text', (c) => c.unique())
    // Scope tag ids are never reused, so a key scoped to a deleted tag can't inherit a new one.
    .addColumn('next_scope_tag_id', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('secrets')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('ciphertext', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('secrets_key_id').on('secrets').column('key_id').execute();

  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('scope_tag_ids', 'text')
    .addColumn('secret_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text')
    .addColumn('expires_at', 'text')
    .addColumn('last_used_at', 'text')
    .addColumn('revoked_at', 'text')
    .execute();
  await db.schema.createIndex('api_keys_tenant').on('api_keys').column('tenant_id').execute();

  await db.schema
    .createTable('role_scope_tags')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('display_name_lower', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('is_built_in', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('role_scope_tags_pk', ['tenant_id', 'id'])
    .execute();
  await db.schema
    .createIndex('role_scope_tags_name')
    .on('role_scope_tags')
    .columns(['tenant_id', 'display_name_lower'])
    .unique()
    .execute();

  await db.schema
    .createTable('object_scope_tags')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('object_type', 'text', (c) => c.notNull())
    .addColumn('object_id', 'text', (c) => c.notNull())
    .addColumn('tag_id', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('object_scope_tags_pk', ['tenant_id', 'object_type', 'object_id', 'tag_id'])
    .execute();
  await db.schema
    .createIndex('object_scope_tags_by_tag')
    .on('object_scope_tags')
    .columns(['tenant_id', 'object_type', 'tag_id', 'object_id'])
    .execute();

  await db.schema
    .createTable('users')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('user_principal_name', 'text', (c) => c.notNull())
    .addColumn('upn_lower', 'text', (c) => c.notNull())
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('given_name', 'text')
    .addColumn('surname', 'text')
    .addColumn('mail', 'text')
    .addColumn('mail_nickname', 'text')
    .addColumn('account_enabled', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('job_title', 'text')
    .addColumn('department', 'text')
    .addColumn('office_location', 'text')
    .addColumn('mobile_phone', 'text')
    .addColumn('usage_location', 'text')
    .addColumn('user_type', 'text', (c) => c.notNull().defaultTo('Member'))
    .addColumn('employee_id', 'text')
    .addColumn('password_hash', 'text')
    .addColumn('force_change_password', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('device_enrollment_limit', 'integer')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('users_upn').on('users').columns(['tenant_id', 'upn_lower']).unique().execute();
  await db.schema.createIndex('users_display_name').on('users').columns(['tenant_id', 'display_name']).execute();

  await db.schema
    .createTable('groups')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('mail_nickname', 'text')
    .addColumn('mail_enabled', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('security_enabled', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('group_types', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('membership_rule', 'text')
    .addColumn('membership_rule_processing_state', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('groups_display_name').on('groups').columns(['tenant_id', 'display_name']).execute();

  await db.schema
    .createTable('group_members')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('group_id', 'text', (c) => c.notNull().references('groups.id').onDelete('cascade'))
    .addColumn('member_id', 'text', (c) => c.notNull())
    .addColumn('member_type', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('group_members_pk', ['group_id', 'member_id'])
    .execute();
  await db.schema
    .createIndex('group_members_by_member')
    .on('group_members')
    .columns(['tenant_id', 'member_id'])
    .execute();

  await db.schema
    .createTable('managed_devices')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('device_name', 'text')
    .addColumn('managed_device_name', 'text')
    .addColumn('serial_number', 'text')
    .addColumn('imei', 'text')
    .addColumn('meid', 'text')
    .addColumn('udid', 'text')
    .addColumn('enrollment_id', 'text')
    .addColumn('azure_ad_device_id', 'text')
    .addColumn('operating_system', 'text')
    .addColumn('os_version', 'text')
    .addColumn('model', 'text')
    .addColumn('manufacturer', 'text')
    .addColumn('device_type', 'text', (c) => c.notNull().defaultTo('unknown'))
    .addColumn('managed_device_owner_type', 'text', (c) => c.notNull().defaultTo('unknown'))
    .addColumn('device_enrollment_type', 'text', (c) => c.notNull().defaultTo('unknown'))
    .addColumn('device_registration_state', 'text', (c) => c.notNull().defaultTo('notRegistered'))
    .addColumn('management_state', 'text', (c) => c.notNull().defaultTo('managed'))
    .addColumn('management_agent', 'text', (c) => c.notNull().defaultTo('mdm'))
    .addColumn('compliance_state', 'text', (c) => c.notNull().defaultTo('unknown'))
    .addColumn('join_type', 'text', (c) => c.notNull().defaultTo('unknown'))
    .addColumn('enrollment_profile_name', 'text')
    .addColumn('device_category_id', 'text')
    .addColumn('device_category_display_name', 'text')
    .addColumn('user_id', 'text')
    .addColumn('user_principal_name', 'text')
    .addColumn('user_display_name', 'text')
    .addColumn('email_address', 'text')
    .addColumn('enrolled_by_user_principal_name', 'text')
    .addColumn('is_supervised', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('is_encrypted', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('autopilot_enrolled', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('wifi_mac_address', 'text')
    .addColumn('phone_number', 'text')
    .addColumn('notes', 'text')
    .addColumn('enrolled_date_time', 'text', (c) => c.notNull())
    .addColumn('last_sync_date_time', 'text', (c) => c.notNull())
    .addColumn('management_certificate_expiration_date', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('managed_devices_serial').on('managed_devices').columns(['tenant_id', 'serial_number']).execute();
  // A UDID names one device: unique per tenant so concurrent enrollments can't duplicate it.
  await db.schema.createIndex('managed_devices_udid').on('managed_devices').columns(['tenant_id', 'udid']).unique().execute();
  await db.schema.createIndex('managed_devices_enrollment').on('managed_devices').columns(['tenant_id', 'enrollment_id']).execute();
  await db.schema.createIndex('managed_devices_user').on('managed_devices').columns(['tenant_id', 'user_id']).execute();
  await db.schema.createIndex('managed_devices_imei').on('managed_devices').columns(['tenant_id', 'imei']).execute();

  await db.schema
    .createTable('audit_events')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('activity_date_time', 'text', (c) => c.notNull())
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('component_name', 'text', (c) => c.notNull())
    .addColumn('category', 'text', (c) => c.notNull())
    .addColumn('activity', 'text', (c) => c.notNull())
    .addColumn('activity_type', 'text', (c) => c.notNull())
    .addColumn('activity_operation_type', 'text', (c) => c.notNull())
    .addColumn('activity_result', 'text', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('actor_id', 'text', (c) => c.notNull())
    .addColumn('resources', 'text', (c) => c.notNull())
    .addColumn('resource_type', 'text', (c) => c.notNull())
    .addColumn('resource_id', 'text', (c) => c.notNull())
    .addColumn('correlation_id', 'text', (c) => c.notNull())
    .addColumn('client_request_id', 'text')
    .execute();
  await db.schema
    .createIndex('audit_events_time')
    .on('audit_events')
    .columns(['tenant_id', 'activity_date_time'])
    .execute();
  await db.schema
    .createIndex('audit_events_resource')
    .on('audit_events')
    .columns(['tenant_id', 'resource_id'])
    .execute();

  await db.schema
    .createTable('jobs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('dedupe_key', 'text')
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('run_at', 'text', (c) => c.notNull())
    .addColumn('interval_ms', 'bigint')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('max_attempts', 'integer', (c) => c.notNull())
    .addColumn('lease_owner', 'text')
    .addColumn('lease_expires_at', 'text')
    .addColumn('lease_version', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_error', 'text')
    .addColumn('last_started_at', 'text')
    .addColumn('last_finished_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('jobs_due').on('jobs').columns(['status', 'run_at']).execute();
  await db.schema.createIndex('jobs_dedupe').on('jobs').columns(['tenant_id', 'dedupe_key']).unique().execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of [
    'jobs',
    'audit_events',
    'managed_devices',
    'group_members',
    'groups',
    'users',
    'object_scope_tags',
    'role_scope_tags',
    'api_keys',
    'secrets',
    'tenants',
    'instance',
  ]) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
