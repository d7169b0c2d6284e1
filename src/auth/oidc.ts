import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { OidcConfig } from '../config.js';
import type { Executor } from '../store/db.js';
import { isRole, type Principal, type Role } from './principal.js';

/**
 * Bearer JWTs from an OpenID Connect issuer, checked against its JWKS (fetched from the
 * discovery document and cached by jose). The tenant claim must name one of our tenants;
 * app roles map to our roles (`OpenEnroll.Administrator` or the bare role name).
 */

const ROLE_ORDER: Role[] = ['administrator', 'scopedAdministrator', 'readOnlyOperator'];

export function roleFromClaims(values: unknown): Role | undefined {
  if (!Array.isArray(values)) return undefined;
  const held = new Set<Role>();
  for (const v of values) {
    if (typeof v !== 'string') continue;
    const name = v.replace(/^OpenEnroll\./i, '');
    const role = ROLE_ORDER.find((r) => r.toLowerCase() === name.toLowerCase());
    if (role && isRole(role)) held.add(role);
  }
  return ROLE_ORDER.find((r) => held.has(r));
}

export class OidcVerifier {
  private jwks: JWTVerifyGetKey | undefined;
  private jwksPromise: Promise<JWTVerifyGetKey> | undefined;

  constructor(
    private readonly config: OidcConfig,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  private async keySet(): Promise<JWTVerifyGetKey> {
    if (this.jwks) return this.jwks;
    this.jwksPromise ??= (async () => {
      let uri = this.config.jwksUri;
      if (!uri) {
        const url = `${this.config.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
        const res = await this.fetchImpl(url, { signal: AbortSignal.timeout(5000) });
        if (!res.ok) throw new Error(`OIDC discovery failed: ${res.status} from ${url}`);
        const doc = (await res.json()) as { jwks_uri?: unknown };
        if (typeof doc.jwks_uri !== 'string') throw new Error('OIDC discovery document has no jwks_uri');
        uri = doc.jwks_uri;
      }
      this.jwks = createRemoteJWKSet(new URL(uri), { timeoutDuration: 5000, cooldownDuration: 30_000 });
      return this.jwks;
    })().catch((err: unknown) => {
      this.jwksPromise = undefined; // retry discovery on the next request
      throw err;
    });
    return this.jwksPromise;
  }

  /** The verified payload, or undefined when the token is not valid for this server. */
  async verify(token: string): Promise<JWTPayload | undefined> {
    const keys = await this.keySet();
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer: this.config.issuer,
        audience: this.config.audience,
        clockTolerance: 60,
      });
      return payload;
    } catch {
      return undefined;
    }
  }

  /** Maps verified claims to a principal of one of our tenants. */
  async principalFor(db: Executor, payload: JWTPayload): Promise<Principal | { error: string }> {
    const tenantKey = payload[this.config.tenantClaim];
    if (typeof tenantKey !== 'string' || tenantKey === '') return { error: `the token has no '${this.config.tenantClaim}' claim` };
    const tenant = await db
      .selectFrom('tenants')
      .select('id')
      .where((eb) => eb.or([eb('oidc_tenant_key', '=', tenantKey), eb('id', '=', tenantKey)]))
      .executeTakeFirst();
    if (!tenant) return { error: 'the token is for a tenant this server does not know' };
    const role = roleFromClaims(payload[this.config.rolesClaim]);
    if (!role) return { error: `the token carries no OpenEnroll role in '${this.config.rolesClaim}'` };
    const tags = payload[this.config.scopeTagsClaim];
    const scopeTagIds = Array.isArray(tags) ? tags.filter((t): t is string => typeof t === 'string') : null;
    if (role === 'scopedAdministrator' && !scopeTagIds) return { error: 'a scoped administrator token must carry scope tags' };
    const upn = [payload.upn, payload.preferred_username, payload.email].find((v): v is string => typeof v === 'string');
    return {
      kind: 'oidc',
      id: String(payload.oid ?? payload.sub ?? 'unknown'),
      displayName: typeof payload.name === 'string' ? payload.name : upn ?? String(payload.sub),
      tenantId: tenant.id,
      role,
      scopeTagIds,
      ...(upn ? { userPrincipalName: upn } : {}),
    };
  }
}
