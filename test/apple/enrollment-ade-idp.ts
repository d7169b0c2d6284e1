import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';

/**
 * A minimal OpenID Connect provider for the enrollment sign-in tests (an identity provider is a
 * peer we can't reach in CI): discovery, JWKS, and a token endpoint that checks the code, the
 * redirect URI, the client and the PKCE verifier. `authorize` stands in for the user signing in at
 * the provider: it returns the redirect back to us with a code.
 */
export interface TestIdp {
  issuer: string;
  clientId: string;
  /** The user signs in as `claims`; returns the callback URL the browser is sent to. */
  authorize(authorizationUrl: string, claims: JWTPayload, opts?: { nonce?: string; audience?: string }): string;
  tokenRequests: number;
  close(): Promise<void>;
}

export async function startTestIdp(clientId = 'openenroll-enrollment'): Promise<TestIdp> {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'test-key', alg: 'RS256', use: 'sig' };
  const codes = new Map<string, { challenge: string; redirectUri: string; clientId: string; claims: JWTPayload; nonce: string; audience: string }>();
  let issuer = '';
  const idp: TestIdp = {
    issuer: '',
    clientId,
    tokenRequests: 0,
    authorize(authorizationUrl, claims, opts = {}) {
      const u = new URL(authorizationUrl);
      const p = u.searchParams;
      if (p.get('response_type') !== 'code' || p.get('code_challenge_method') !== 'S256' || !p.get('code_challenge') || !p.get('state') || !p.get('nonce')) {
        throw new Error(`not an authorization code request with PKCE: ${authorizationUrl}`);
      }
      const code = crypto.randomBytes(16).toString('hex');
      codes.set(code, {
        challenge: p.get('code_challenge')!,
        redirectUri: p.get('redirect_uri')!,
        clientId: p.get('client_id')!,
        claims,
        nonce: opts.nonce ?? p.get('nonce')!,
        audience: opts.audience ?? p.get('client_id')!,
      });
      const back = new URL(p.get('redirect_uri')!);
      back.searchParams.set('code', code);
      back.searchParams.set('state', p.get('state')!);
      return back.href;
    },
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && url.pathname === '/.well-known/openid-configuration') {
      return json(200, { issuer, authorization_endpoint: `${issuer}/authorize`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks` });
    }
    if (req.method === 'GET' && url.pathname === '/jwks') return json(200, { keys: [jwk] });
    if (req.method === 'POST' && url.pathname === '/token') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        idp.tokenRequests++;
        const f = new URLSearchParams(body);
        const grant = codes.get(f.get('code') ?? '');
        codes.delete(f.get('code') ?? '');
        const verifier = f.get('code_verifier') ?? '';
        if (
          !grant ||
          f.get('grant_type') !== 'authorization_code' ||
          f.get('redirect_uri') !== grant.redirectUri ||
          f.get('client_id') !== grant.clientId ||
          crypto.createHash('sha256').update(verifier).digest('base64url') !== grant.challenge
        ) {
          return json(400, { error: 'invalid_grant' });
        }
        void new SignJWT({ ...grant.claims, nonce: grant.nonce })
          .setProtectedHeader({ alg: 'RS256', kid: 'test-key' })
          .setIssuer(issuer)
          .setAudience(grant.audience)
          .setSubject(String(grant.claims.sub ?? crypto.randomUUID()))
          .setIssuedAt()
          .setExpirationTime('5m')
          .sign(privateKey)
          .then((idToken) => json(200, { access_token: 'unused', token_type: 'Bearer', id_token: idToken }));
      });
      return undefined;
    }
    return json(404, { error: 'not_found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  idp.issuer = issuer;
  return idp;
}
