import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { parseKeyring } from '../../src/secrets/keyring.js';
import { SecretStore } from '../../src/secrets/secret-store.js';
import { openKeyring, openStore } from '../../src/server/start.js';
import { testDialect } from '../helpers/store.js';
import { api, createDeployment, ensureBuilt, runCli, secretOf, startServe, TOKEN, type Deployment, type Server } from './helpers.js';

const TAGS = '/beta/deviceManagement/roleScopeTags';

describe.runIf(testDialect() === 'sqlite')('openenroll --help', () => {
  beforeAll(ensureBuilt, 120_000);

  const commands: [string[], RegExp[]][] = [
    [[], [/Usage: openenroll/, /serve/, /migrate/, /keys/, /tenants/, /Examples:/]],
    [['serve'], [/Usage: openenroll serve/, /bootstrap admin key/, /PORT .*default 8080/, /OPENENROLL_DATA_DIR .*default \.\/data/, /DATABASE_URL/, /OPENENROLL_MASTER_KEY/, /SIGTERM/]],
    [['migrate'], [/Usage: openenroll migrate/, /migrations/]],
    [['keys'], [/Usage: openenroll keys/, /create/, /list/, /revoke/, /rotate-master/]],
    [['keys', 'create'], [/--role <role>/, /administrator, readOnlyOperator, scopedAdministrator/, /--scope-tags <ids>/, /print it once/, /Examples:/]],
    [['keys', 'list'], [/Usage: openenroll keys list/, /Never their secrets/i, /--tenant/]],
    [['keys', 'revoke'], [/Usage: openenroll keys revoke \[options\] <id>/]],
    [['keys', 'rotate-master'], [/re-encrypt every secret/, /--keyring-out <file>/, /--reencrypt-only/]],
    [['tenants'], [/Usage: openenroll tenants/, /create/, /list/]],
    [['tenants', 'create'], [/--name <name>/, /--oidc-tenant-key/, /--admin-key/]],
    [['tenants', 'list'], [/Usage: openenroll tenants list/]],
  ];

  it('prints useful help for the root and every subcommand', async () => {
    const results = await Promise.all(commands.map(([args]) => runCli([...args, '--help'], { PATH: process.env.PATH ?? '' })));
    results.forEach((res, i) => {
      const [args, patterns] = commands[i]!;
      expect(res.code, args.join(' ')).toBe(0);
      // Commander wraps lines to the terminal width.
      const text = res.stdout.replace(/\s+/g, ' ');
      for (const p of patterns) expect(text, `openenroll ${args.join(' ')} --help`).toMatch(p);
    });
  });

  it('says what is wrong with a bad command line', async () => {
    const [unknown, missing] = await Promise.all([runCli(['frobnicate'], { PATH: '' }), runCli(['keys', 'create'], { PATH: '' })]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown command 'frobnicate'/);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/required option '--role <role>' not specified/);
  });
});

describe('openenroll migrate, tenants and keys against a running server', () => {
  let dep: Deployment;
  let server: Server | undefined;
  let adminToken: string;
  let tenantX: string;
  const cli = (...args: string[]) => runCli(args, dep.env);

  beforeAll(async () => {
    await ensureBuilt();
    dep = await createDeployment();
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    await dep.cleanup();
  });

  it('migrate creates the schema and exits', async () => {
    const res = await cli('migrate');
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`migrations up to date (${dep.dialect})`);
    if (dep.dialect === 'sqlite') expect(fs.existsSync(path.join(dep.env.OPENENROLL_DATA_DIR!, 'openenroll.db'))).toBe(true);
  });

  it('tenants create prints the new id', async () => {
    const res = await cli('tenants', 'create', '--name', 'Tenant X', '--oidc-tenant-key', 'x-tid');
    expect(res.code).toBe(0);
    tenantX = res.stdout.trim();
    expect(tenantX).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('keys create --role administrator prints a token once (creating the default tenant on a fresh store)', async () => {
    const res = await cli('keys', 'create', '--role', 'administrator', '--name', 'ops');
    expect(res.code).toBe(0);
    expect(res.stdout.trim()).toMatch(/^oe_[a-z0-9]{16}_[A-Za-z0-9_-]{43}$/);
    adminToken = res.stdout.trim();
    expect(res.stderr).toMatch(/will not be shown again/);
    expect(res.stderr).not.toContain(secretOf(adminToken));
  });

  it('the key works against `serve` on the same store, which then prints no bootstrap key', async () => {
    server = await startServe(dep.env);
    const res = await api(server, adminToken, 'GET', TAGS);
    expect(res.status).toBe(200);
    expect(server.stdout()).not.toMatch(TOKEN);
    expect(server.stdout()).not.toContain('bootstrap administrator key');
  });

  it('tenants list shows the default tenant and the new one', async () => {
    const res = await cli('tenants', 'list');
    expect(res.code).toBe(0);
    const rows = res.stdout.trim().split('\n').map((l) => l.split('\t'));
    expect(rows).toHaveLength(2);
    expect(rows).toContainEqual([tenantX, 'Tenant X', '', 'x-tid']);
    expect(rows.find((r) => r[2] === 'default')).toBeDefined();
  });

  it('tenants create --admin-key prints a key for the new tenant only', async () => {
    const res = await cli('tenants', 'create', '--name', 'Tenant Z', '--admin-key');
    expect(res.code).toBe(0);
    const [, key] = res.stdout.trim().split('\n');
    expect((await api(server!, key!, 'POST', TAGS, { displayName: 'Z only' })).status).toBe(201);
    const defaultTags = (await api(server!, adminToken, 'GET', TAGS)).json().value as { displayName: string }[];
    expect(defaultTags.map((t) => t.displayName)).not.toContain('Z only');
  });

  it('keys create refuses a scoped administrator without --scope-tags, an unknown role, tag or tenant; tenants create a taken OIDC key', async () => {
    const [noTags, badRole, badTag, badTenant, dupTenant] = await Promise.all([
      cli('keys', 'create', '--role', 'scopedAdministrator'),
      cli('keys', 'create', '--role', 'root'),
      cli('keys', 'create', '--role', 'scopedAdministrator', '--scope-tags', '99'),
      cli('keys', 'create', '--role', 'administrator', '--tenant', 'no-such-tenant'),
      cli('tenants', 'create', '--name', 'Tenant Y', '--oidc-tenant-key', 'x-tid'),
    ]);
    expect(dupTenant.code).toBe(1);
    expect(dupTenant.stderr).toMatch(/already exists/);
    expect(noTags.code).toBe(1);
    expect(noTags.stderr).toMatch(/scopedAdministrator key needs --scope-tags/);
    expect(badRole.code).toBe(1);
    expect(badRole.stderr).toMatch(/role must be one of: administrator, readOnlyOperator, scopedAdministrator/);
    expect(badTag.code).toBe(1);
    expect(badTag.stderr).toMatch(/unknown scope tag '99'/);
    expect(badTenant.code).toBe(1);
    expect(badTenant.stderr).toMatch(/tenant no-such-tenant not found/);
    for (const r of [noTags, badRole, badTag, badTenant]) expect(r.stdout).not.toMatch(TOKEN);
  });

  it('a scoped administrator key from the CLI is limited by its role and tags', async () => {
    const res = await cli('keys', 'create', '--role', 'scopedAdministrator', '--scope-tags', '0', '--expires-in-days', '30');
    expect(res.code).toBe(0);
    const key = res.stdout.trim();
    expect((await api(server!, key, 'GET', TAGS)).status).toBe(200);
    expect((await api(server!, key, 'POST', TAGS, { displayName: 'nope' })).status).toBe(403);
    expect((await api(server!, key, 'GET', '/beta/deviceManagement/auditEvents')).status).toBe(403);
  });

  it('keys list shows every key without secrets', async () => {
    const res = await cli('keys', 'list');
    expect(res.code).toBe(0);
    const rows = res.stdout.trim().split('\n').map((l) => l.split('\t'));
    expect(rows).toHaveLength(2);
    const admin = rows.find((r) => adminToken.startsWith(`oe_${r[0]}_`))!;
    expect(admin.slice(1, 4)).toEqual(['administrator', '*', 'ops']);
    expect(admin[7]).toBe('active');
    // The server recorded the use.
    expect(admin[6]).toMatch(/^\d{4}-\d\d-\d\dT/);
    const scoped = rows.find((r) => r !== admin)!;
    expect(scoped.slice(1, 3)).toEqual(['scopedAdministrator', '0']);
    expect(scoped[5]).toMatch(/^\d{4}-/);
    expect(res.stdout).not.toContain(secretOf(adminToken));
    expect(res.stdout).not.toMatch(TOKEN);
  });

  it('keys revoke stops the key at once on the running server', async () => {
    const made = await cli('keys', 'create', '--role', 'readOnlyOperator');
    const key = made.stdout.trim();
    expect((await api(server!, key, 'GET', TAGS)).status).toBe(200);
    const id = key.split('_')[1]!;
    const res = await cli('keys', 'revoke', id);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`revoked ${id}`);
    expect((await api(server!, key, 'GET', TAGS)).status).toBe(401);
    const again = await cli('keys', 'revoke', id);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no active key/);
    expect((await cli('keys', 'list')).stdout).toMatch(new RegExp(`^${id}\\t.*\\trevoked \\d{4}-`, 'm'));
  });

  it('keys rotate-master adds a key, re-encrypts every secret, and the running server keeps working', async () => {
    const config = loadConfig(dep.env);
    const keyFile = dep.env.OPENENROLL_MASTER_KEY_FILE ?? path.join(config.dataDir, 'master.key');
    const before = parseKeyring(fs.readFileSync(keyFile, 'utf8'));
    expect(Object.keys(before.keys)).toHaveLength(1);
    // A secret under the old key, written as the server would.
    const store = await openStore(config);
    let secretId: string;
    let tenantId: string;
    try {
      tenantId = (await store.db.selectFrom('tenants').select('id').where('is_default', '=', 1).executeTakeFirstOrThrow()).id;
      secretId = await new SecretStore(openKeyring(config)).put(store.db, tenantId, 'token', 'the secret value');
    } finally {
      await store.close();
    }

    const res = await cli('keys', 'rotate-master');
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/re-encrypted 1 secret\(s\) under master key /);

    const after = parseKeyring(fs.readFileSync(keyFile, 'utf8'));
    expect(Object.keys(after.keys)).toHaveLength(2);
    expect(after.current).not.toBe(before.current);
    expect(after.keys[before.current]).toBe(before.keys[before.current]);
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);

    const store2 = await openStore(config);
    try {
      const row = await store2.db.selectFrom('secrets').selectAll().where('id', '=', secretId).executeTakeFirstOrThrow();
      expect(row.key_id).toBe(after.current);
      expect(row.ciphertext.startsWith(`v1.${after.current}.`)).toBe(true);
      expect(await new SecretStore(openKeyring(config)).getText(store2.db, tenantId, secretId)).toBe('the secret value');
    } finally {
      await store2.close();
    }
    expect((await api(server!, adminToken, 'GET', TAGS)).status).toBe(200);
    expect((await api(server!, adminToken, 'POST', TAGS, { displayName: 'after rotation' })).status).toBe(201);
  });

  it('rotate-master with --keyring-out leaves the configured keyring alone and re-encrypts nothing yet', async () => {
    const config = loadConfig(dep.env);
    const keyFile = dep.env.OPENENROLL_MASTER_KEY_FILE ?? path.join(config.dataDir, 'master.key');
    const current = fs.readFileSync(keyFile, 'utf8');
    const out = path.join(dep.dir, 'next.keyring');
    const res = await cli('keys', 'rotate-master', '--keyring-out', out);
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/deploy that keyring to every node/);
    expect(res.stdout).not.toMatch(/re-encrypted/);
    expect(fs.readFileSync(keyFile, 'utf8')).toBe(current);
    expect(Object.keys(parseKeyring(fs.readFileSync(out, 'utf8')).keys)).toHaveLength(3);
    expect(fs.statSync(out).mode & 0o777).toBe(0o600);
  });

  it('the server stops gracefully', async () => {
    expect(await server!.stop()).toBe(0);
    server = undefined;
  });
});
