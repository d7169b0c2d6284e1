import type { Kysely } from 'kysely';

/**
 * Apple enrollment front doors: how an intent's user affinity was settled, and the sign-in
 * throttle of the enrollment pages (shared by every node, so a guesser can't spread attempts).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // user | userless | pendingCompanyPortal (the user signs in to Company Portal after enrollment).
  await db.schema.alterTable('enrollment_intents').addColumn('user_affinity', 'text').execute();
  // The resolved method: none | companyPortal | setupAssistantLegacy | setupAssistantModern | platformSSO.
  await db.schema.alterTable('enrollment_intents').addColumn('authentication_method', 'text').execute();

  // Failed sign-ins per subject (a user name, a client address, a device serial), keyed by a hash
  // so mistyped secrets in a user name field are never stored.
  await db.schema
    .createTable('enrollment_signin_throttle')
    .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
    .addColumn('key_hash', 'text', (c) => c.notNull())
    .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('window_started_at', 'text', (c) => c.notNull())
    .addColumn('locked_until', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('enrollment_signin_throttle_pk', ['tenant_id', 'key_hash'])
    .execute();
  await db.schema.createIndex('web_enrollment_sessions_expiry').on('web_enrollment_sessions').columns(['tenant_id', 'expires_at']).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('web_enrollment_sessions_expiry').ifExists().execute();
  await db.schema.dropTable('enrollment_signin_throttle').ifExists().execute();
  await db.schema.alterTable('enrollment_intents').dropColumn('authentication_method').execute();
  await db.schema.alterTable('enrollment_intents').dropColumn('user_affinity').execute();
}
