import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStore } from '../../src/store/db.js';
import { testDialect } from '../helpers/store.js';
import { api, createDeployment, ensureBuilt, startServe, TOKEN, type Deployment, type Server } from './helpers.js';

// Several nodes sharing one PostgreSQL store may all make the very first start at once.
describe.runIf(testDialect() === 'postgres')('two nodes starting at once on an empty PostgreSQL schema', () => {
  let dep: Deployment;
  let servers: Server[] = [];
  beforeAll(async () => {
    await ensureBuilt();
    dep = await createDeployment({ masterKeyFile: false });
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await dep.cleanup();
  });

  it('creates exactly one default tenant and prints exactly one bootstrap key', async () => {
    const env: Record<string, string> = { ...dep.env, OPENENROLL_MASTER_KEY: crypto.randomBytes(32).toString('base64') };
    servers = await Promise.all([startServe(env), startServe(env)]);
    const printed = servers.flatMap((s) => s.stdout().match(TOKEN) ?? []);
    expect(printed).toHaveLength(1);
    // That one key works on both nodes.
    for (const s of servers) expect((await api(s, printed[0]!, 'GET', '/beta/deviceManagement/roleScopeTags')).status).toBe(200);

    const store = createStore({ databaseUrl: env.DATABASE_URL, pgSchema: dep.pgSchema });
    try {
      const tenants = await store.db.selectFrom('tenants').selectAll().execute();
      expect(tenants).toHaveLength(1);
      expect(tenants[0]!.is_default).toBe(1);
      const instance = await store.db.selectFrom('instance').selectAll().execute();
      expect(instance).toEqual([expect.objectContaining({ id: 1, default_tenant_id: tenants[0]!.id })]);
      expect(await store.db.selectFrom('api_keys').select('id').execute()).toHaveLength(1);
    } finally {
      await store.close();
    }
    const codes = await Promise.all(servers.map((s) => s.stop()));
    servers = [];
    expect(codes).toEqual([0, 0]);
  });
});
