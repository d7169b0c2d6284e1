#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig } from '../config.js';
import { createApiKey, listApiKeys, revokeApiKey } from '../auth/api-keys.js';
import { isRole, ROLES, type Role } from '../auth/principal.js';
import { assertTagsExist } from '../auth/scope-tags.js';
import { KeyringError, newKey, writeKeyringFile } from '../secrets/keyring.js';
import { SecretStore } from '../secrets/secret-store.js';
import { openKeyring, openStore, startServer } from '../server/start.js';
import { createTenant, getTenant, listTenants, TenantError } from '../tenancy/service.js';

const program = new Command();
program
  .name('openenroll')
  .description('OpenEnroll: self-hosted device enrollment with a Microsoft Graph-compatible admin API.\n\nConfiguration comes from the environment: PORT, OPENENROLL_DATA_DIR, DATABASE_URL, OPENENROLL_MASTER_KEY[_FILE], … (see README).')
  .version('0.1.0');

program
  .command('serve')
  .description('Start the server (embedded SQLite in OPENENROLL_DATA_DIR unless DATABASE_URL is set). Prints a bootstrap admin key on the very first start.')
  .action(async () => {
    const config = loadConfig();
    const { app, url } = await startServer(config);
    app.core.logger.info({ url, store: app.core.store.dialect }, 'OpenEnroll listening');
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      app.core.logger.info({ signal }, 'shutting down');
      app.close().then(
        () => process.exit(0),
        (err: unknown) => {
          app.core.logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });

program
  .command('migrate')
  .description('Apply database migrations and exit.')
  .action(async () => {
    const store = await openStore(loadConfig());
    console.log(`migrations up to date (${store.dialect})`);
    await store.close();
  });

const parseRole = (v: string): Role => {
  if (!isRole(v)) throw new InvalidArgumentError(`role must be one of: ${ROLES.join(', ')}`);
  return v;
};
const parseTags = (v: string): string[] => v.split(',').map((s) => s.trim()).filter(Boolean);

const keys = program.command('keys').description('Manage admin API keys and the master key.');
keys
  .command('create')
  .description('Create an API key. The key is printed once and stored only as a hash.')
  .requiredOption('--role <role>', `one of: ${ROLES.join(', ')}`, parseRole)
  .option('--scope-tags <ids>', 'comma-separated role scope tag ids the key is limited to (default: every scope)', parseTags)
  .option('--name <name>', 'display name', 'cli')
  .option('--tenant <id>', 'tenant id (default: the default tenant)')
  .option('--expires-in-days <n>', 'expire the key after n days', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
    return n;
  })
  .action(async (o: { role: Role; scopeTags?: string[]; name: string; tenant?: string; expiresInDays?: number }) => {
    const store = await openStore(loadConfig());
    try {
      const tenant = await getTenant(store.db, o.tenant);
      if (!tenant) throw new TenantError(o.tenant ? `tenant ${o.tenant} not found` : 'no default tenant yet: run "openenroll serve" once or "openenroll tenants create"');
      if (o.role === 'scopedAdministrator' && !o.scopeTags?.length) throw new TenantError('a scopedAdministrator key needs --scope-tags');
      if (o.scopeTags) await assertTagsExist(store.db, tenant.id, o.scopeTags);
      const expiresAt = o.expiresInDays ? new Date(Date.now() + o.expiresInDays * 86_400_000).toISOString() : null;
      const key = await createApiKey(store.db, { tenantId: tenant.id, displayName: o.name, role: o.role, scopeTagIds: o.scopeTags ?? null, createdBy: 'cli', expiresAt });
      console.log(key.token);
      console.error(`created key ${key.id} (${o.role}${o.scopeTags ? `, scope tags ${o.scopeTags.join(',')}` : ''}) in tenant ${tenant.id}; it will not be shown again`);
    } finally {
      await store.close();
    }
  });
keys
  .command('list')
  .description('List API keys (never their secrets).')
  .option('--tenant <id>', 'tenant id (default: the default tenant)')
  .action(async (o: { tenant?: string }) => {
    const store = await openStore(loadConfig());
    try {
      const tenant = await getTenant(store.db, o.tenant);
      if (!tenant) throw new TenantError('tenant not found');
      for (const k of await listApiKeys(store.db, tenant.id)) {
        console.log([k.id, k.role, k.scopeTagIds?.join(',') ?? '*', k.displayName, k.createdAt, k.revokedAt ? `revoked ${k.revokedAt}` : 'active'].join('\t'));
      }
    } finally {
      await store.close();
    }
  });
keys
  .command('revoke <id>')
  .description('Revoke an API key by id.')
  .option('--tenant <id>', 'tenant id (default: the default tenant)')
  .action(async (id: string, o: { tenant?: string }) => {
    const store = await openStore(loadConfig());
    try {
      const tenant = await getTenant(store.db, o.tenant);
      if (!tenant || !(await revokeApiKey(store.db, tenant.id, id))) throw new TenantError(`no active key ${id}`);
      console.log(`revoked ${id}`);
    } finally {
      await store.close();
    }
  });
keys
  .command('rotate-master')
  .description(
    'Add a new master key, make it current and re-encrypt every secret with it. A file keyring is updated in place (running servers pick the new key up on their own). With OPENENROLL_MASTER_KEY, pass --keyring-out to write the new keyring, deploy it to every node, then run again with --reencrypt-only.',
  )
  .option('--keyring-out <file>', 'write the new keyring here instead of the configured key file')
  .option('--reencrypt-only', 're-encrypt secrets under the current key without adding a key')
  .action(async (o: { keyringOut?: string; reencryptOnly?: boolean }) => {
    const config = loadConfig();
    const keyring = openKeyring(config);
    if (!o.reencryptOnly) {
      const data = keyring.toJSON();
      const { id, key } = newKey();
      const next = { current: id, keys: { ...data.keys, [id]: key.toString('base64') } };
      const target = o.keyringOut ?? (keyring.source.kind === 'file' ? keyring.source.path : undefined);
      if (!target) throw new KeyringError('the master key comes from OPENENROLL_MASTER_KEY: pass --keyring-out <file>');
      writeKeyringFile(target, next);
      console.error(`new master key ${id} written to ${target}`);
      if (o.keyringOut && keyring.source.kind !== 'file') {
        console.error('deploy that keyring to every node, then run "openenroll keys rotate-master --reencrypt-only"');
        return;
      }
    }
    const store = await openStore(config);
    try {
      const fresh = openKeyring(config);
      const n = await new SecretStore(fresh).reencryptAll(store);
      console.log(`re-encrypted ${n} secret(s) under master key ${fresh.currentKeyId}`);
    } finally {
      await store.close();
    }
  });

const tenants = program.command('tenants').description('Manage tenants.');
tenants
  .command('create')
  .description('Create a tenant and print its id; with --admin-key, also an administrator key for it.')
  .requiredOption('--name <name>', 'display name')
  .option('--oidc-tenant-key <value>', 'value of the OIDC tenant claim that maps tokens to this tenant')
  .option('--admin-key', 'also create an administrator API key and print it once')
  .action(async (o: { name: string; oidcTenantKey?: string; adminKey?: boolean }) => {
    const store = await openStore(loadConfig());
    try {
      const t = await createTenant(store, { displayName: o.name, oidcTenantKey: o.oidcTenantKey ?? null });
      console.log(t.id);
      if (o.adminKey) {
        const key = await createApiKey(store.db, { tenantId: t.id, displayName: 'tenant-admin', role: 'administrator', scopeTagIds: null, createdBy: 'cli' });
        console.log(key.token);
      }
    } finally {
      await store.close();
    }
  });
tenants
  .command('list')
  .description('List tenants.')
  .action(async () => {
    const store = await openStore(loadConfig());
    try {
      for (const t of await listTenants(store.db)) console.log([t.id, t.displayName, t.isDefault ? 'default' : '', t.oidcTenantKey ?? ''].join('\t'));
    } finally {
      await store.close();
    }
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof KeyringError || err instanceof TenantError || (err instanceof Error && err.name === 'GraphError')) {
    console.error(`openenroll: ${err.message}`);
  } else {
    console.error(err instanceof Error ? `openenroll: ${err.message}` : err);
  }
  process.exit(1);
});
