import crypto from 'node:crypto';
import { createRemoteJWKSet, customFetch, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { EnrollmentOidcConfig } from '../../config.js';
import type { VerifiedUser } from '../../directory/passwords.js';
import type { Executor } from '../../store/db.js';
import { safeEqual } from './web-signin.js';

/**
 * Single sign-on on the enrollment pages: OpenID Connect authorization code flow with PKCE (S256),
 * state and nonce, against the issuer the admin API already trusts. The id_token is verified with
 * jose against the issuer's JWKS; its user must exist (enabled) in the tenant the page belongs to.
 */

export class OidcSignInError extends Error {
  constructor(
    /** unavailable: the identity provider can't be reached (our problem); refused: this sign-in is not accepted. */
    readonly kind: 'unavailable' | 'refused',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'OidcSignInError';
  }
}

/** What the session keeps between the redirect to the provider and its answer. */
export interface OidcPending {
  state: string;
  nonce: string;
  codeVerifier: string;
}

interface Discovery {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
}

const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const TIMEOUT_MS = 10_000;
const MAX_RESPONSE_BYTES = 256 * 1024;
const trimSlash = (s: string) => s.replace(/\/+$/, '');
const random = () => crypto.randomBytes(32).toString('base64url');

async function readJson(res: Response, what: string): Promise<Record<string, unknown>> {
  const text = await res.text();
  if (text.length > MAX_RESPONSE_BYTES) throw new OidcSignInError('unavailable', `${what} answered with more than ${MAX_RESPONSE_BYTES} bytes.`);
  try {
    const v = JSON.parse(text) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (err) {
    throw new OidcSignInError('unavailable', `${what} did not answer with a JSON object.`, { cause: err });
  }
}

export class EnrollmentOidc {
  private discovered: Promise<{ doc: Discovery; keys: JWTVerifyGetKey }> | undefined;

  constructor(
    readonly config: EnrollmentOidcConfig,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  private provider(): Promise<{ doc: Discovery; keys: JWTVerifyGetKey }> {
    this.discovered ??= (async () => {
      const url = `${trimSlash(this.config.issuer)}/.well-known/openid-configuration`;
      let res: Response;
      try {
        res = await this.fetchImpl(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
      } catch (err) {
        throw new OidcSignInError('unavailable', `OIDC discovery at ${url} failed.`, { cause: err });
      }
      if (!res.ok) throw new OidcSignInError('unavailable', `OIDC discovery at ${url} answered HTTP ${res.status}.`);
      const doc = await readJson(res, 'OIDC discovery');
      if (typeof doc.issuer !== 'string' || trimSlash(doc.issuer) !== trimSlash(this.config.issuer)) {
        throw new OidcSignInError('unavailable', `OIDC discovery at ${url} names another issuer.`);
      }
      for (const k of ['authorization_endpoint', 'token_endpoint', 'jwks_uri'] as const) {
        if (typeof doc[k] !== 'string' || !/^https?:\/\//.test(doc[k])) throw new OidcSignInError('unavailable', `OIDC discovery at ${url} has no ${k}.`);
      }
      const d = doc as unknown as Discovery;
      const keys = createRemoteJWKSet(new URL(d.jwks_uri), { timeoutDuration: TIMEOUT_MS, cooldownDuration: 30_000, [customFetch]: this.fetchImpl });
      return { doc: d, keys };
    })().catch((err: unknown) => {
      this.discovered = undefined; // try discovery again next time
      throw err;
    });
    return this.discovered;
  }

  /** Where to send the browser, and what the session must remember to check the answer. */
  async begin(redirectUri: string, loginHint?: string): Promise<{ url: string; pending: OidcPending }> {
    const { doc } = await this.provider();
    const pending: OidcPending = { state: random(), nonce: random(), codeVerifier: random() };
    const url = new URL(doc.authorization_endpoint);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('client_id', this.config.clientId);
    url.searchParams.set('redirect_uri', redirectUri);
    url.searchParams.set('scope', this.config.scopes);
    url.searchParams.set('state', pending.state);
    url.searchParams.set('nonce', pending.nonce);
    url.searchParams.set('code_challenge', crypto.createHash('sha256').update(pending.codeVerifier).digest('base64url'));
    url.searchParams.set('code_challenge_method', 'S256');
    if (loginHint) url.searchParams.set('login_hint', loginHint);
    return { url: url.href, pending };
  }

  /** Checks state, exchanges the code (with the PKCE verifier) and verifies the id_token; its claims. */
  async complete(answer: { code?: string | undefined; state?: string | undefined; error?: string | undefined }, pending: OidcPending, redirectUri: string): Promise<JWTPayload> {
    if (!answer.state || !safeEqual(answer.state, pending.state)) throw new OidcSignInError('refused', 'The sign-in answer does not belong to this session.');
    if (answer.error) throw new OidcSignInError('refused', 'The identity provider did not sign you in.');
    if (!answer.code || answer.code.length > 4096) throw new OidcSignInError('refused', 'The identity provider sent no authorization code.');
    const { doc, keys } = await this.provider();
    const form = new URLSearchParams({ grant_type: 'authorization_code', code: answer.code, redirect_uri: redirectUri, code_verifier: pending.codeVerifier, client_id: this.config.clientId });
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    if (this.config.clientSecret) {
      headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(this.config.clientId)}:${encodeURIComponent(this.config.clientSecret)}`).toString('base64')}`;
    }
    let res: Response;
    try {
      res = await this.fetchImpl(doc.token_endpoint, { method: 'POST', headers, body: form.toString(), signal: AbortSignal.timeout(TIMEOUT_MS) });
    } catch (err) {
      throw new OidcSignInError('unavailable', 'The identity provider could not be reached.', { cause: err });
    }
    const body = await readJson(res, 'The token endpoint');
    // invalid_grant and friends: the code was used, expired or isn't ours.
    if (!res.ok) throw new OidcSignInError(res.status >= 500 ? 'unavailable' : 'refused', 'The identity provider refused the sign-in.');
    if (typeof body.id_token !== 'string') throw new OidcSignInError('refused', 'The identity provider returned no id_token.');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(body.id_token, keys, {
        issuer: doc.issuer,
        audience: this.config.clientId,
        algorithms: ALGORITHMS,
        requiredClaims: ['exp', 'iat', 'sub'],
        clockTolerance: 60,
      }));
    } catch (err) {
      throw new OidcSignInError('refused', 'The id_token is not valid for this sign-in.', { cause: err });
    }
    if (typeof payload.nonce !== 'string' || !safeEqual(payload.nonce, pending.nonce)) throw new OidcSignInError('refused', 'The id_token does not belong to this sign-in.');
    // OIDC Core §3.1.3.7: with several audiences, azp must be us.
    if (Array.isArray(payload.aud) && payload.aud.length > 1 && payload.azp !== this.config.clientId) throw new OidcSignInError('refused', 'The id_token was issued to another client.');
    return payload;
  }
}

/**
 * The tenant's enabled user the claims name (upn, preferred_username or email), provided the
 * token's tenant claim maps to this tenant as it does for admin tokens; null otherwise.
 */
export async function userForOidcClaims(db: Executor, tenantId: string, claims: JWTPayload, tenantClaim: string): Promise<VerifiedUser | null> {
  const tenantKey = claims[tenantClaim];
  if (typeof tenantKey !== 'string' || tenantKey === '') return null;
  const tenant = await db.selectFrom('tenants').select(['id', 'oidc_tenant_key']).where('id', '=', tenantId).executeTakeFirst();
  if (!tenant || (tenant.oidc_tenant_key ? tenant.oidc_tenant_key !== tenantKey : tenant.id !== tenantKey)) return null;
  const name = [claims.upn, claims.preferred_username, claims.email].find((v): v is string => typeof v === 'string' && v.length > 0 && v.length <= 256);
  if (!name) return null;
  const row = await db
    .selectFrom('users')
    .select(['id', 'user_principal_name', 'display_name', 'account_enabled', 'force_change_password'])
    .where('tenant_id', '=', tenantId)
    .where('upn_lower', '=', name.trim().toLowerCase())
    .executeTakeFirst();
  if (!row || row.account_enabled !== 1) return null;
  return { id: row.id, userPrincipalName: row.user_principal_name, displayName: row.display_name, forceChangePasswordNextSignIn: row.force_change_password === 1 };
}
