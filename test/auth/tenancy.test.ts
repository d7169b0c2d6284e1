import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyApiKey } from '../../src/auth/api-keys.js';
import type { Store } from '../../src/store/db.js';
import { createTenant, ensureDefaultTenant, getTenant, listTenants, TenantError } from '../../src/tenancy/service.js';
import { createTestStore } from '../helpers/store.js';

describe('tenants and the first-start bootstrap', () => {
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  it('creates the default tenant once, with the built-in Default scope tag and one bootstrap administrator key', async () => {
    store = await createTestStore();
    const first = await ensureDefaultTenant(store);
    expect(first.bootstrapKey).toBeDefined();
    const again = await ensureDefaultTenant(store);
    expect(again).toEqual({ tenantId: first.tenantId });
    expect(await listTenants(store.db)).toEqual([expect.objectContaining({ id: first.tenantId, displayName: 'Default', isDefault: true, oidcTenantKey: null })]);
    expect(await getTenant(store.db, undefined)).toMatchObject({ id: first.tenantId });
    const tags = await store.db.selectFrom('role_scope_tags').selectAll().where('tenant_id', '=', first.tenantId).execute();
    expect(tags).toEqual([expect.objectContaining({ id: '0', display_name: 'Default', is_built_in: 1 })]);
    const principal = await verifyApiKey(store.db, first.bootstrapKey!.token);
    expect(principal).toMatchObject({ tenantId: first.tenantId, role: 'administrator', scopeTagIds: null, displayName: 'bootstrap' });
  });

  it('hands the bootstrap key to exactly one of several concurrent first starts', async () => {
    store = await createTestStore();
    const s = store;
    const results = await Promise.all(Array.from({ length: 5 }, () => ensureDefaultTenant(s)));
    expect(results.filter((r) => r.bootstrapKey)).toHaveLength(1);
    expect(new Set(results.map((r) => r.tenantId)).size).toBe(1);
    expect(await s.db.selectFrom('tenants').select('id').execute()).toHaveLength(1);
    expect(await s.db.selectFrom('api_keys').select('id').execute()).toHaveLength(1);
  });

  it('can create the default tenant without a bootstrap key (the CLI making the first key itself)', async () => {
    store = await createTestStore();
    const r = await ensureDefaultTenant(store, new Date(), { bootstrapKey: false });
    expect(r.bootstrapKey).toBeUndefined();
    expect(await store.db.selectFrom('api_keys').select('id').execute()).toHaveLength(0);
    expect(await getTenant(store.db, undefined)).toMatchObject({ id: r.tenantId, isDefault: true });
  });

  it('creates more tenants; an OIDC tenant key belongs to one tenant only', async () => {
    store = await createTestStore();
    await ensureDefaultTenant(store);
    const t = await createTenant(store, { displayName: 'Contoso', oidcTenantKey: 'tid-1' });
    expect(t).toMatchObject({ displayName: 'Contoso', isDefault: false, oidcTenantKey: 'tid-1' });
    expect(await getTenant(store.db, t.id)).toMatchObject({ id: t.id, oidcTenantKey: 'tid-1' });
    await expect(createTenant(store, { displayName: 'Again', oidcTenantKey: 'tid-1' })).rejects.toThrow(TenantError);
    await expect(createTenant(store, { displayName: 'Same id', id: t.id })).rejects.toThrow(TenantError);
    expect(await getTenant(store.db, 'nope')).toBeUndefined();
    // The failed attempts left nothing behind (one transaction each).
    expect(await listTenants(store.db)).toHaveLength(2);
  });

  it('gives every table a tenant_id column (the instance row and migration bookkeeping aside)', async () => {
    store = await createTestStore();
    const tables =
      store.dialect === 'sqlite'
        ? (await sql<{ name: string }>`select name from sqlite_master where type = 'table' and name not like 'sqlite_%'`.execute(store.db)).rows.map((r) => r.name)
        : (await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = current_schema()`.execute(store.db)).rows.map((r) => r.name);
    // rate_limit_counters holds only request counts per credential (or address), never tenant data.
    const exempt = new Set(['instance', 'tenants', 'kysely_migration', 'kysely_migration_lock', 'rate_limit_counters']);
    const missing: string[] = [];
    for (const table of tables.filter((t) => !exempt.has(t))) {
      const cols =
        store.dialect === 'sqlite'
          ? (await sql<{ name: string }>`select name from pragma_table_info(${table})`.execute(store.db)).rows.map((r) => r.name)
          : (await sql<{ name: string }>`select column_name as name from information_schema.columns where table_schema = current_schema() and table_name = ${table}`.execute(store.db)).rows.map((r) => r.name);
      if (!cols.includes('tenant_id')) missing.push(table);
    }
    expect(tables).toContain('api_keys');
    expect(missing).toEqual([]);
  });
});
