import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * OAuth 1.0a (RFC 5849) as Apple's `GET /session` uses it: HMAC-SHA1 over the signature base string,
 * parameters in the `Authorization: OAuth ...` header. The verifier is the simulator's; the signer is
 * a small independent helper for tests (the product has its own client).
 */

/** RFC 3986 unreserved-only percent-encoding (RFC 5849 §3.6). */
export function oauthEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** `scheme://host[:port]/path` with the default port dropped and scheme/host lower-cased (RFC 5849 §3.4.1.2). */
export function baseStringUri(url: URL): string {
  const scheme = url.protocol.replace(/:$/, '').toLowerCase();
  const defaultPort = (scheme === 'http' && url.port === '80') || (scheme === 'https' && url.port === '443');
  const port = url.port && !defaultPort ? `:${url.port}` : '';
  return `${scheme}://${url.hostname.toLowerCase()}${port}${url.pathname || '/'}`;
}

/** The signature base string from the method, URL (its query joins the parameters) and the oauth_* parameters. */
export function signatureBaseString(method: string, url: URL, oauthParams: Record<string, string>): string {
  const pairs: [string, string][] = [];
  for (const [k, v] of url.searchParams) pairs.push([oauthEncode(k), oauthEncode(v)]);
  for (const [k, v] of Object.entries(oauthParams)) {
    if (k === 'realm' || k === 'oauth_signature') continue;
    pairs.push([oauthEncode(k), oauthEncode(v)]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  const normalized = pairs.map(([k, v]) => `${k}=${v}`).join('&');
  return [method.toUpperCase(), oauthEncode(baseStringUri(url)), oauthEncode(normalized)].join('&');
}

export function hmacSha1Signature(baseString: string, consumerSecret: string, tokenSecret: string): string {
  return createHmac('sha1', `${oauthEncode(consumerSecret)}&${oauthEncode(tokenSecret)}`).update(baseString).digest('base64');
}

export function signaturesEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

export type ParsedAuthorization =
  | { ok: true; params: Record<string, string> }
  | { ok: false; problem: 'parameter_absent' | 'parameter_rejected' };

/** Parses `OAuth realm="ADM", oauth_consumer_key="…", …`; duplicated or malformed parameters are rejected. */
export function parseOAuthHeader(header: string | undefined): ParsedAuthorization {
  if (!header) return { ok: false, problem: 'parameter_absent' };
  const m = /^\s*OAuth(?:\s+(.*))?$/is.exec(header);
  if (!m) return { ok: false, problem: 'parameter_absent' };
  const params: Record<string, string> = {};
  const rest = (m[1] ?? '').trim();
  if (!rest) return { ok: false, problem: 'parameter_absent' };
  const re = /\s*([A-Za-z0-9_.~%-]+)\s*=\s*"([^"]*)"\s*(,|$)/y;
  let pos = 0;
  while (pos < rest.length) {
    re.lastIndex = pos;
    const p = re.exec(rest);
    if (!p) return { ok: false, problem: 'parameter_rejected' };
    let key: string;
    let value: string;
    try {
      key = decodeURIComponent(p[1]!);
      value = decodeURIComponent(p[2]!);
    } catch {
      return { ok: false, problem: 'parameter_rejected' };
    }
    if (Object.hasOwn(params, key)) return { ok: false, problem: 'parameter_rejected' };
    params[key] = value;
    pos = re.lastIndex;
    if (p[3] === '') break;
  }
  if (pos < rest.length) return { ok: false, problem: 'parameter_rejected' };
  return { ok: true, params };
}

export interface OAuth1Credentials {
  consumerKey: string;
  consumerSecret: string;
  accessToken: string;
  accessSecret: string;
}

/**
 * Builds an `Authorization` header value for a request. Test helper: nonce and timestamp can be
 * pinned to replay or age a request on purpose.
 */
export function oauth1AuthorizationHeader(
  method: string,
  url: string | URL,
  creds: OAuth1Credentials,
  opts: { nonce?: string; timestamp?: number | Date; realm?: string | null; version?: string | null; signatureMethod?: string } = {},
): string {
  const u = typeof url === 'string' ? new URL(url) : url;
  const ts = opts.timestamp instanceof Date ? Math.floor(opts.timestamp.getTime() / 1000) : (opts.timestamp ?? Math.floor(Date.now() / 1000));
  const params: Record<string, string> = {
    oauth_consumer_key: creds.consumerKey,
    oauth_token: creds.accessToken,
    oauth_signature_method: opts.signatureMethod ?? 'HMAC-SHA1',
    oauth_timestamp: String(ts),
    oauth_nonce: opts.nonce ?? randomBytes(16).toString('hex'),
  };
  if (opts.version !== null) params.oauth_version = opts.version ?? '1.0';
  params.oauth_signature = hmacSha1Signature(signatureBaseString(method, u, params), creds.consumerSecret, creds.accessSecret);
  const parts = Object.entries(params).map(([k, v]) => `${oauthEncode(k)}="${oauthEncode(v)}"`);
  if (opts.realm !== null) parts.unshift(`realm="${opts.realm ?? 'ADM'}"`);
  return `OAuth ${parts.join(', ')}`;
}
