import type { Kysely } from 'kysely';

/**
 * Apple devices enrolling for real: the tenant certificate authority and SCEP, enrollment intents
 * (what a served profile is for), MDM enrollments and their command queues, Apple Configurator,
 * and web sign-in sessions.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // One certificate authority per tenant, and the certificate that signs served profiles.
  await db.schema
    .createTable('tenant_cas')
    .addColumn('tenant_id', 'text', (c) => c.primaryKey().references('tenants.id'))
    .addColumn('ca_cert_pem', 'text', (c) => c.notNull())
    .addColumn('ca_key_secret_id', 'text', (c) => c.notNull())
    .addColumn('signer_cert_pem', 'text', (c) => c.notNull())
    .addColumn('signer_key_secret_id', 'text', (c) => c.notNull())
    .addColumn('ca_not_after', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  // What a served enrollment profile is for: who, which device, which profile, and the gate's decision.
  await db.schema
    .createTable('enrollment_intents')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    // ade | configurator | configuratorDirect | userInitiated | userEnrollment
    .addColumn('source', 'text', (c) => c.notNull())
    // device | user (Apple User Enrollment)
    .addColumn('enrollment_type', 'text', (c) => c.notNull())
    // iOS | macOS
    .addColumn('platform', 'text', (c) => c.notNull())
    .addColumn('serial_number', 'text')
    .addColumn('udid', 'text')
    .addColumn('imei', 'text')
    .addColumn('os_version', 'text')
    .addColumn('product', 'text')
    .addColumn('dep_device_id', 'text')
    .addColumn('profile_id', 'text')
    .addColumn('profile_name', 'text')
    .addColumn('profile_revision', 'integer')
    .addColumn('user_id', 'text')
    // company | personal
    .addColumn('ownership', 'text', (c) => c.notNull())
    // Graph deviceEnrollmentType for the managed device (appleBulkWithUser, userEnrollment, …).
    .addColumn('device_enrollment_type', 'text', (c) => c.notNull())
    // JSON array of scope tag ids the enrolled device inherits (e.g. from the ADE token).
    .addColumn('scope_tag_ids', 'text', (c) => c.notNull().defaultTo('[]'))
    // JSON: the gate's request and decision, to record the success once the device exists.
    .addColumn('gate_request', 'text')
    .addColumn('gate_decision', 'text')
    // Reusable intents (direct-enrollment downloads) serve many devices until they expire.
    .addColumn('reusable', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('consumed_at', 'text')
    .execute();
  await db.schema.createIndex('enrollment_intents_tenant').on('enrollment_intents').columns(['tenant_id', 'created_at']).execute();

  // SCEP challenges: one-time (or reusable for direct-enrollment files), stored hashed.
  await db.schema
    .createTable('scep_challenges')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('intent_id', 'text', (c) => c.notNull().references('enrollment_intents.id'))
    .addColumn('challenge_hash', 'text', (c) => c.notNull().unique())
    .addColumn('reusable', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('used_at', 'text')
    .execute();

  // Certificates the tenant CA issued (device identities), bound to the intent and then the enrollment.
  await db.schema
    .createTable('issued_certificates')
    .addColumn('thumbprint_sha256', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('serial_hex', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('not_before', 'text', (c) => c.notNull())
    .addColumn('not_after', 'text', (c) => c.notNull())
    .addColumn('cert_pem', 'text', (c) => c.notNull())
    // mdmIdentity
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('intent_id', 'text')
    .addColumn('enrollment_id', 'text')
    .addColumn('renewed_from', 'text')
    .addColumn('revoked_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('issued_certificates_serial').on('issued_certificates').columns(['tenant_id', 'serial_hex']).unique().execute();
  await db.schema.createIndex('issued_certificates_enrollment').on('issued_certificates').columns(['tenant_id', 'enrollment_id']).execute();

  // MDM enrollments (NanoMDM's model): a device channel keyed by UDID or EnrollmentID, and user channels.
  await db.schema
    .createTable('mdm_enrollments')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    // Device | User | UserEnrollmentDevice | UserEnrollmentUser
    .addColumn('type', 'text', (c) => c.notNull())
    // The device channel of a user channel.
    .addColumn('device_enrollment_id', 'text')
    .addColumn('udid', 'text')
    .addColumn('apple_enrollment_id', 'text')
    .addColumn('apple_user_id', 'text')
    .addColumn('user_short_name', 'text')
    .addColumn('user_long_name', 'text')
    .addColumn('serial_number', 'text')
    .addColumn('managed_device_id', 'text')
    .addColumn('intent_id', 'text')
    .addColumn('cert_thumbprint', 'text')
    .addColumn('topic', 'text')
    .addColumn('push_token', 'text')
    .addColumn('push_magic', 'text')
    .addColumn('unlock_token_secret_id', 'text')
    .addColumn('bootstrap_token_secret_id', 'text')
    .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('token_update_tally', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('awaiting_configuration', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('device_configured_at', 'text')
    // null | 'unregistered' (APNs 410)
    .addColumn('apns_status', 'text')
    .addColumn('apns_status_at', 'text')
    .addColumn('authenticated_at', 'text')
    .addColumn('checked_out_at', 'text')
    .addColumn('last_seen_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('mdm_enrollments_device').on('mdm_enrollments').columns(['tenant_id', 'managed_device_id']).execute();
  await db.schema.createIndex('mdm_enrollments_parent').on('mdm_enrollments').columns(['device_enrollment_id']).execute();

  await db.schema
    .createTable('mdm_commands')
    .addColumn('uuid', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('request_type', 'text', (c) => c.notNull())
    // The whole command plist (XML) sent to devices.
    .addColumn('command_plist', 'text', (c) => c.notNull())
    // admin | system
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('mdm_command_queue')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('enrollment_id', 'text', (c) => c.notNull().references('mdm_enrollments.id').onDelete('cascade'))
    .addColumn('command_uuid', 'text', (c) => c.notNull().references('mdm_commands.uuid').onDelete('cascade'))
    // queued | sent | Acknowledged | Error | CommandFormatError | NotNow
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('result_plist', 'text')
    .addColumn('error_chain', 'text')
    .addColumn('not_now_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('queued_at', 'text', (c) => c.notNull())
    .addColumn('sent_at', 'text')
    .addColumn('completed_at', 'text')
    .addColumn('push_sent_at', 'text')
    .addPrimaryKeyConstraint('mdm_command_queue_pk', ['enrollment_id', 'command_uuid'])
    .execute();
  await db.schema.createIndex('mdm_command_queue_pending').on('mdm_command_queue').columns(['enrollment_id', 'status', 'priority', 'queued_at']).execute();

  // Apple Configurator: profiles (Graph enrollmentProfile under the tenant's pseudo token) and serials.
  await db.schema
    .createTable('configurator_profiles')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('requires_user_authentication', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('enable_authentication_via_company_portal', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('require_company_portal_on_setup_assistant', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('configurator_devices')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('serial_number', 'text', (c) => c.notNull())
    .addColumn('details', 'text')
    .addColumn('profile_id', 'text')
    .addColumn('enrollment_state', 'text', (c) => c.notNull().defaultTo('notContacted'))
    .addColumn('managed_device_id', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('configurator_devices_serial').on('configurator_devices').columns(['tenant_id', 'serial_number']).unique().execute();

  // Browser sessions of the enrollment sign-in pages (Setup Assistant web view, user-initiated enrollment).
  await db.schema
    .createTable('web_enrollment_sessions')
    .addColumn('id_hash', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('user_id', 'text')
    // adeWeb | userInitiated
    .addColumn('purpose', 'text', (c) => c.notNull())
    // JSON: MachineInfo from x-apple-aspen-deviceinfo, the profile, the chosen enrollment type …
    .addColumn('context', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('csrf_token', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const t of [
    'web_enrollment_sessions',
    'configurator_devices',
    'configurator_profiles',
    'mdm_command_queue',
    'mdm_commands',
    'mdm_enrollments',
    'issued_certificates',
    'scep_challenges',
    'enrollment_intents',
    'tenant_cas',
  ]) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
