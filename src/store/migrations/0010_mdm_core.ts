import type { Kysely } from 'kysely';

/**
 * The MDM core (src/apple/mdm): what the check-in and command channels need beyond 0008.
 * - mdm_enrollments: a unique channel key per tenant (device UDID / EnrollmentID, user channels
 *   under their device), what Authenticate reported, when the enrollment completed (first
 *   TokenUpdate of its intent), bootstrap token escrow time, the last ProfileList and inventory.
 * - mdm_command_queue: a per-enrollment sequence (ordering within one millisecond), a barrier flag
 *   (DeviceConfigured waits for everything queued before it) and a dedupe key for system commands.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // 'device:<UDID>', 'ue:<EnrollmentID>', or '<device key>/user:<id>' for user channels.
  await db.schema.alterTable('mdm_enrollments').addColumn('channel_key', 'text').execute();
  // iOS | macOS (from the intent).
  await db.schema.alterTable('mdm_enrollments').addColumn('platform', 'text').execute();
  // JSON: the Authenticate message's device fields (DeviceName, Model, ProductName, OSVersion, …).
  await db.schema.alterTable('mdm_enrollments').addColumn('device_info', 'text').execute();
  // The first TokenUpdate after an Authenticate with a new intent completes the enrollment.
  await db.schema.alterTable('mdm_enrollments').addColumn('enrolled_at', 'text').execute();
  await db.schema.alterTable('mdm_enrollments').addColumn('bootstrap_token_at', 'text').execute();
  // JSON: the last ProfileList answer (identifiers and names, no certificates).
  await db.schema.alterTable('mdm_enrollments').addColumn('profile_list', 'text').execute();
  await db.schema.alterTable('mdm_enrollments').addColumn('profile_list_at', 'text').execute();
  // When the last DeviceInformation answer arrived.
  await db.schema.alterTable('mdm_enrollments').addColumn('inventory_at', 'text').execute();
  await db.schema.createIndex('mdm_enrollments_channel').on('mdm_enrollments').columns(['tenant_id', 'channel_key']).unique().execute();

  await db.schema.alterTable('mdm_command_queue').addColumn('seq', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  // 1: served only once every row queued before it for the enrollment is finished.
  await db.schema.alterTable('mdm_command_queue').addColumn('after_prior', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  // System commands that must not pile up (e.g. 'deviceName', 'inventory').
  await db.schema.alterTable('mdm_command_queue').addColumn('dedupe_key', 'text').execute();
  await db.schema.createIndex('mdm_command_queue_command').on('mdm_command_queue').columns(['tenant_id', 'command_uuid']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('mdm_command_queue_command').ifExists().execute();
  for (const c of ['dedupe_key', 'after_prior', 'seq']) await db.schema.alterTable('mdm_command_queue').dropColumn(c).execute();
  await db.schema.dropIndex('mdm_enrollments_channel').ifExists().execute();
  for (const c of ['inventory_at', 'profile_list_at', 'profile_list', 'bootstrap_token_at', 'enrolled_at', 'device_info', 'platform', 'channel_key']) {
    await db.schema.alterTable('mdm_enrollments').dropColumn(c).execute();
  }
}
