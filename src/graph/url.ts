/**
 * Graph clients address the same resource several ways; routes are written once in the plain
 * form and this rewrite maps the others onto it before routing:
 *   /users('abc')                         -> /users/abc        (OData key in parentheses)
 *   /x/microsoft.graph.uploadDepToken     -> /x/uploadDepToken (namespace-qualified action)
 *   /x/getEncryptionPublicKey()           -> /x/getEncryptionPublicKey
 *   /getSuggestedEnrollmentLimit(enrollmentType='ios') -> /getSuggestedEnrollmentLimit?enrollmentType=ios
 */

const NAMESPACE = /^microsoft\.graph\./i;
const CALL = /^([A-Za-z_$][\w.$]*)\((.*)\)$/s;

function unquote(v: string): string {
  const t = v.trim();
  if (t.length >= 2 && t.startsWith("'") && t.endsWith("'")) return t.slice(1, -1).replace(/''/g, "'");
  return t;
}

/** Splits `a='x,y',b=2` on commas outside quotes. */
function splitArgs(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "'") {
      if (quoted && s[i + 1] === "'") {
        cur += "''";
        i++;
        continue;
      }
      quoted = !quoted;
    }
    if (c === ',' && !quoted) {
      out.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  out.push(cur);
  return out;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** encodeURIComponent throws on lone surrogates; a URL we can't rewrite is left alone (and 404s). */
function safeEncode(s: string): string | undefined {
  try {
    return encodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/** Rewrites one path segment; function parameters are appended to `extraQuery`. */
function rewriteSegment(raw: string, extraQuery: string[]): string {
  // Keys and parameters are read decoded (so '%40' in a UPN key isn't encoded twice) and re-encoded once.
  const seg = safeDecode(raw).replace(NAMESPACE, '');
  const m = CALL.exec(seg);
  if (!m) return seg === safeDecode(raw) ? raw : (safeEncode(seg) ?? raw);
  const name = m[1]!.replace(NAMESPACE, '');
  const inner = m[2]!.trim();
  if (inner === '') return name;
  const args = splitArgs(inner);
  if (args.every((a) => /^\s*[A-Za-z_]\w*\s*=/.test(a))) {
    const params: string[] = [];
    for (const a of args) {
      const eq = a.indexOf('=');
      const key = safeEncode(a.slice(0, eq).trim());
      const value = safeEncode(unquote(a.slice(eq + 1)));
      if (key === undefined || value === undefined) return raw;
      params.push(`${key}=${value}`);
    }
    extraQuery.push(...params);
    return name;
  }
  if (args.length !== 1) return raw; // composite keys aren't used by any resource here; leave for a 404
  const key = unquote(args[0]!);
  const encoded = key === '' ? undefined : safeEncode(key); // ('') names nothing: don't turn it into the collection
  return encoded === undefined ? raw : `${name}/${encoded}`;
}

export function normalizeGraphUrl(url: string): string {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q + 1);
  if (!/[(.%]/.test(path)) return url; // fast path: nothing to rewrite

  const extraQuery: string[] = [];
  const newPath = path
    .split('/')
    .map((raw) => rewriteSegment(raw, extraQuery))
    .join('/');
  const allQuery = [query, ...extraQuery].filter((s) => s !== '').join('&');
  return allQuery ? `${newPath}?${allQuery}` : newPath;
}
