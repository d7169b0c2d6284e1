import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fc, test as fcTest } from '@fast-check/vitest';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OidcVerifier, roleFromClaims } from '../../src/auth/oidc.js';
import { ROLES } from '../../src/auth/principal.js';
import { createTenant } from '../../src/tenancy/service.js';
import { freePort } from '../helpers/pg-cluster.js';
import { createTestApp, type TestApp } from '../helpers/app.js';

const TAGS = '/beta/deviceManagement/roleScopeTags';
const AUDIT = '/beta/deviceManagement/auditEvents';
const AUDIENCE = 'api://openenroll-test';
const TID = 'contoso-tenant-guid';

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

/** A minimal OpenID provider: discovery document and JWKS, counting what is fetched. */
interface Issuer {
  url: string;
  jwksPath: string;
  hits: Record<string, number>;
  keys: KeyPair;
  kid: string;
  close(): Promise<void>;
}

async function startIssuer(opts: { discoveryIssuer?: (url: string) => string; port?: number } = {}): Promise<Issuer> {
  const keys = await generateKeyPair('RS256');
  const kid = crypto.randomUUID();
  const jwk = { ...(await exportJWK(keys.publicKey)), kid, alg: 'RS256', use: 'sig' };
  // A JWKS path nobody could guess: the verifier must learn it from the discovery document.
  const jwksPath = `/keys-${crypto.randomBytes(4).toString('hex')}`;
  const hits: Record<string, number> = {};
  let url = '';
  const server = http.createServer((req, res) => {
    hits[req.url ?? ''] = (hits[req.url ?? ''] ?? 0) + 1;
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') {
      res.end(JSON.stringify({ issuer: opts.discoveryIssuer?.(url) ?? url, jwks_uri: `${url}${jwksPath}`, id_token_signing_alg_values_supported: ['RS256'] }));
    } else if (req.url === jwksPath) {
      res.end(JSON.stringify({ keys: [jwk] }));
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  await new Promise<void>((r) => server.listen(opts.port ?? 0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, jwksPath, hits, keys, kid, close: () => new Promise<void>((r) => server.close(() => r())) };
}

interface TokenOptions {
  claims?: JWTPayload;
  issuer?: string;
  audience?: string | string[];
  expiresAt?: number | string | null;
  notBefore?: number;
  key?: KeyPair['privateKey'] | Uint8Array;
  alg?: string;
  kid?: string;
}

describe('OIDC bearer tokens', () => {
  let issuer: Issuer;
  let t: TestApp;
  let contosoId: string;

  async function token(o: TokenOptions = {}): Promise<string> {
    let jwt = new SignJWT({ tid: TID, roles: ['OpenEnroll.Administrator'], name: 'Adele Vance', upn: 'adele@contoso.test', oid: 'oid-adele', ...o.claims })
      .setProtectedHeader({ alg: o.alg ?? 'RS256', kid: o.kid ?? issuer.kid })
      .setIssuer(o.issuer ?? issuer.url)
      .setAudience(o.audience ?? AUDIENCE)
      .setSubject('sub-adele')
      .setIssuedAt();
    if (o.expiresAt !== null) jwt = jwt.setExpirationTime(o.expiresAt ?? '10m');
    if (o.notBefore !== undefined) jwt = jwt.setNotBefore(o.notBefore);
    return jwt.sign(o.key ?? issuer.keys.privateKey);
  }

  const get = (tok: string, url = TAGS) => t.request({ method: 'GET', url, key: tok });

  beforeAll(async () => {
    issuer = await startIssuer();
    t = await createTestApp({ env: { OPENENROLL_OIDC_ISSUER: issuer.url, OPENENROLL_OIDC_AUDIENCE: AUDIENCE } });
    contosoId = (await createTenant(t.store, { displayName: 'Contoso', oidcTenantKey: TID })).id;
  });
  afterAll(async () => {
    await t.close();
    await issuer.close();
  });

  it('accepts a valid token, in the tenant its tid names, with the role from its roles claim', async () => {
    const tok = await token();
    const created = await t.request({ method: 'POST', url: TAGS, key: tok, payload: { displayName: 'Contoso tag' } });
    expect(created.statusCode).toBe(201);
    // The object landed in Contoso, not in the default tenant.
    const contoso = await get(tok);
    expect(contoso.json().value.map((v: { displayName: string }) => v.displayName)).toEqual(['Default', 'Contoso tag']);
    const byDefaultAdmin = await t.request({ method: 'GET', url: TAGS });
    expect(byDefaultAdmin.json().value.map((v: { displayName: string }) => v.displayName)).not.toContain('Contoso tag');
    const [event] = await t.store.db.selectFrom('audit_events').selectAll().where('resource_id', '=', created.json().id).where('tenant_id', '=', contosoId).execute();
    expect(JSON.parse(event!.actor)).toMatchObject({ userId: 'oid-adele', userPrincipalName: 'adele@contoso.test', userPermissions: ['administrator'], auditActorType: 'itPro' });
  });

  it('learned the JWKS address from the discovery document, fetched once', () => {
    expect(issuer.hits['/.well-known/openid-configuration']).toBe(1);
    expect(issuer.hits[issuer.jwksPath]).toBeGreaterThanOrEqual(1);
  });

  it('maps roles: a read-only operator reads but may not write', async () => {
    const tok = await token({ claims: { roles: ['OpenEnroll.ReadOnlyOperator'] } });
    expect((await get(tok)).statusCode).toBe(200);
    expect((await get(tok, AUDIT)).statusCode).toBe(200);
    const res = await t.request({ method: 'POST', url: TAGS, key: tok, payload: { displayName: 'nope' } });
    expect(res.statusCode).toBe(403);
    expect(res.json().error.message).toMatch(/role 'readOnlyOperator' does not grant 'rbac.write'/);
  });

  it('maps roles: a scoped administrator carries its scope tags and may not read the audit log', async () => {
    const tok = await token({ claims: { roles: ['OpenEnroll.ScopedAdministrator'], scope_tags: ['0'] } });
    expect((await get(tok)).statusCode).toBe(200);
    expect((await get(tok, AUDIT)).statusCode).toBe(403);
  });

  it('scope tags make an administrator scoped: the audit log needs an unscoped principal', async () => {
    const tok = await token({ claims: { scope_tags: ['0'] } });
    const res = await get(tok, AUDIT);
    expect(res.statusCode).toBe(403);
    expect(res.json().error.message).toMatch(/not limited by scope tags/);
  });

  it('maps a tenant with no OIDC key by its own id', async () => {
    const tok = await token({ claims: { tid: t.tenantId } });
    const res = await get(tok);
    expect(res.statusCode).toBe(200);
    expect(res.json().value.map((v: { displayName: string }) => v.displayName)).not.toContain('Contoso tag');
  });

  it("doesn't map a tenant by its id once it has an OIDC tenant key", async () => {
    const res = await get(await token({ claims: { tid: contosoId } }));
    expect(res.statusCode).toBe(403);
  });

  const refusals: [string, () => Promise<string>, number, RegExp][] = [
    ['the wrong audience', () => token({ audience: 'api://someone-else' }), 401, /audience is not api:\/\/openenroll-test/],
    ['the wrong issuer', () => token({ issuer: 'https://evil.example' }), 401, /not issued by http:\/\/127\.0\.0\.1/],
    ['an expired token (beyond the 60 s clock skew)', () => token({ expiresAt: Math.floor(Date.now() / 1000) - 120 }), 401, /has expired/],
    ['a token not valid yet', () => token({ notBefore: Math.floor(Date.now() / 1000) + 600 }), 401, /not valid yet/],
    ['a token without exp', () => token({ expiresAt: null }), 401, /'exp' claim/],
    ['a token signed by another key under the same kid', async () => token({ key: (await generateKeyPair('RS256')).privateKey }), 401, /signature does not match/],
    ['a token signed by a key the issuer never published', async () => token({ key: (await generateKeyPair('RS256')).privateKey, kid: 'other' }), 401, /signature does not match/],
    ['an HS256 token', () => token({ alg: 'HS256', key: crypto.randomBytes(32) }), 401, /algorithm is not accepted|signature/],
    ['a token for a tenant this server does not know', () => token({ claims: { tid: 'fabrikam' } }), 403, /tenant 'fabrikam' is not known/],
    ['a token with no tenant claim', () => token({ claims: { tid: undefined } }), 403, /no 'tid' claim/],
    ['a token with no OpenEnroll role', () => token({ claims: { roles: ['Directory.Reader'] } }), 403, /no OpenEnroll role in 'roles'/],
    ['a token with no roles claim', () => token({ claims: { roles: undefined } }), 403, /no OpenEnroll role/],
    ['a scoped administrator without scope tags', () => token({ claims: { roles: ['ScopedAdministrator'] } }), 403, /must carry scope tags/],
    ['scope tags that are not an array', () => token({ claims: { scope_tags: '0' } }), 403, /'scope_tags' claim must be an array/],
  ];
  it.each(refusals)('refuses %s', async (_name, make, status, message) => {
    const res = await get(await make());
    expect(res.statusCode).toBe(status);
    expect(res.json().error.message).toMatch(message);
    if (status === 401) expect(res.headers['www-authenticate']).toBe('Bearer realm="OpenEnroll", error="invalid_token"');
  });

  it('refuses an unsigned (alg none) token', async () => {
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const unsigned = `${enc({ alg: 'none' })}.${enc({ iss: issuer.url, aud: AUDIENCE, exp: now + 600, tid: TID, roles: ['Administrator'] })}.`;
    const res = await t.request({ method: 'GET', url: TAGS, key: null, headers: { authorization: `Bearer ${unsigned}x` } });
    expect(res.statusCode).toBe(401);
  });

  it('refuses garbage that merely looks like a JWT', async () => {
    const res = await get('aaa.bbb.ccc');
    expect(res.statusCode).toBe(401);
    expect(res.json().error.message).toMatch(/malformed/);
  });

  it('still accepts API keys next to OIDC', async () => {
    expect((await t.request({ method: 'GET', url: TAGS })).statusCode).toBe(200);
  });
});

describe('OIDC issuer problems', () => {
  it('answers 503 (not 401 or 500) when the issuer is unreachable, and retries discovery later', async () => {
    const port = await freePort();
    const t = await createTestApp({ env: { OPENENROLL_OIDC_ISSUER: `http://127.0.0.1:${port}`, OPENENROLL_OIDC_AUDIENCE: AUDIENCE } });
    let issuer: Issuer | undefined;
    try {
      const keys = await generateKeyPair('RS256');
      const tok = await new SignJWT({ tid: TID }).setProtectedHeader({ alg: 'RS256' }).setExpirationTime('5m').sign(keys.privateKey);
      const res = await t.request({ method: 'GET', url: TAGS, key: tok });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBeDefined();
      expect(res.json().error).toMatchObject({ code: 'ServiceUnavailable', message: expect.stringMatching(/identity provider could not be reached/) });
      // Once the issuer is up, the next request discovers it: a failure isn't cached.
      issuer = await startIssuer({ port });
      await createTenant(t.store, { displayName: 'Contoso', oidcTenantKey: TID });
      const good = await new SignJWT({ tid: TID, roles: ['Administrator'] })
        .setProtectedHeader({ alg: 'RS256', kid: issuer.kid })
        .setIssuer(issuer.url)
        .setAudience(AUDIENCE)
        .setExpirationTime('5m')
        .sign(issuer.keys.privateKey);
      expect((await t.request({ method: 'GET', url: TAGS, key: good })).statusCode).toBe(200);
    } finally {
      await t.close();
      await issuer?.close();
    }
  });

  it('refuses a discovery document that names another issuer', async () => {
    const issuer = await startIssuer({ discoveryIssuer: () => 'https://impostor.example' });
    try {
      const verifier = new OidcVerifier({ issuer: issuer.url, audience: AUDIENCE, jwksUri: undefined, tenantClaim: 'tid', rolesClaim: 'roles', scopeTagsClaim: 'scope_tags' });
      await expect(verifier.verify('a.b.c')).rejects.toThrow(/names issuer "https:\/\/impostor.example"/);
    } finally {
      await issuer.close();
    }
  });

  it('uses an explicit JWKS URI without discovery', async () => {
    const issuer = await startIssuer();
    try {
      const verifier = new OidcVerifier({ issuer: issuer.url, audience: AUDIENCE, jwksUri: `${issuer.url}${issuer.jwksPath}`, tenantClaim: 'tid', rolesClaim: 'roles', scopeTagsClaim: 'scope_tags' });
      const tok = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: issuer.kid }).setIssuer(issuer.url).setAudience(AUDIENCE).setExpirationTime('5m').sign(issuer.keys.privateKey);
      expect(await verifier.verify(tok)).toMatchObject({ ok: true });
      expect(issuer.hits['/.well-known/openid-configuration']).toBeUndefined();
    } finally {
      await issuer.close();
    }
  });
});

describe('roleFromClaims', () => {
  it.each([
    [['OpenEnroll.Administrator'], 'administrator'],
    [['openenroll.readonlyoperator'], 'readOnlyOperator'],
    [['ScopedAdministrator'], 'scopedAdministrator'],
    ['OpenEnroll.Administrator', 'administrator'],
    [['OpenEnroll.ReadOnlyOperator', 'OpenEnroll.Administrator'], 'administrator'],
    [['OpenEnroll.ReadOnlyOperator', 'OpenEnroll.ScopedAdministrator'], 'scopedAdministrator'],
    [['Other.Administrator'], undefined],
    [[42, null], undefined],
    [{ role: 'administrator' }, undefined],
    [undefined, undefined],
  ])('%j → %s', (claim, role) => {
    expect(roleFromClaims(claim)).toBe(role);
  });

  fcTest.prop([fc.array(fc.oneof(fc.constantFrom(...ROLES.map((r) => `OpenEnroll.${r}`), ...ROLES), fc.string()))])(
    'gives the strongest role held, or none',
    (claims) => {
      const held = ROLES.filter((r) => claims.some((c) => c.replace(/^OpenEnroll\./i, '').toLowerCase() === r.toLowerCase()));
      const order = ['administrator', 'scopedAdministrator', 'readOnlyOperator'];
      expect(roleFromClaims(claims)).toBe(order.find((r) => (held as string[]).includes(r)));
    },
  );
});
