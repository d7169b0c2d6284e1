import crypto from 'node:crypto';
import { fc, test as fcTest } from '@fast-check/vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyError, createApiKey, listApiKeys, revokeApiKey, verifyApiKey } from '../../src/auth/api-keys.js';
import type { ManualClock } from '../../src/shared/time.js';
import { createTestApp, type TestApp } from '../helpers/app.js';

const TAGS = '/beta/deviceManagement/roleScopeTags';
const secretOf = (token: string) => token.split('_').slice(2).join('_');
const idOf = (token: string) => token.split('_')[1]!;

describe('admin API keys', () => {
  let t: TestApp;
  let clock: ManualClock;
  beforeAll(async () => {
    t = await createTestApp();
    clock = t.clock as ManualClock;
  });
  afterAll(async () => t.close());

  async function expect401(res: Awaited<ReturnType<TestApp['request']>>, message: RegExp) {
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="OpenEnroll"/);
    const body = res.json();
    expect(body.error).toMatchObject({ code: 'Unauthorized', message: expect.stringMatching(message) });
    expect(body.error.innerError['request-id']).toBe(res.headers['request-id']);
  }

  it('creates oe_<id>_<secret> tokens that verify to their principal', async () => {
    const created = await createApiKey(t.store.db, { tenantId: t.tenantId, displayName: 'ops', role: 'readOnlyOperator', scopeTagIds: null, createdBy: 'test' });
    expect(created.token).toMatch(/^oe_[a-z0-9]{16}_[A-Za-z0-9_-]{43}$/);
    expect(created.token.startsWith(`oe_${created.id}_`)).toBe(true);
    expect(await verifyApiKey(t.store.db, created.token, clock.now())).toEqual({
      kind: 'apiKey',
      id: created.id,
      displayName: 'ops',
      tenantId: t.tenantId,
      role: 'readOnlyOperator',
      scopeTagIds: null,
    });
  });

  it('stores only a SHA-256 of the secret: the secret appears nowhere in the row', async () => {
    const { id, token } = await createApiKey(t.store.db, { tenantId: t.tenantId, displayName: 'hashed', role: 'administrator', scopeTagIds: null });
    const row = await t.store.db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    const secret = secretOf(token);
    const text = JSON.stringify(row);
    for (const form of [secret, Buffer.from(secret, 'base64url').toString('hex'), Buffer.from(secret, 'base64url').toString('base64'), token]) {
      expect(text).not.toContain(form);
    }
    expect(row.secret_hash).toBe(crypto.createHash('sha256').update(secret).digest('hex'));
  });

  it('sets the principal from the key: role, scope tags and tenant', async () => {
    const scoped = await t.createKey('administrator', ['0']);
    const res = await t.request({ method: 'POST', url: TAGS, key: scoped, payload: { displayName: 'Made by scoped admin' } });
    expect(res.statusCode).toBe(201);
    const events = await t.store.db.selectFrom('audit_events').selectAll().where('resource_id', '=', res.json().id).execute();
    expect(events).toHaveLength(1);
    expect(events[0]!.tenant_id).toBe(t.tenantId);
    expect(events[0]!.actor_id).toBe(idOf(scoped));
    expect(JSON.parse(events[0]!.actor)).toMatchObject({
      applicationId: idOf(scoped),
      userPermissions: ['administrator'],
      userRoleScopeTags: [{ roleScopeTagId: '0' }],
    });
  });

  it("acts in its own tenant only: another tenant's key neither sees nor revokes this tenant's objects", async () => {
    const other = await t.createTenant('Fabrikam');
    const created = await t.request({ method: 'POST', url: TAGS, key: other.adminKey, payload: { displayName: 'Fabrikam only' } });
    expect(created.statusCode).toBe(201);
    const mine = await t.request({ method: 'GET', url: TAGS });
    expect(mine.json().value.map((v: { displayName: string }) => v.displayName)).not.toContain('Fabrikam only');
    const theirs = await t.request({ method: 'GET', url: TAGS, key: other.adminKey });
    expect(theirs.json().value.map((v: { displayName: string }) => v.displayName)).toEqual(['Default', 'Fabrikam only']);
    const key = await t.createKey('readOnlyOperator');
    expect(await revokeApiKey(t.store.db, other.tenantId, idOf(key), clock.now())).toBe(false);
    expect((await t.request({ method: 'GET', url: TAGS, key })).statusCode).toBe(200);
  });

  it('accepts a valid key on an admin route', async () => {
    expect((await t.request({ method: 'GET', url: TAGS })).statusCode).toBe(200);
  });

  it('refuses a missing Authorization header', async () => {
    await expect401(await t.request({ method: 'GET', url: TAGS, key: null }), /Access token is empty/);
  });

  it('refuses the right id with a wrong secret', async () => {
    const key = await t.createKey('administrator');
    const wrong = `oe_${idOf(key)}_${crypto.randomBytes(32).toString('base64url')}`;
    const res = await t.request({ method: 'GET', url: TAGS, key: wrong });
    await expect401(res, /API key is invalid, expired or revoked/);
    expect(res.headers['www-authenticate']).toContain('error="invalid_token"');
  });

  it('refuses an unknown id', async () => {
    const key = await t.createKey('administrator');
    await expect401(await t.request({ method: 'GET', url: TAGS, key: `oe_${'z'.repeat(16)}_${secretOf(key)}` }), /API key is invalid/);
  });

  it.each([
    ['a truncated secret', (k: string) => k.slice(0, -1)],
    ['an extra character', (k: string) => `${k}A`],
    ['an upper-case id', (k: string) => `oe_${idOf(k).toUpperCase()}_${secretOf(k)}`],
    ['no secret', (k: string) => `oe_${idOf(k)}_`],
    ['just the prefix', () => 'oe_'],
    ['a random string', () => 'definitely-not-a-key'],
    ['something JWT-shaped with no OIDC configured', () => 'a.b.c'],
  ])('refuses a malformed token: %s', async (_name, mangle) => {
    const key = await t.createKey('administrator');
    await expect401(await t.request({ method: 'GET', url: TAGS, key: mangle(key) }), /API key|not an OpenEnroll API key/);
  });

  it.each([
    ['Basic credentials', (k: string) => `Basic ${Buffer.from(`x:${k}`).toString('base64')}`],
    ['the bare token', (k: string) => k],
    ['two tokens', (k: string) => `Bearer ${k} ${k}`],
    ['an empty bearer', () => 'Bearer '],
  ])('refuses an Authorization header with %s', async (_name, header) => {
    const key = await t.createKey('administrator');
    await expect401(await t.request({ method: 'GET', url: TAGS, key: null, headers: { authorization: header(key) } }), /Bearer <token>/);
  });

  it('accepts the scheme in any case', async () => {
    const res = await t.request({ method: 'GET', url: TAGS, key: null, headers: { authorization: `bearer ${t.adminKey}` } });
    expect(res.statusCode).toBe(200);
  });

  it('refuses a revoked key at once, and revoking twice reports nothing to revoke', async () => {
    const key = await t.createKey('administrator');
    expect((await t.request({ method: 'GET', url: TAGS, key })).statusCode).toBe(200);
    expect(await revokeApiKey(t.store.db, t.tenantId, idOf(key), clock.now())).toBe(true);
    await expect401(await t.request({ method: 'GET', url: TAGS, key }), /revoked/);
    expect(await revokeApiKey(t.store.db, t.tenantId, idOf(key), clock.now())).toBe(false);
    const info = (await listApiKeys(t.store.db, t.tenantId)).find((k) => k.id === idOf(key))!;
    expect(info.revokedAt).toBe(clock.now().toISOString());
  });

  it('expires at expiresAt: valid 1 ms before, refused at that instant', async () => {
    const expiresAt = new Date(clock.now().getTime() + 60_000);
    const { token } = await createApiKey(t.store.db, { tenantId: t.tenantId, displayName: 'short', role: 'administrator', scopeTagIds: null, expiresAt: expiresAt.toISOString() });
    clock.set(expiresAt.getTime() - 1);
    expect((await t.request({ method: 'GET', url: TAGS, key: token })).statusCode).toBe(200);
    clock.set(expiresAt);
    await expect401(await t.request({ method: 'GET', url: TAGS, key: token }), /expired/);
    clock.advance(60_000);
    await expect401(await t.request({ method: 'GET', url: TAGS, key: token }), /expired/);
  });

  it('records last use, at most once a minute', async () => {
    const key = await t.createKey('readOnlyOperator');
    const lastUsed = async () => (await t.store.db.selectFrom('api_keys').select('last_used_at').where('id', '=', idOf(key)).executeTakeFirstOrThrow()).last_used_at;
    expect(await lastUsed()).toBeNull();
    const first = clock.now().toISOString();
    await t.request({ method: 'GET', url: TAGS, key });
    expect(await lastUsed()).toBe(first);
    clock.advance(60_000);
    await t.request({ method: 'GET', url: TAGS, key });
    expect(await lastUsed()).toBe(first);
    clock.advance(1);
    await t.request({ method: 'GET', url: TAGS, key });
    expect(await lastUsed()).toBe(clock.now().toISOString());
    // A refused request doesn't count as use.
    const before = await lastUsed();
    clock.advance(120_000);
    await t.request({ method: 'GET', url: TAGS, key: `oe_${idOf(key)}_${crypto.randomBytes(32).toString('base64url')}` });
    expect(await lastUsed()).toBe(before);
  });

  it('refuses a key whose stored role is not a role (edited by hand)', async () => {
    const key = await t.createKey('readOnlyOperator');
    await t.store.db.updateTable('api_keys').set({ role: 'superuser' }).where('id', '=', idOf(key)).execute();
    await expect401(await t.request({ method: 'GET', url: TAGS, key }), /invalid/);
  });

  it('will not create a scoped administrator key without scope tags', async () => {
    for (const scopeTagIds of [null, []]) {
      await expect(createApiKey(t.store.db, { tenantId: t.tenantId, displayName: 'x', role: 'scopedAdministrator', scopeTagIds })).rejects.toThrow(ApiKeyError);
    }
  });

  it('lists keys without any secret', async () => {
    const { id, token } = await createApiKey(t.store.db, { tenantId: t.tenantId, displayName: 'listed', role: 'scopedAdministrator', scopeTagIds: ['0'] });
    const list = await listApiKeys(t.store.db, t.tenantId);
    expect(list.find((k) => k.id === id)).toMatchObject({ displayName: 'listed', role: 'scopedAdministrator', scopeTagIds: ['0'], revokedAt: null });
    expect(JSON.stringify(list)).not.toContain(secretOf(token));
    expect(JSON.stringify(list)).not.toContain('secret_hash');
  });

  fcTest.prop([fc.nat(42), fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_')], { numRuns: 30 })(
    'refuses every one-character change of a valid secret',
    async (at, ch) => {
      const secret = secretOf(t.adminKey);
      fc.pre(secret[at] !== ch);
      const mangled = `oe_${idOf(t.adminKey)}_${secret.slice(0, at)}${ch}${secret.slice(at + 1)}`;
      expect(await verifyApiKey(t.store.db, mangled, clock.now())).toBeUndefined();
    },
  );
});
