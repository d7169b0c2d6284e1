import { sql, type Kysely } from 'kysely';

/** The ADE admin API: the macOS profile admin password, what was defined at Apple, one School Data Sync token per tenant. */
export async function up(db: Kysely<unknown>): Promise<void> {
  // depMacOSEnrollmentProfile.adminAccountPassword, encrypted (secrets table).
  await db.schema.alterTable('dep_profiles').addColumn('admin_password_secret_id', 'text').execute();
  // SHA-256 of the Apple profile JSON last defined: the profile needs defining again when it differs.
  await db.schema.alterTable('dep_profiles').addColumn('apple_profile_hash', 'text').execute();
  // "Only one token can sync with SDS": enforced by the store too, so two requests can't both win.
  await db.schema
    .createIndex('dep_tokens_one_sds')
    .on('dep_tokens')
    .column('tenant_id')
    .unique()
    .where(sql.ref('share_sds'), '=', 1)
    .execute();
  await db.schema.createIndex('dep_profiles_tenant_token').on('dep_profiles').columns(['tenant_id', 'token_id']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('dep_profiles_tenant_token').ifExists().execute();
  await db.schema.dropIndex('dep_tokens_one_sds').ifExists().execute();
  await db.schema.alterTable('dep_profiles').dropColumn('apple_profile_hash').execute();
  await db.schema.alterTable('dep_profiles').dropColumn('admin_password_secret_id').execute();
}
