import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeGraphUrl } from '../../src/graph/url.js';

/* Graph URL forms mapped onto the plain routes before routing. */

/** The last path segment as the router hands it to a route (`:id`). */
const lastParam = (url: string) => decodeURIComponent(url.split('?')[0]!.split('/').pop()!);

describe('normalizeGraphUrl', () => {
  it.each([
    // keys in parentheses, quoted, encoded-quoted, unquoted
    ["/beta/deviceManagement/roleScopeTags('5')", '/beta/deviceManagement/roleScopeTags/5'],
    ['/beta/deviceManagement/roleScopeTags(%275%27)', '/beta/deviceManagement/roleScopeTags/5'],
    ['/beta/deviceManagement/roleScopeTags(5)', '/beta/deviceManagement/roleScopeTags/5'],
    ["/beta/users('O''Brien')", "/beta/users/O'Brien"],
    ["/beta/users('john%40contoso.com')", '/beta/users/john%40contoso.com'],
    ["/beta/users('john@contoso.com')", '/beta/users/john%40contoso.com'],
    ["/beta/users('a%2Fb')", '/beta/users/a%2Fb'],
    ["/beta/users('a b')/memberOf", '/beta/users/a%20b/memberOf'],
    ["/beta/depOnboardingSettings('abc')/enrollmentProfiles('abc_def')", '/beta/depOnboardingSettings/abc/enrollmentProfiles/abc_def'],
    ["/beta/x('a(b)')", '/beta/x/a(b)'],
    ["/beta/x('a,b')", '/beta/x/a%2Cb'],
    // namespace-qualified actions, case-insensitive namespace
    ['/beta/deviceManagement/depOnboardingSettings/abc/microsoft.graph.uploadDepToken', '/beta/deviceManagement/depOnboardingSettings/abc/uploadDepToken'],
    ["/beta/depOnboardingSettings('abc')/Microsoft.Graph.syncWithAppleDeviceEnrollmentProgram", '/beta/depOnboardingSettings/abc/syncWithAppleDeviceEnrollmentProgram'],
    // functions with and without empty parentheses
    ['/beta/depOnboardingSettings/abc/getEncryptionPublicKey()', '/beta/depOnboardingSettings/abc/getEncryptionPublicKey'],
    ['/beta/depOnboardingSettings/abc/microsoft.graph.getEncryptionPublicKey()', '/beta/depOnboardingSettings/abc/getEncryptionPublicKey'],
    ['/beta/depOnboardingSettings/abc/getEncryptionPublicKey', '/beta/depOnboardingSettings/abc/getEncryptionPublicKey'],
    ['/beta/x/exportMobileConfig( )', '/beta/x/exportMobileConfig'],
    // function parameters move to the query string, after any existing query
    [
      "/beta/depOnboardingSettings/getExpiringVppTokenCount(expiringBeforeDateTime='2024-01-01T00:00:00Z')",
      '/beta/depOnboardingSettings/getExpiringVppTokenCount?expiringBeforeDateTime=2024-01-01T00%3A00%3A00Z',
    ],
    ["/beta/deviceManagement/getSuggestedEnrollmentLimit(enrollmentType='ios')?$select=x", '/beta/deviceManagement/getSuggestedEnrollmentLimit?$select=x&enrollmentType=ios'],
    ["/beta/x/fn(a='x,y', b = 2,c='it''s')", '/beta/x/fn?a=x%2Cy&b=2&c=it\'s'],
    ["/beta/x/fn(a='x%20y')", '/beta/x/fn?a=x%20y'],
    ['/beta/x/microsoft.graph.verifyWindowsEnrollmentAutoDiscovery(domainName=%27contoso.com%27)', '/beta/x/verifyWindowsEnrollmentAutoDiscovery?domainName=contoso.com'],
    // untouched: plain paths, dots in UPNs and file-like names, $count, encoded data
    ['/beta/deviceManagement/roleScopeTags', '/beta/deviceManagement/roleScopeTags'],
    ['/beta/deviceManagement/roleScopeTags/$count?$filter=x', '/beta/deviceManagement/roleScopeTags/$count?$filter=x'],
    ['/beta/users/john.doe@contoso.com', '/beta/users/john.doe@contoso.com'],
    ['/beta/users/john.doe%40contoso.com/memberOf?$select=id', '/beta/users/john.doe%40contoso.com/memberOf?$select=id'],
    ['/v1.0/users/first.last@sub.contoso.co.uk', '/v1.0/users/first.last@sub.contoso.co.uk'],
    ['/beta/x/a%2Fb', '/beta/x/a%2Fb'],
    ['/docs/static/index.html', '/docs/static/index.html'],
    ['/openapi.json', '/openapi.json'],
    // left for a 404 rather than guessed at
    ["/beta/x('')", "/beta/x('')"],
    ["/beta/x('a','b')", "/beta/x('a','b')"],
    ['/beta/x/%E0%A4%A', '/beta/x/%E0%A4%A'],
  ])('%s -> %s', (input, expected) => {
    expect(normalizeGraphUrl(input)).toBe(expected);
  });

  it('never throws, and keeps the path absolute', () => {
    const piece = fc.constantFrom('/', '(', ')', "'", '%27', '%28', '%', '%E0', '%2F', '.', 'microsoft.graph.', '=', ',', '?', '&', '$', 'a', 'fn()', '\uD800', '\uDC00', '🚀');
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: piece, maxLength: 20 })), (tail) => {
        const out = normalizeGraphUrl(`/beta/${tail}`);
        expect(typeof out).toBe('string');
        expect(out.startsWith('/')).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('any quoted key reaches the route as the same string', () => {
    const key = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 });
    fc.assert(
      fc.property(key, fc.boolean(), fc.constantFrom('', '/assignments', '/microsoft.graph.assign'), (k, encodeQuotes, rest) => {
        let quoted = encodeURIComponent(`'${k.replace(/'/g, "''")}'`);
        if (encodeQuotes) quoted = quoted.replace(/'/g, '%27');
        const out = normalizeGraphUrl(`/beta/deviceManagement/things(${quoted})${rest}`);
        const path = out.split('?')[0]!;
        const segments = path.split('/');
        expect(segments.slice(0, 4)).toEqual(['', 'beta', 'deviceManagement', 'things']);
        expect(decodeURIComponent(segments[4]!)).toBe(k);
        expect(segments.length).toBe(rest ? 6 : 5);
        if (rest) expect(segments[5]).toBe(rest.replace('/microsoft.graph.', '/').slice(1));
      }),
      { numRuns: 300 },
    );
  });

  it('function parameters arrive in the query string unchanged', () => {
    const name = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,12}$/);
    const value = fc.string({ unit: 'grapheme', maxLength: 15 });
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(name, value), { minLength: 1, maxLength: 4, selector: ([n]) => n }), (params) => {
        const args = params.map(([n, v]) => `${n}=${encodeURIComponent(`'${v.replace(/'/g, "''")}'`)}`).join(',');
        const out = normalizeGraphUrl(`/beta/deviceManagement/getThing(${args})`);
        const [path, query = ''] = out.split('?');
        expect(path).toBe('/beta/deviceManagement/getThing');
        const search = new URLSearchParams(query);
        expect([...search.keys()]).toEqual(params.map(([n]) => n));
        expect(params.map(([n]) => search.get(n))).toEqual(params.map(([, v]) => v)); // verbatim inside the quotes
      }),
      { numRuns: 300 },
    );
  });

  it('leaves paths with dots but no parentheses alone (UPNs, file names)', () => {
    const label = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,10}$/);
    fc.assert(
      fc.property(fc.array(label, { minLength: 1, maxLength: 3 }), fc.array(label, { minLength: 2, maxLength: 4 }), (local, domain) => {
        const url = `/beta/users/${local.join('.')}@${domain.join('.')}/memberOf`;
        expect(normalizeGraphUrl(url)).toBe(url);
      }),
      { numRuns: 200 },
    );
  });

  it('hands the router the id from both key forms', () => {
    expect(lastParam(normalizeGraphUrl("/beta/users('a%2Fb%40c')"))).toBe('a/b@c');
    expect(lastParam(normalizeGraphUrl('/beta/users/a%2Fb%40c'))).toBe('a/b@c');
  });
});
