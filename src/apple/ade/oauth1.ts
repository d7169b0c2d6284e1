import crypto from 'node:crypto';

/**
 * OAuth 1.0a request signing with HMAC-SHA1 (RFC 5849 §3), as Apple's device assignment service
 * requires on GET /session. Pure: the nonce and timestamp can be given, so signatures are
 * reproducible against the RFC's and other published test vectors.
 */

export interface OAuth1Credentials {
  consumerKey: string;
  consumerSecret: string;
  /** The access token; absent for two-legged requests. */
  token?: string;
  tokenSecret?: string;
}

export interface OAuth1SignInput {
  method: string;
  /** Absolute URL; its query parameters are signed. */
  url: string | URL;
  credentials: OAuth1Credentials;
  /** Decoded parameters of an `application/x-www-form-urlencoded` body (RFC 5849 §3.4.1.3.1). */
  bodyParams?: readonly (readonly [string, string])[];
  /** Default: 16 random bytes, hex. */
  nonce?: string;
  /** Seconds since the epoch. Default: now. */
  timestamp?: number | string;
  /** Sent in the header, never signed (RFC 5849 §3.4.1.3.1). */
  realm?: string;
  /** Send `oauth_version="1.0"` (optional in RFC 5849; Apple's examples send it). Default true. */
  includeVersion?: boolean;
}

export interface OAuth1Signed {
  /** The value of the `Authorization` header. */
  header: string;
  /** The signed protocol parameters, including `oauth_signature`. */
  oauthParams: Record<string, string>;
  baseString: string;
  signature: string;
}

/** RFC 5849 §3.6: UTF-8, then every byte outside ALPHA / DIGIT / "-" / "." / "_" / "~" as %XX (upper case). */
export function percentEncode(value: string): string {
  // encodeURIComponent leaves !'()* alone; RFC 3986 reserves them, so OAuth encodes them too.
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** RFC 5849 §3.4.1.2: lower-case scheme and host, default port dropped, no query or fragment. */
export function normalizeRequestUrl(url: string | URL): string {
  const u = typeof url === 'string' ? new URL(url) : url;
  const scheme = u.protocol.toLowerCase();
  const host = u.hostname.toLowerCase();
  const defaultPort = (scheme === 'http:' && u.port === '80') || (scheme === 'https:' && u.port === '443');
  const port = u.port && !defaultPort ? `:${u.port}` : '';
  // WHATWG URL already percent-encodes the path; an empty path is "/".
  return `${scheme}//${host}${port}${u.pathname || '/'}`;
}

/** Decodes an `application/x-www-form-urlencoded` string ("+" is a space) into ordered pairs. */
export function decodeFormParams(encoded: string): [string, string][] {
  const out: [string, string][] = [];
  for (const part of encoded.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    out.push([formDecode(name), formDecode(value)]);
  }
  return out;
}

function formDecode(s: string): string {
  const spaced = s.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(spaced);
  } catch {
    // A stray "%" isn't an escape; keep it as typed rather than refusing to sign.
    return spaced;
  }
}

/** RFC 5849 §3.4.1.3.2: encode names and values, sort by name then value, join with "=" and "&". */
export function normalizeParameters(params: readonly (readonly [string, string])[]): string {
  const encoded = params.map(([k, v]) => [percentEncode(k), percentEncode(v)] as const);
  // Encoded strings are ASCII, so code-unit order is byte order.
  encoded.sort((a, b) => compareAscii(a[0], b[0]) || compareAscii(a[1], b[1]));
  return encoded.map(([k, v]) => `${k}=${v}`).join('&');
}

function compareAscii(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** RFC 5849 §3.4.1: METHOD & encoded base URI & encoded normalized parameters. */
export function signatureBaseString(method: string, url: string | URL, params: readonly (readonly [string, string])[]): string {
  return [method.toUpperCase(), percentEncode(normalizeRequestUrl(url)), percentEncode(normalizeParameters(params))].join('&');
}

/** RFC 5849 §3.4.2: base64 HMAC-SHA1 keyed with encoded consumer secret "&" encoded token secret. */
export function hmacSha1Signature(baseString: string, consumerSecret: string, tokenSecret = ''): string {
  const key = `${percentEncode(consumerSecret)}&${percentEncode(tokenSecret)}`;
  return crypto.createHmac('sha1', key).update(baseString, 'utf8').digest('base64');
}

/** The query parameters of a URL, decoded, in order (RFC 5849 §3.4.1.3.1). */
function queryParams(url: string | URL): [string, string][] {
  const u = typeof url === 'string' ? new URL(url) : url;
  return decodeFormParams(u.search.replace(/^\?/, ''));
}

/** Signs a request and builds its `Authorization: OAuth …` header. */
export function signOAuth1(input: OAuth1SignInput): OAuth1Signed {
  const { credentials } = input;
  const oauthParams: Record<string, string> = {
    oauth_consumer_key: credentials.consumerKey,
    oauth_nonce: input.nonce ?? crypto.randomBytes(16).toString('hex'),
    oauth_signature_method: 'HMAC-SHA1',
    oauth_timestamp: String(input.timestamp ?? Math.floor(Date.now() / 1000)),
  };
  if (credentials.token !== undefined) oauthParams.oauth_token = credentials.token;
  if (input.includeVersion ?? true) oauthParams.oauth_version = '1.0';

  const params: (readonly [string, string])[] = [...queryParams(input.url), ...(input.bodyParams ?? []), ...Object.entries(oauthParams)];
  const baseString = signatureBaseString(input.method, input.url, params);
  const signature = hmacSha1Signature(baseString, credentials.consumerSecret, credentials.tokenSecret ?? '');
  oauthParams.oauth_signature = signature;

  const parts = Object.entries(oauthParams).map(([k, v]) => `${percentEncode(k)}="${percentEncode(v)}"`);
  if (input.realm !== undefined) parts.unshift(`realm="${input.realm.replace(/["\\]/g, '')}"`);
  return { header: `OAuth ${parts.join(', ')}`, oauthParams, baseString, signature };
}

/**
 * Parses an `Authorization: OAuth …` header into decoded parameters (realm included).
 * Returns null for another scheme, a malformed header or a duplicated parameter (RFC 5849 §3.5.1).
 */
export function parseOAuthAuthorizationHeader(header: string): Record<string, string> | null {
  const m = /^\s*OAuth\s+(.*)$/is.exec(header);
  if (!m) return null;
  const out: Record<string, string> = {};
  const re = /\s*([A-Za-z0-9_.~%-]+)\s*=\s*"([^"]*)"\s*(?:,|$)/gy;
  const rest = m[1] ?? '';
  let consumed = 0;
  let match: RegExpExecArray | null;
  while ((match = re.exec(rest)) !== null) {
    const name = pctDecode(match[1] ?? '');
    const value = pctDecode(match[2] ?? '');
    if (name === null || value === null || Object.prototype.hasOwnProperty.call(out, name)) return null;
    out[name] = name === 'realm' ? (match[2] ?? '') : value;
    consumed = re.lastIndex;
    if (consumed >= rest.length) break;
  }
  if (rest.slice(consumed).trim() !== '') return null;
  return out;
}

// Header values are RFC 3986 percent-encoded, where "+" is a literal plus.
function pctDecode(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

export interface OAuth1VerifyInput {
  method: string;
  url: string | URL;
  header: string;
  consumerSecret: string;
  tokenSecret?: string;
  bodyParams?: readonly (readonly [string, string])[];
}

/** Checks an HMAC-SHA1 OAuth header against the request and secrets (constant-time compare). */
export function verifyOAuth1Signature(input: OAuth1VerifyInput): boolean {
  const parsed = parseOAuthAuthorizationHeader(input.header);
  if (!parsed || parsed.oauth_signature_method !== 'HMAC-SHA1' || parsed.oauth_signature === undefined) return false;
  const oauthParams = Object.entries(parsed).filter(([k]) => k !== 'realm' && k !== 'oauth_signature');
  const params = [...queryParams(input.url), ...(input.bodyParams ?? []), ...oauthParams];
  const expected = Buffer.from(hmacSha1Signature(signatureBaseString(input.method, input.url, params), input.consumerSecret, input.tokenSecret ?? ''));
  const given = Buffer.from(parsed.oauth_signature);
  return expected.length === given.length && crypto.timingSafeEqual(expected, given);
}
