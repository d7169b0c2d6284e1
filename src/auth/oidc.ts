import { createRemoteJWKSet, customFetch, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { OidcConfig } from '../config.js';
import type { Executor } from '../store/db.js';
import { isRole, type Principal, type Role } from './principal.js';

/**
 * Bearer JWTs from an OpenID Connect issuer, checked against its JWKS (fetched from the
 * discovery document and cached by jose). The tenant claim must name one of our tenants;
 * app roles map to our roles (`OpenEnroll.Administrator` or the bare role name).
 */

const ROLE_ORDER: Role[] = ['administrator', 'scopedAdministrator', 'readOnlyOperator'];

/** Asymmetric algorithms only: a JWKS never holds a shared secret we'd accept HMAC tokens with. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

export function roleFromClaims(values: unknown): Role | undefined {
  // Some issuers send a single role as a string.
  const list: unknown[] = typeof values === 'string' ? values.split(/\s+/) : Array.isArray(values) ? values : [];
  const held = new Set<Role>();
  for (const v of list) {
    if (typeof v !== 'string') continue;
    const name = v.replace(/^OpenEnroll\./i, '');
    const role = ROLE_ORDER.find((r) => r.toLowerCase() === name.toLowerCase());
    if (role && isRole(role)) held.add(role);
  }
  return ROLE_ORDER.find((r) => held.has(r));
}

/** The issuer's keys can't be fetched: our problem (503), not the caller's token. */
export class OidcUnavailableError extends Error {}

export type OidcVerification = { ok: true; payload: JWTPayload } | { ok: false; reason: string };

const trimSlash = (s: string) => s.replace(/\/+$/, '');

export class OidcVerifier {
  private jwksPromise: Promise<JWTVerifyGetKey> | undefined;

  constructor(
    private readonly config: OidcConfig,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  private keySet(): Promise<JWTVerifyGetKey> {
    this.jwksPromise ??= (async () => {
      let uri = this.config.jwksUri;
      if (!uri) {
        const url = `${trimSlash(this.config.issuer)}/.well-known/openid-configuration`;
        let doc: { issuer?: unknown; jwks_uri?: unknown };
        try {
          const res = await this.fetchImpl(url, { signal: AbortSignal.timeout(5000) });
          if (!res.ok) throw new Error(`HTTP ${res.status}`);
          doc = (await res.json()) as typeof doc;
        } catch (err) {
          throw new OidcUnavailableError(`OIDC discovery at ${url} failed: ${err instanceof Error ? err.message : String(err)}`);
        }
        // OpenID Connect Discovery 1.0 §4.3: the document must be the configured issuer's own.
        if (typeof doc.issuer !== 'string' || trimSlash(doc.issuer) !== trimSlash(this.config.issuer)) {
          throw new OidcUnavailableError(`OIDC discovery at ${url} names issuer ${JSON.stringify(doc.issuer)}, not ${this.config.issuer}`);
        }
        if (typeof doc.jwks_uri !== 'string') throw new OidcUnavailableError(`OIDC discovery at ${url} has no jwks_uri`);
        uri = doc.jwks_uri;
      }
      const jwksUri = uri;
      // Network failures fetching the keys are ours to report (503), never a verdict on the token.
      const fetchKeys = (async (...args: Parameters<typeof fetch>) => {
        try {
          return await this.fetchImpl(...args);
        } catch (err) {
          if (err instanceof Error && err.name === 'TimeoutError') throw err; // jose reports it as JWKSTimeout
          throw new OidcUnavailableError(`the OIDC signing keys at ${jwksUri} could not be fetched: ${err instanceof Error ? err.message : String(err)}`);
        }
      }) as typeof fetch;
      return createRemoteJWKSet(new URL(uri), { timeoutDuration: 5000, cooldownDuration: 30_000, [customFetch]: fetchKeys });
    })().catch((err: unknown) => {
      this.jwksPromise = undefined; // retry discovery on the next request
      throw err;
    });
    return this.jwksPromise;
  }

  /** Checks signature, issuer, audience and lifetime; says why a token is refused. Throws OidcUnavailableError. */
  async verify(token: string): Promise<OidcVerification> {
    const keys = await this.keySet();
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer: this.config.issuer,
        audience: this.config.audience,
        algorithms: ALGORITHMS,
        requiredClaims: ['exp'],
        clockTolerance: 60,
      });
      return { ok: true, payload };
    } catch (err) {
      return { ok: false, reason: this.refusal(err) };
    }
  }

  private refusal(err: unknown): string {
    if (err instanceof OidcUnavailableError) throw err;
    // jose's generic error is only used for a bad JWKS response (not 200, not JSON).
    if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid || (err instanceof errors.JOSEError && err.code === 'ERR_JOSE_GENERIC')) {
      throw new OidcUnavailableError(`the OIDC issuer's signing keys could not be fetched: ${err.message}`);
    }
    if (err instanceof errors.JWTExpired) return 'the token has expired';
    if (err instanceof errors.JWTClaimValidationFailed) {
      switch (err.claim) {
        case 'iss':
          return `the token was not issued by ${this.config.issuer}`;
        case 'aud':
          return `the token's audience is not ${this.config.audience}`;
        case 'nbf':
          return 'the token is not valid yet';
        default:
          return `the token's '${err.claim}' claim is invalid (${err.reason})`;
      }
    }
    if (err instanceof errors.JWSSignatureVerificationFailed || err instanceof errors.JWKSNoMatchingKey) {
      return "the token's signature does not match any signing key of the issuer";
    }
    if (err instanceof errors.JOSEAlgNotAllowed) return "the token's signing algorithm is not accepted";
    return 'the token is malformed';
  }

  /** Maps verified claims to a principal of one of our tenants. */
  async principalFor(db: Executor, payload: JWTPayload): Promise<Principal | { error: string }> {
    const tenantKey = payload[this.config.tenantClaim];
    if (typeof tenantKey !== 'string' || tenantKey === '') return { error: `the token has no '${this.config.tenantClaim}' claim` };
    // An explicit OIDC tenant key wins; a tenant's own id only maps tenants that have no key.
    const tenant =
      (await db.selectFrom('tenants').select('id').where('oidc_tenant_key', '=', tenantKey).executeTakeFirst()) ??
      (await db.selectFrom('tenants').select('id').where('id', '=', tenantKey).where('oidc_tenant_key', 'is', null).executeTakeFirst());
    if (!tenant) return { error: `the token's tenant '${tenantKey}' is not known to this server` };
    const role = roleFromClaims(payload[this.config.rolesClaim]);
    if (!role) return { error: `the token carries no OpenEnroll role in '${this.config.rolesClaim}'` };
    const tags = payload[this.config.scopeTagsClaim];
    let scopeTagIds: string[] | null = null;
    if (tags !== undefined && tags !== null) {
      // A malformed claim must not silently widen the principal to every scope.
      if (!Array.isArray(tags) || !tags.every((t): t is string => typeof t === 'string')) {
        return { error: `the '${this.config.scopeTagsClaim}' claim must be an array of scope tag ids` };
      }
      scopeTagIds = [...new Set(tags)];
    }
    if (role === 'scopedAdministrator' && !scopeTagIds?.length) return { error: `a scoped administrator token must carry scope tags in '${this.config.scopeTagsClaim}'` };
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
