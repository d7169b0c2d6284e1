import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openStore } from '../../src/server/start.js';
import { api, baseEnv, createDeployment, ensureBuilt, runCli, secretOf, slowPost, startServe, TOKEN, type Deployment, type Server } from './helpers.js';

const TAGS = '/beta/deviceManagement/roleScopeTags';


describe('openenroll serve: first start, bootstrap key, graceful stop', () => {
  let dep: Deployment;
  let first: Server | undefined;
  let second: Server | undefined;
  let bootstrapKey: string;

  beforeAll(async () => {
    await ensureBuilt();
    dep = await createDeployment();
  }, 120_000);
  afterAll(async () => {
    await first?.stop();
    await second?.stop();
    await dep.cleanup();
  });

  it('starts on an empty store and prints a bootstrap key once, in a banner', async () => {
    first = await startServe({ ...dep.env, LOG_LEVEL: 'trace' });
    const listening = first.stdout().split('\n').find((l) => l.includes('"OpenEnroll listening"'));
    const startupMs = listening ? (JSON.parse(listening) as { startupMs: number }).startupMs : undefined;
    // Recorded, not asserted tightly: timing belongs to `npm run bench`.
    console.log(`[${dep.dialect}] openenroll serve on an empty store: listening after ${startupMs} ms (process clock), /healthz answered ${Math.round(first.readyMs)} ms after spawn`);
    expect(first.readyMs).toBeLessThan(10_000);

    const tokens = first.stdout().match(TOKEN) ?? [];
    expect(tokens).toHaveLength(1);
    bootstrapKey = tokens[0]!;
    expect(first.stdout()).toContain('OpenEnroll first start: bootstrap administrator key (shown once, stored hashed)');
    expect(first.stderr()).toBe('');
  });

  it('answers /healthz and accepts the bootstrap key on the admin API', async () => {
    expect((await api(first!, null, 'GET', '/healthz')).status).toBe(200);
    const res = await api(first!, bootstrapKey, 'GET', TAGS);
    expect(res.status).toBe(200);
    expect(res.json().value).toEqual([expect.objectContaining({ id: '0', displayName: 'Default' })]);
    expect((await api(first!, null, 'GET', TAGS)).status).toBe(401);
  });

  it('keeps the key nowhere in clear: not in the store, not in any log line outside the banner', async () => {
    // Traffic carrying the key, logged at trace level.
    expect((await api(first!, bootstrapKey, 'POST', TAGS, { displayName: 'Logged', password: 'hunter2-secret' })).status).toBe(400);
    expect((await api(first!, bootstrapKey, 'POST', TAGS, { displayName: 'Logged' })).status).toBe(201);
    expect((await api(first!, `${bootstrapKey.slice(0, -2)}xx`, 'GET', TAGS)).status).toBe(401);
    const secret = secretOf(bootstrapKey);
    expect(await dep.dumpStore()).not.toContain(secret);

    const lines = first!.stdout().split('\n').filter(Boolean);
    const banner = lines.filter((l) => !l.startsWith('{'));
    const json = lines.filter((l) => l.startsWith('{'));
    for (const l of json) expect(() => JSON.parse(l) as unknown).not.toThrow();
    expect(json.some((l) => l.includes('"incoming request"'))).toBe(true);
    expect(banner.filter((l) => l.includes(secret))).toHaveLength(1);
    expect(banner.every((l) => /^[ =]/.test(l))).toBe(true);
    for (const l of json) {
      expect(l).not.toContain(secret);
      expect(l).not.toContain('hunter2-secret');
    }
    expect(first!.stderr()).not.toContain(secret);
  });

  it('created the default tenant, and in embedded mode a private data dir and a 0600 master key', async () => {
    const store = await openStore(loadConfig(dep.env));
    try {
      const tenants = await store.db.selectFrom('tenants').selectAll().execute();
      expect(tenants).toEqual([expect.objectContaining({ display_name: 'Default', is_default: 1 })]);
      const key = await store.db.selectFrom('api_keys').selectAll().executeTakeFirstOrThrow();
      expect(key).toMatchObject({ tenant_id: tenants[0]!.id, role: 'administrator', created_by: 'bootstrap', scope_tag_ids: null });
    } finally {
      await store.close();
    }
    if (dep.dialect === 'sqlite') {
      const dataDir = dep.env.OPENENROLL_DATA_DIR!;
      expect(fs.statSync(path.join(dataDir, 'master.key')).mode & 0o777).toBe(0o600);
      expect(fs.statSync(dataDir).mode & 0o077).toBe(0);
    }
  });

  it('on SIGTERM finishes the request in flight, refuses new connections, and exits 0 with the store closed', async () => {
    const server = first!;
    const inFlight = slowPost(server, bootstrapKey, { displayName: 'Finished during shutdown' }, async () => {
      server.proc.kill('SIGTERM');
      // The listener closes at once; the request stays open.
      for (let i = 0; i < 50 && !server.stdout().includes('"shutting down"'); i++) await new Promise((r) => setTimeout(r, 20));
      await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
    });
    const res = await inFlight;
    expect(res.status).toBe(201);
    expect(JSON.parse(res.body)).toMatchObject({ displayName: 'Finished during shutdown' });
    expect(await server.exited).toBe(0);
    expect(server.stdout()).toMatch(/"msg":"stopped"/);
    first = undefined;
    if (dep.dialect === 'sqlite') {
      // better-sqlite3 checkpoints and removes the WAL only when the database is closed.
      expect(fs.existsSync(path.join(dep.env.OPENENROLL_DATA_DIR!, 'openenroll.db-wal'))).toBe(false);
    }
    // The request's work was committed.
    const store = await openStore(loadConfig(dep.env));
    try {
      const names = (await store.db.selectFrom('role_scope_tags').select('display_name').execute()).map((r) => r.display_name);
      expect(names).toContain('Finished during shutdown');
    } finally {
      await store.close();
    }
    expect(await dep.dumpStore()).not.toContain(secretOf(bootstrapKey));
  });

  it('prints no key on a second start, and the first key still works', async () => {
    second = await startServe(dep.env);
    expect(second.stdout()).not.toMatch(TOKEN);
    expect(second.stdout()).not.toContain('bootstrap');
    expect((await api(second, bootstrapKey, 'GET', TAGS)).status).toBe(200);
    expect(await second.stop('SIGINT')).toBe(0);
    second = undefined;
  });
});

describe('openenroll serve refuses a bad configuration with a clear error', () => {
  beforeAll(ensureBuilt, 120_000);

  const cases: [string, Record<string, string>, RegExp][] = [
    ['PostgreSQL without a master key', { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' }, /no master key: set OPENENROLL_MASTER_KEY or OPENENROLL_MASTER_KEY_FILE/],
    ['a short master key', { OPENENROLL_MASTER_KEY: 'c2hvcnQ=' }, /OPENENROLL_MASTER_KEY: the master key must be 32 bytes/],
    ['a PORT that is not a port', { PORT: '70000' }, /PORT must be an integer from 0 to 65535/],
    ['an OIDC issuer without audience', { OPENENROLL_OIDC_ISSUER: 'https://login.example/' }, /OPENENROLL_OIDC_AUDIENCE is required/],
    ['no workers', { OPENENROLL_WORKERS: '0' }, /OPENENROLL_WORKERS must be a whole number from 1 to 256, or auto/],
  ];

  it(`for ${cases.map((c) => c[0]).join('; ')}`, async () => {
    const dir = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'openenroll-bad-'));
    try {
      const results = await Promise.all(cases.map(([, env], i) => runCli(['serve'], { ...baseEnv(), OPENENROLL_DATA_DIR: path.join(dir, `data${i}`), ...env })));
      results.forEach((res, i) => {
        const [name, , message] = cases[i]!;
        expect(res.code, name).toBe(1);
        expect(res.stderr, name).toMatch(message);
        expect(res.stderr, name).not.toMatch(/\n\s+at /); // no stack trace
        expect(res.stdout, name).not.toMatch(TOKEN);
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
