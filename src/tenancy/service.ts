import crypto from 'node:crypto';
import type { Executor, Store } from '../store/db.js';
import { createApiKey, type CreatedApiKey } from '../auth/api-keys.js';
import { DEFAULT_SCOPE_TAG_ID } from '../auth/scope-tags.js';
import { isUniqueViolation } from '../store/db.js';

export interface Tenant {
  id: string;
  displayName: string;
  isDefault: boolean;
  oidcTenantKey: string | null;
  createdAt: string;
}

export class TenantError extends Error {}

async function insertTenant(db: Executor, t: { id: string; displayName: string; isDefault: boolean; oidcTenantKey: string | null }, now: Date) {
  const at = now.toISOString();
  await db
    .insertInto('tenants')
    .values({ id: t.id, display_name: t.displayName, is_default: t.isDefault ? 1 : 0, oidc_tenant_key: t.oidcTenantKey, next_scope_tag_id: 1, created_at: at })
    .execute();
  // Every tenant has Intune's built-in "Default" scope tag.
  await db
    .insertInto('role_scope_tags')
    .values({
      tenant_id: t.id,
      id: DEFAULT_SCOPE_TAG_ID,
      display_name: 'Default',
      display_name_lower: 'default',
      description: 'Built-in default scope tag',
      is_built_in: 1,
      created_at: at,
      updated_at: at,
    })
    .execute();
}

/**
 * Creates the default tenant on the very first start, with a bootstrap administrator key
 * (stored hashed like every key; the caller prints it once).
 * Safe when several nodes start at once: the `instance` row decides the winner.
 * Returns the key only to the process that created it.
 */
export async function ensureDefaultTenant(
  store: Store,
  now = new Date(),
  opts: { bootstrapKey?: boolean } = {},
): Promise<{ tenantId: string; bootstrapKey?: CreatedApiKey }> {
  const existing = await store.db.selectFrom('instance').select('default_tenant_id').where('id', '=', 1).executeTakeFirst();
  if (existing) return { tenantId: existing.default_tenant_id };
  try {
    return await store.transaction(async (trx) => {
      const tenantId = crypto.randomUUID();
      await trx.insertInto('instance').values({ id: 1, default_tenant_id: tenantId, created_at: now.toISOString() }).execute();
      await insertTenant(trx, { id: tenantId, displayName: 'Default', isDefault: true, oidcTenantKey: null }, now);
      // The CLI creating the first key itself needs no bootstrap key (nobody would ever see it).
      if (opts.bootstrapKey === false) return { tenantId };
      const bootstrapKey = await createApiKey(trx, { tenantId, displayName: 'bootstrap', role: 'administrator', scopeTagIds: null, createdBy: 'bootstrap' }, now);
      return { tenantId, bootstrapKey };
    });
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    const row = await store.db.selectFrom('instance').select('default_tenant_id').where('id', '=', 1).executeTakeFirstOrThrow();
    return { tenantId: row.default_tenant_id };
  }
}

export async function createTenant(store: Store, input: { displayName: string; id?: string; oidcTenantKey?: string | null }, now = new Date()): Promise<Tenant> {
  const id = input.id ?? crypto.randomUUID();
  try {
    await store.transaction((trx) => insertTenant(trx, { id, displayName: input.displayName, isDefault: false, oidcTenantKey: input.oidcTenantKey ?? null }, now));
  } catch (err) {
    if (isUniqueViolation(err)) throw new TenantError(`a tenant with id ${id} or that OIDC tenant key already exists`);
    throw err;
  }
  return { id, displayName: input.displayName, isDefault: false, oidcTenantKey: input.oidcTenantKey ?? null, createdAt: now.toISOString() };
}

export async function listTenants(db: Executor): Promise<Tenant[]> {
  const rows = await db.selectFrom('tenants').selectAll().orderBy('created_at').execute();
  return rows.map((r) => ({ id: r.id, displayName: r.display_name, isDefault: r.is_default === 1, oidcTenantKey: r.oidc_tenant_key, createdAt: r.created_at }));
}

export async function getTenant(db: Executor, idOrDefault: string | undefined): Promise<Tenant | undefined> {
  const q = db.selectFrom('tenants').selectAll();
  const row = await (idOrDefault ? q.where('id', '=', idOrDefault) : q.where('is_default', '=', 1)).executeTakeFirst();
  return row ? { id: row.id, displayName: row.display_name, isDefault: row.is_default === 1, oidcTenantKey: row.oidc_tenant_key, createdAt: row.created_at } : undefined;
}
