#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { loadConfig } from '../config.js';
import { ApiKeyError, createApiKey, listApiKeys, revokeApiKey } from '../auth/api-keys.js';
import { isRole, ROLES, type Role } from '../auth/principal.js';
import { assertTagsExist } from '../auth/scope-tags.js';
import { KeyringError, newKey, writeKeyringFile } from '../secrets/keyring.js';
import { SecretStore } from '../secrets/secret-store.js';
import { exitOnStop, openKeyring, openStore, startServer } from '../server/start.js';
import type { Store } from '../store/db.js';
import { createTenant, ensureDefaultTenant, getTenant, listTenants, TenantError, type Tenant } from '../tenancy/service.js';

const ENVIRONMENT = `
Environment:
  PORT                         port to listen on (default 8080)
  HOST                         address to listen on (default 0.0.0.0)
  OPENENROLL_DATA_DIR          data directory: SQLite store and generated master key (default ./data)
  DATABASE_URL                 PostgreSQL URL; when set, PostgreSQL is used instead of SQLite
  OPENENROLL_PG_SCHEMA         PostgreSQL schema (default: the connection's search_path)
  OPENENROLL_PG_POOL_SIZE      PostgreSQL connections per server process (default 10)
  OPENENROLL_MASTER_KEY        master key: base64 32 bytes, or a JSON keyring
  OPENENROLL_MASTER_KEY_FILE   file holding the master key or keyring (mode 0600)
  OPENENROLL_OIDC_ISSUER       accept JWTs from this OpenID Connect issuer (with OPENENROLL_OIDC_AUDIENCE)
  OPENENROLL_WORKERS           server processes sharing the port: a whole number, or auto (one per core); default 1
  LOG_LEVEL                    fatal, error, warn, info, debug, trace or silent (default info)`;

const program = new Command();
program
  .name('openenroll')
  .description(
    'OpenEnroll: self-hosted device enrollment with a Microsoft Graph-compatible admin API.\n\nConfiguration comes from the environment (see "openenroll serve --help" and the README).',
  )
  .version('0.1.0')
  .showHelpAfterError('(add --help for usage)')
  .addHelpText(
    'after',
    `
Examples:
  $ openenroll serve                                  start on SQLite in ./data
  $ openenroll keys create --role readOnlyOperator    print a new read-only API key
  $ openenroll tenants list`,
  );

program
  .command('serve')
  .description(
    'Start the server (embedded SQLite in OPENENROLL_DATA_DIR unless DATABASE_URL is set). Prints a bootstrap admin key on the very first start. SIGTERM or SIGINT stops it gracefully: requests in flight finish, jobs release their leases, the store is closed. With OPENENROLL_WORKERS=n the process forks n workers that share the port and stops them the same way.',
  )
  .addHelpText('after', ENVIRONMENT)
  .action(async () => {
    const config = loadConfig();
    if (config.workers > 1) {
      const { serveWithWorkers } = await import('../server/cluster.js');
      await serveWithWorkers(config);
      return;
    }
    const { app, url } = await startServer(config);
    app.core.logger.info({ url, store: app.core.store.dialect, startupMs: Math.round(performance.now()) }, 'OpenEnroll listening');
    exitOnStop(app, config);
  });

program
  .command('migrate')
  .description('Apply database migrations to the configured store (SQLite in OPENENROLL_DATA_DIR, or DATABASE_URL) and exit.')
  .addHelpText('after', ENVIRONMENT)
  .action(async () => {
    const store = await openStore(loadConfig());
    console.log(`migrations up to date (${store.dialect})`);
    await store.close();
  });

async function withStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(loadConfig());
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** The named tenant, or the default one (created, without a bootstrap key, when `create` and none exists yet). */
async function tenantFor(store: Store, id: string | undefined, create = false): Promise<Tenant> {
  if (!id && create) await ensureDefaultTenant(store, new Date(), { bootstrapKey: false });
  const tenant = await getTenant(store.db, id);
  if (!tenant) throw new TenantError(id ? `tenant ${id} not found` : 'no default tenant yet: run "openenroll serve" once');
  return tenant;
}

const parseRole = (v: string): Role => {
  if (!isRole(v)) throw new InvalidArgumentError(`role must be one of: ${ROLES.join(', ')}`);
  return v;
};
const parseTags = (v: string): string[] => {
  const tags = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (tags.length === 0) throw new InvalidArgumentError('give at least one scope tag id');
  return tags;
};

const keys = program.command('keys').description('Manage admin API keys and the master key.');
keys
  .command('create')
  .description(
    'Create an API key for the admin API and print it once on stdout; only a hash is stored. Roles: administrator (everything), readOnlyOperator (reads only), scopedAdministrator (devices and enrollment within its scope tags; needs --scope-tags).',
  )
  .requiredOption('--role <role>', `one of: ${ROLES.join(', ')}`, parseRole)
  .option('--scope-tags <ids>', 'comma-separated role scope tag ids the key is limited to (default: every scope)', parseTags)
  .option('--name <name>', 'display name', 'cli')
  .option('--tenant <id>', 'tenant id (default: the default tenant)')
  .option('--expires-in-days <n>', 'expire the key after n days', (v) => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
    return n;
  })
  .addHelpText(
    'after',
    `
Examples:
  $ openenroll keys create --role administrator --name ci
  $ openenroll keys create --role scopedAdministrator --scope-tags 1,2 --expires-in-days 90
  $ curl -H "Authorization: Bearer $(openenroll keys create --role readOnlyOperator)" http://localhost:8080/beta/deviceManagement/roleScopeTags`,
  )
  .action(async (o: { role: Role; scopeTags?: string[]; name: string; tenant?: string; expiresInDays?: number }) => {
    if (o.role === 'scopedAdministrator' && !o.scopeTags?.length) throw new ApiKeyError('a scopedAdministrator key needs --scope-tags');
    await withStore(async (store) => {
      const tenant = await tenantFor(store, o.tenant, true);
      if (o.scopeTags) await assertTagsExist(store.db, tenant.id, o.scopeTags);
      const expiresAt = o.expiresInDays ? new Date(Date.now() + o.expiresInDays * 86_400_000).toISOString() : null;
      const key = await createApiKey(store.db, { tenantId: tenant.id, displayName: o.name, role: o.role, scopeTagIds: o.scopeTags ?? null, createdBy: 'cli', expiresAt });
      console.log(key.token);
      console.error(`created key ${key.id} (${o.role}${o.scopeTags ? `, scope tags ${o.scopeTags.join(',')}` : ''}) in tenant ${tenant.id}; it will not be shown again`);
    });
  });
keys
  .command('list')
  .description('List API keys of a tenant, one a line: id, role, scope tags (* = every scope), name, created, expires, last used, state. Never their secrets.')
  .option('--tenant <id>', 'tenant id (default: the default tenant)')
  .action(async (o: { tenant?: string }) => {
    await withStore(async (store) => {
      const tenant = await tenantFor(store, o.tenant);
      for (const k of await listApiKeys(store.db, tenant.id)) {
        const state = k.revokedAt ? `revoked ${k.revokedAt}` : k.expiresAt && k.expiresAt <= new Date().toISOString() ? 'expired' : 'active';
        console.log([k.id, k.role, k.scopeTagIds?.join(',') ?? '*', k.displayName, k.createdAt, k.expiresAt ?? '-', k.lastUsedAt ?? '-', state].join('\t'));
      }
    });
  });
keys
  .command('revoke <id>')
  .description('Revoke an API key by id (the part after "oe_", as "keys list" shows it). It stops working at once.')
  .option('--tenant <id>', 'tenant id (default: the default tenant)')
  .action(async (id: string, o: { tenant?: string }) => {
    await withStore(async (store) => {
      const tenant = await tenantFor(store, o.tenant);
      if (!(await revokeApiKey(store.db, tenant.id, id))) throw new TenantError(`no active key ${id} in tenant ${tenant.id}`);
      console.log(`revoked ${id}`);
    });
  });
keys
  .command('rotate-master')
  .description(
    'Add a new master key, make it current and re-encrypt every secret with it. A file keyring (OPENENROLL_MASTER_KEY_FILE or the generated master.key) is updated in place and running servers pick the new key up on their own. With OPENENROLL_MASTER_KEY, pass --keyring-out to write the new keyring, deploy it to every node, then run again with --reencrypt-only.',
  )
  .option('--keyring-out <file>', 'write the new keyring here instead of the configured key file (then deploy it and use --reencrypt-only)')
  .option('--reencrypt-only', 're-encrypt secrets under the current key without adding a key')
  .action(async (o: { keyringOut?: string; reencryptOnly?: boolean }) => {
    const config = loadConfig();
    const keyring = openKeyring(config);
    if (!o.reencryptOnly) {
      const data = keyring.toJSON();
      const { id, key } = newKey();
      const next = { current: id, keys: { ...data.keys, [id]: key.toString('base64') } };
      const inPlace = keyring.source.kind === 'file' && (!o.keyringOut || o.keyringOut === keyring.source.path);
      const target = o.keyringOut ?? (keyring.source.kind === 'file' ? keyring.source.path : undefined);
      if (!target) throw new KeyringError('the master key comes from OPENENROLL_MASTER_KEY: pass --keyring-out <file>');
      writeKeyringFile(target, next);
      console.error(`new master key ${id} written to ${target}`);
      if (!inPlace) {
        // The configured keyring doesn't have the new key yet: re-encrypting now would use the old one.
        console.error('deploy that keyring to every node, then run "openenroll keys rotate-master --reencrypt-only"');
        return;
      }
    }
    await withStore(async (store) => {
      const fresh = openKeyring(config);
      const n = await new SecretStore(fresh).reencryptAll(store);
      console.log(`re-encrypted ${n} secret(s) under master key ${fresh.currentKeyId}`);
    });
  });

const tenants = program.command('tenants').description('Manage tenants. Every object and admin credential belongs to one tenant.');
tenants
  .command('create')
  .description('Create a tenant and print its id; with --admin-key, also an administrator key for it (printed once).')
  .requiredOption('--name <name>', 'display name')
  .option('--oidc-tenant-key <value>', "value of the OIDC tenant claim ('tid' by default) that maps tokens to this tenant")
  .option('--admin-key', 'also create an administrator API key and print it once')
  .action(async (o: { name: string; oidcTenantKey?: string; adminKey?: boolean }) => {
    if (!o.name.trim()) throw new TenantError('--name must not be empty');
    await withStore(async (store) => {
      const t = await createTenant(store, { displayName: o.name.trim(), oidcTenantKey: o.oidcTenantKey ?? null });
      console.log(t.id);
      if (o.adminKey) {
        const key = await createApiKey(store.db, { tenantId: t.id, displayName: 'tenant-admin', role: 'administrator', scopeTagIds: null, createdBy: 'cli' });
        console.log(key.token);
      }
    });
  });
tenants
  .command('list')
  .description('List tenants, one a line: id, name, "default" for the default tenant, OIDC tenant key.')
  .action(async () => {
    await withStore(async (store) => {
      for (const t of await listTenants(store.db)) console.log([t.id, t.displayName, t.isDefault ? 'default' : '', t.oidcTenantKey ?? ''].join('\t'));
    });
  });

const wholeNumber = (max: number) => (v: string) => {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n > max) throw new InvalidArgumentError(`must be a whole number up to ${max}`);
  return n;
};

const sims = program.command('sim').description('Run simulators of the services OpenEnroll talks to, for development and testing.');
sims
  .command('abm')
  .description(
    "Run a simulator of Apple's device assignment service: Apple Business/School Manager (MDM servers, public key, server token, device assignment) and the DEP API of mdmenrollment.apple.com. It starts with one MDM server named OpenEnroll and is driven through its /_sim/ endpoints. State lives in memory; Ctrl-C stops it.",
  )
  .option('--port <n>', 'port to listen on (default: any free port)', wholeNumber(65535))
  .option('--host <address>', 'address to listen on', '127.0.0.1')
  .option('--devices <n>', 'generate this many devices and assign them to the OpenEnroll MDM server', wholeNumber(1_000_000), 0)
  .action(async (o: { port?: number; host: string; devices: number }) => {
    // Lazily: the simulator is a development tool, not part of the server.
    const { startAbmSimulator } = await import('../../sim/apple-dep/index.js');
    const abm = await startAbmSimulator({ port: o.port, host: o.host, logger: true });
    const { serverUuid } = abm.createMdmServer('OpenEnroll');
    if (o.devices) abm.generateDevices(o.devices, { serverUuid });
    const u = abm.url;
    console.log(`ABM/DEP simulator listening on ${u}
MDM server "OpenEnroll": ${serverUuid} (${o.devices} device(s) assigned)

Use ${u} as the DEP API base URL instead of https://mdmenrollment.apple.com. Then, as an admin would in ABM:
  curl -X PUT --data-binary @public-key.pem ${u}/_sim/servers/${serverUuid}/public-key
  curl -X POST -o token.p7m ${u}/_sim/servers/${serverUuid}/token
  curl -X POST -H 'Content-Type: application/json' -d '{"count": 10, "orderNumber": "PO-1"}' ${u}/_sim/devices/generate
  curl -X POST -H 'Content-Type: application/json' -d '{"orderNumber": "PO-1"}' ${u}/_sim/servers/${serverUuid}/devices
Every control endpoint: curl ${u}/_sim/`);
    const stop = () => {
      abm.close().then(() => process.exit(0), () => process.exit(1));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

const collect = (v: string, all: string[]) => [...all, v];
const simDevice = sims.command('device').description('A simulated iPhone, iPad or Mac that enrolls over the wire, as the device would (see sim/apple-device/README.md).');
simDevice
  .command('enroll-ade')
  .description(
    "Enroll through an ADE profile URL: POST the signed MachineInfo (or run the configuration_web_url sign-in), check and install the profile, SCEP, Authenticate, TokenUpdate, then poll the command channel. Each step is printed; a refusal ends with the device's error.",
  )
  .requiredOption('--url <url>', "the ADE profile's url (https)")
  .option('--web-url <url>', "the profile's configuration_web_url: sign in on the web page instead of POSTing")
  .requiredOption('--serial <serial>', 'serial number (as synced from ABM)')
  .option('--platform <platform>', 'iOS, iPadOS or macOS', (v) => {
    if (!['iOS', 'iPadOS', 'macOS'].includes(v)) throw new InvalidArgumentError('must be iOS, iPadOS or macOS');
    return v as 'iOS' | 'iPadOS' | 'macOS';
  }, 'iOS')
  .option('--model <id>', 'hardware identifier, e.g. iPhone15,2 or MacBookPro18,3')
  .option('--os-version <v>', 'OS version')
  .option('--build <build>', 'build version')
  .option('--device-name <name>', 'the name Setup Assistant starts with')
  .option('--udid <udid>', 'UDID (default: a new one)')
  .option('--imei <imei>', 'IMEI (iPhone)')
  .requiredOption('--device-ca-dir <dir>', 'where "sim device-ca create" wrote the device CA (the server trusts it through OPENENROLL_APPLE_DEVICE_CA_FILE)')
  .option('--trust <pem>', "a PEM certificate the device trusts (the server's TLS CA, the profile signer's CA); repeatable", collect, [] as string[])
  .option('--user <upn>', 'user name for the sign-in (password from --password or OPENENROLL_SIM_PASSWORD)')
  .option('--password <password>', 'password for the sign-in')
  .option('--await-configured', "the cloud configuration's await_device_configured: stay in Setup Assistant until DeviceConfigured")
  .option('--lenient', "accept unsigned and unverified profiles (a device shows them as not verified)")
  .option('--poll-every <seconds>', 'keep polling the command channel every n seconds (Ctrl-C stops)', wholeNumber(86_400), 0)
  .action(async (o: Record<string, unknown>) => {
    // Lazily: the simulator is a development tool, not part of the server.
    const { enrollAdeFromCli } = await import('../../sim/apple-device/cli.js');
    await enrollAdeFromCli(o as unknown as Parameters<typeof enrollAdeFromCli>[0]);
  });
sims
  .command('device-ca')
  .description('The simulated "Apple iPhone Device CA" that simulated devices sign MachineInfo with.')
  .command('create')
  .description('Create a device CA in a directory (device-ca.pem, device-ca-key.pem); point OPENENROLL_APPLE_DEVICE_CA_FILE at device-ca.pem.')
  .requiredOption('--out <dir>', 'directory to write to')
  .action(async (o: { out: string }) => {
    const { createDeviceCaFiles } = await import('../../sim/apple-device/cli.js');
    const { certFile, keyFile } = await createDeviceCaFiles(o.out);
    console.log(`device CA certificate: ${certFile}\nprivate key:           ${keyFile}\nStart the server with OPENENROLL_APPLE_DEVICE_CA_FILE=${certFile} so it accepts these devices' MachineInfo.`);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  // Expected failures (configuration, keyring, unknown tenant…) carry a message meant for the operator.
  console.error(`openenroll: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
