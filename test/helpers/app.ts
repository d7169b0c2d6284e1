import crypto from 'node:crypto';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { loadConfig, type Config } from '../../src/config.js';
import { createApiKey } from '../../src/auth/api-keys.js';
import type { Role } from '../../src/auth/principal.js';
import { Keyring } from '../../src/secrets/keyring.js';
import { buildApp, createLogger, type App, type AppOptions } from '../../src/server/app.js';
import { ManualClock, type Clock } from '../../src/shared/time.js';
import type { Store } from '../../src/store/db.js';
import { createTenant, ensureDefaultTenant } from '../../src/tenancy/service.js';
import { createTestStore } from './store.js';

export interface TestApp {
  app: App;
  store: Store & { pgSchema?: string | undefined };
  config: Config;
  clock: Clock;
  tenantId: string;
  /** Administrator key of the default tenant. */
  adminKey: string;
  /** Sends a request with a bearer key (the admin key unless given). */
  request(opts: InjectOptions & { key?: string | null }): Promise<LightMyRequestResponse>;
  createKey(role: Role, scopeTagIds?: string[] | null, tenantId?: string): Promise<string>;
  createTenant(name?: string): Promise<{ tenantId: string; adminKey: string }>;
  close(): Promise<void>;
}

export function testKeyring(): Keyring {
  const key = crypto.randomBytes(32);
  return new Keyring({ current: 'test', keys: { test: key.toString('base64') } }, { kind: 'env' });
}

export async function createTestApp(
  opts: {
    env?: Record<string, string>;
    clock?: Clock;
    extraModules?: AppOptions['extraModules'];
    /** A migrated store of the caller's (fault tests bring their own PostgreSQL cluster); the app closes it. */
    store?: Store;
  } = {},
): Promise<TestApp> {
  const store = opts.store ?? (await createTestStore());
  const config = loadConfig({ OPENENROLL_JOBS: 'false', LOG_LEVEL: 'silent', OPENENROLL_PUBLIC_URL: 'http://openenroll.test', ...opts.env });
  const clock = opts.clock ?? new ManualClock(new Date());
  const { tenantId, bootstrapKey } = await ensureDefaultTenant(store, clock.now());
  const app = await buildApp({
    config,
    store,
    keyring: testKeyring(),
    clock,
    logger: createLogger(config.logLevel),
    extraModules: opts.extraModules,
  });
  const adminKey = bootstrapKey!.token;
  const t: TestApp = {
    app,
    store,
    config,
    clock,
    tenantId,
    adminKey,
    request: ({ key, headers, ...rest }) =>
      app.server.inject({
        ...rest,
        headers: { ...(key === null ? {} : { authorization: `Bearer ${key ?? adminKey}` }), ...headers },
      }),
    async createKey(role, scopeTagIds = null, tenant = tenantId) {
      return (await createApiKey(store.db, { tenantId: tenant, displayName: `test-${role}`, role, scopeTagIds })).token;
    },
    async createTenant(name = 'Other') {
      const tenant = await createTenant(store, { displayName: name });
      return { tenantId: tenant.id, adminKey: (await createApiKey(store.db, { tenantId: tenant.id, displayName: 'admin', role: 'administrator', scopeTagIds: null })).token };
    },
    close: () => app.close(),
  };
  return t;
}
