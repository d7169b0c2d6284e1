import type { Kysely } from 'kysely';

/** Apple push certificate, ADE (DEP) tokens, their profiles and devices. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('apple_push_certificates')
    .addColumn('tenant_id', 'text', (c) => c.primaryKey().references('tenants.id'))
    .addColumn('id', 'text', (c) => c.notNull())
    .addColumn('apple_identifier', 'text')
    .addColumn('topic', 'text')
    .addColumn('certificate_pem', 'text')
    .addColumn('serial_number', 'text')
    .addColumn('not_before', 'text')
    .addColumn('expiration', 'text')
    // The private key matching the uploaded certificate (secrets table).
    .addColumn('key_secret_id', 'text')
    // A CSR handed out but not yet answered by an upload, and its key.
    .addColumn('pending_csr_pem', 'text')
    .addColumn('pending_key_secret_id', 'text')
    .addColumn('pending_csr_created_at', 'text')
    .addColumn('upload_status', 'text')
    .addColumn('upload_failure_reason', 'text')
    .addColumn('last_modified', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('dep_tokens')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('token_name', 'text')
    .addColumn('apple_identifier', 'text')
    // Graph depTokenType: none | dep | appleSchoolManager
    .addColumn('token_type', 'text', (c) => c.notNull().defaultTo('none'))
    .addColumn('data_sharing_consent', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('token_expiration', 'text')
    // consumer_key/secret, access_token/secret as JSON, encrypted (secrets table). Null until uploaded.
    .addColumn('oauth_secret_id', 'text')
    .addColumn('consumer_key', 'text')
    // The public key certificate the admin gives Apple, and its private key (secrets table).
    .addColumn('encryption_cert_pem', 'text')
    .addColumn('encryption_key_secret_id', 'text')
    .addColumn('encryption_key_created_at', 'text')
    // JSON array of {serialNumber, createdAt} of keys this token used before (to name a stale key).
    .addColumn('encryption_key_history', 'text', (c) => c.notNull().defaultTo('[]'))
    // From Apple's /account.
    .addColumn('server_uuid', 'text')
    .addColumn('server_name', 'text')
    .addColumn('org_name', 'text')
    .addColumn('org_id', 'text')
    .addColumn('org_type', 'text')
    .addColumn('admin_id', 'text')
    .addColumn('fetch_limit', 'integer')
    .addColumn('sync_limit', 'integer')
    .addColumn('share_sds', 'integer', (c) => c.notNull().defaultTo(0))
    // Sync state.
    .addColumn('cursor', 'text')
    // 'fetch' while a full fetch is paging, 'sync' once deltas are being read.
    .addColumn('sync_phase', 'text', (c) => c.notNull().defaultTo('fetch'))
    .addColumn('sync_status', 'text', (c) => c.notNull().defaultTo('none'))
    .addColumn('next_sync_full', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('last_sync_triggered_at', 'text')
    .addColumn('last_manual_sync_at', 'text')
    .addColumn('last_sync_started_at', 'text')
    .addColumn('last_successful_sync_at', 'text')
    .addColumn('last_full_sync_at', 'text')
    .addColumn('last_sync_error_code', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_sync_error', 'text')
    // Apple's refusal that needs an admin (T_C_NOT_SIGNED, token rejected), shown on the token.
    .addColumn('apple_status', 'text')
    .addColumn('synced_device_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('default_ios_profile_id', 'text')
    .addColumn('default_macos_profile_id', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('dep_tokens_tenant').on('dep_tokens').columns(['tenant_id', 'created_at']).execute();

  await db.schema
    .createTable('dep_profiles')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('token_id', 'text', (c) => c.notNull().references('dep_tokens.id'))
    // 'iOS' | 'macOS'
    .addColumn('platform', 'text', (c) => c.notNull())
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    // Every other Graph property of the profile, as JSON.
    .addColumn('settings', 'text', (c) => c.notNull())
    // Apple's id for the profile as last defined at /profile; a changed profile is defined anew.
    .addColumn('apple_profile_uuid', 'text')
    .addColumn('apple_defined_at', 'text')
    .addColumn('apple_sync_error', 'text')
    // Bumped on every change; devices enrolled with an older revision are "pending until reset".
    .addColumn('revision', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('dep_profiles_token').on('dep_profiles').columns(['token_id', 'display_name']).execute();

  await db.schema
    .createTable('dep_devices')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('token_id', 'text', (c) => c.notNull().references('dep_tokens.id'))
    .addColumn('serial_number', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('model', 'text')
    .addColumn('color', 'text')
    .addColumn('asset_tag', 'text')
    .addColumn('device_family', 'text')
    .addColumn('os', 'text')
    // Graph platform enum: unknown | ios | android | windows | windowsMobile | macOS
    .addColumn('platform', 'text', (c) => c.notNull().defaultTo('unknown'))
    // Graph discoverySource: unknown | adminImport | deviceEnrollmentProgram
    .addColumn('discovery_source', 'text', (c) => c.notNull())
    // Apple's view: profile_status empty|assigned|pushed|removed, and the profile UUID it holds.
    .addColumn('apple_profile_status', 'text')
    .addColumn('apple_profile_uuid', 'text')
    .addColumn('apple_profile_assign_time', 'text')
    .addColumn('apple_profile_push_time', 'text')
    .addColumn('device_assigned_by', 'text')
    .addColumn('device_assigned_date', 'text')
    .addColumn('last_op_type', 'text')
    .addColumn('last_op_date', 'text')
    .addColumn('seen_at_apple', 'integer', (c) => c.notNull().defaultTo(0))
    // The admin's choice (importedAppleDeviceIdentity.requestedEnrollmentProfileId).
    .addColumn('requested_profile_id', 'text')
    .addColumn('requested_profile_assigned_at', 'text')
    // Apple's answer to the last assignment: SUCCESS | NOT_ACCESSIBLE | FAILED | THROTTLED, or 'PENDING'.
    .addColumn('assignment_result', 'text')
    .addColumn('assignment_result_at', 'text')
    .addColumn('assigned_profile_id', 'text')
    .addColumn('assigned_profile_revision', 'integer')
    // Released from ABM/ASM: shown as removed, deleted 45 days later.
    .addColumn('removed_from_apple_at', 'text')
    // Deleted here by an admin while still assigned at Apple: hidden until the next full sync.
    .addColumn('deleted_at', 'text')
    // Graph enrollmentState: unknown | enrolled | pendingReset | failed | notContacted | blocked
    .addColumn('enrollment_state', 'text', (c) => c.notNull().defaultTo('notContacted'))
    .addColumn('managed_device_id', 'text')
    .addColumn('enrolled_profile_id', 'text')
    .addColumn('enrolled_profile_revision', 'integer')
    .addColumn('is_supervised', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_contacted_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('dep_devices_serial').on('dep_devices').columns(['tenant_id', 'serial_number']).unique().execute();
  await db.schema.createIndex('dep_devices_token').on('dep_devices').columns(['token_id', 'serial_number']).execute();
  await db.schema.createIndex('dep_devices_profile').on('dep_devices').columns(['token_id', 'requested_profile_id']).execute();
  await db.schema.createIndex('dep_devices_removed').on('dep_devices').columns(['tenant_id', 'removed_from_apple_at']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of ['dep_devices', 'dep_profiles', 'dep_tokens', 'apple_push_certificates']) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
