import crypto from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeFormParams,
  hmacSha1Signature,
  normalizeParameters,
  normalizeRequestUrl,
  parseOAuthAuthorizationHeader,
  percentEncode,
  signatureBaseString,
  signOAuth1,
  verifyOAuth1Signature,
} from '../../src/apple/ade/oauth1.js';

/** Published vectors: our own simulator doesn't get to define what "correct" is. */
describe('OAuth 1.0a HMAC-SHA1 (RFC 5849)', () => {
  it('RFC 5849 §1.2: the photos.example.net request', () => {
    const signed = signOAuth1({
      method: 'GET',
      url: 'http://photos.example.net/photos?file=vacation.jpg&size=original',
      credentials: { consumerKey: 'dpf43f3p2l4k3l03', consumerSecret: 'kd94hf93k423kf44', token: 'nnch734d00sl2jdk', tokenSecret: 'pfkkdhi9sl3r4s00' },
      nonce: 'chapoH',
      timestamp: 137131202,
      realm: 'Photos',
      includeVersion: false,
    });
    expect(signed.baseString).toBe(
      'GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3DchapoH%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131202%26oauth_token%3Dnnch734d00sl2jdk%26size%3Doriginal',
    );
    expect(signed.signature).toBe('MdpQcU8iPSUjWoN/UDMsK2sui9I=');
    expect(signed.header).toContain('oauth_signature="MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D"');
    expect(signed.header.startsWith('OAuth realm="Photos", ')).toBe(true);
  });

  it('RFC 5849 §3.4.1: base string with repeated, empty, encoded and body parameters', () => {
    const url = 'http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b';
    const params: [string, string][] = [
      ...decodeFormParams('b5=%3D%253D&a3=a&c%40=&a2=r%20b'),
      ...decodeFormParams('c2&a3=2+q'),
      ['oauth_consumer_key', '9djdj82h48djs9d2'],
      ['oauth_token', 'kkk9d7dh3k39sjv7'],
      ['oauth_signature_method', 'HMAC-SHA1'],
      ['oauth_timestamp', '137131201'],
      ['oauth_nonce', '7d8f3e4a'],
    ];
    expect(normalizeParameters(params)).toBe(
      'a2=r%20b&a3=2%20q&a3=a&b5=%3D%253D&c%40=&c2=&oauth_consumer_key=9djdj82h48djs9d2&oauth_nonce=7d8f3e4a&oauth_signature_method=HMAC-SHA1&oauth_timestamp=137131201&oauth_token=kkk9d7dh3k39sjv7',
    );
    expect(signatureBaseString('post', url, params)).toBe(
      'POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7',
    );
  });

  it('RFC 5849 §3.4.1.2: base string URI', () => {
    expect(normalizeRequestUrl('http://EXAMPLE.COM:80/r%20v/X?id=123')).toBe('http://example.com/r%20v/X');
    expect(normalizeRequestUrl('https://www.example.net:8080/?q=1')).toBe('https://www.example.net:8080/');
    expect(normalizeRequestUrl('https://mdmenrollment.apple.com:443/session')).toBe('https://mdmenrollment.apple.com/session');
    expect(normalizeRequestUrl('http://example.com')).toBe('http://example.com/');
  });

  it("Twitter's documented example (POST with a form body)", () => {
    const body = decodeFormParams('status=Hello%20Ladies%20%2b%20Gentlemen%2c%20a%20signed%20OAuth%20request%21');
    const signed = signOAuth1({
      method: 'POST',
      url: 'https://api.twitter.com/1.1/statuses/update.json?include_entities=true',
      bodyParams: body,
      credentials: {
        consumerKey: 'xvz1evFS4wEEPTGEFPHBog',
        consumerSecret: 'kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw',
        token: '370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb',
        tokenSecret: 'LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE',
      },
      nonce: 'kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg',
      timestamp: 1318622958,
    });
    expect(signed.baseString).toBe(
      'POST&https%3A%2F%2Fapi.twitter.com%2F1.1%2Fstatuses%2Fupdate.json&include_entities%3Dtrue%26oauth_consumer_key%3Dxvz1evFS4wEEPTGEFPHBog%26oauth_nonce%3DkYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1318622958%26oauth_token%3D370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb%26oauth_version%3D1.0%26status%3DHello%2520Ladies%2520%252B%2520Gentlemen%252C%2520a%2520signed%2520OAuth%2520request%2521',
    );
    expect(signed.signature).toBe('hCtSmYh+iHYCEqBWrE7C7hYmtUk=');
    expect(hmacSha1Signature(signed.baseString, 'kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw', 'LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE')).toBe('hCtSmYh+iHYCEqBWrE7C7hYmtUk=');
  });

  it('percent-encodes per RFC 3986: unreserved kept, everything else as upper-case UTF-8 escapes', () => {
    expect(percentEncode("Ladies + Gentlemen!*'()~._-")).toBe('Ladies%20%2B%20Gentlemen%21%2A%27%28%29~._-');
    expect(percentEncode('☃')).toBe('%E2%98%83');
    expect(percentEncode('a/b?c=d&e')).toBe('a%2Fb%3Fc%3Dd%26e');
  });

  it('property: percentEncode leaves only unreserved characters and %XX, and decodes back', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (s) => {
        const e = percentEncode(s);
        expect(e).toMatch(/^(?:[A-Za-z0-9\-._~]|%[0-9A-F]{2})*$/);
        expect(decodeURIComponent(e)).toBe(s);
      }),
    );
  });

  it('property: the header parses back to the signed parameters and verifies; any other secret or URL does not', () => {
    const text = fc.string({ minLength: 1, maxLength: 20, unit: 'grapheme' });
    fc.assert(
      fc.property(text, text, text, text, fc.string({ maxLength: 12 }), (ck, cs, tk, ts, q) => {
        const url = `https://mdmenrollment.apple.com/session?x=${encodeURIComponent(q)}`;
        const signed = signOAuth1({ method: 'GET', url, realm: 'ADM', credentials: { consumerKey: ck, consumerSecret: cs, token: tk, tokenSecret: ts } });
        const parsed = parseOAuthAuthorizationHeader(signed.header);
        expect(parsed).toMatchObject({ realm: 'ADM', ...signed.oauthParams });
        expect(verifyOAuth1Signature({ method: 'GET', url, header: signed.header, consumerSecret: cs, tokenSecret: ts })).toBe(true);
        expect(verifyOAuth1Signature({ method: 'GET', url, header: signed.header, consumerSecret: `${cs}x`, tokenSecret: ts })).toBe(false);
        expect(verifyOAuth1Signature({ method: 'POST', url, header: signed.header, consumerSecret: cs, tokenSecret: ts })).toBe(false);
        expect(verifyOAuth1Signature({ method: 'GET', url: `${url}y`, header: signed.header, consumerSecret: cs, tokenSecret: ts })).toBe(false);
      }),
    );
  });

  it('uses a fresh random nonce and the current time unless given', () => {
    const creds = { consumerKey: 'ck', consumerSecret: 'cs', token: 't', tokenSecret: 'ts' };
    const a = signOAuth1({ method: 'GET', url: 'https://x.test/session', credentials: creds });
    const b = signOAuth1({ method: 'GET', url: 'https://x.test/session', credentials: creds });
    expect(a.oauthParams.oauth_nonce).not.toBe(b.oauthParams.oauth_nonce);
    expect(a.oauthParams.oauth_nonce).toMatch(/^[0-9a-f]{32}$/);
    expect(Math.abs(Number(a.oauthParams.oauth_timestamp) - Date.now() / 1000)).toBeLessThan(5);
    expect(a.oauthParams.oauth_version).toBe('1.0');
  });

  it('refuses malformed or duplicated header parameters', () => {
    expect(parseOAuthAuthorizationHeader('Bearer abc')).toBeNull();
    expect(parseOAuthAuthorizationHeader('OAuth a="1", a="2"')).toBeNull();
    expect(parseOAuthAuthorizationHeader('OAuth a="1", junk')).toBeNull();
    expect(parseOAuthAuthorizationHeader('OAuth a="%ZZ"')).toBeNull();
    expect(parseOAuthAuthorizationHeader('OAuth a="1",b="2"')).toEqual({ a: '1', b: '2' });
    expect(verifyOAuth1Signature({ method: 'GET', url: 'https://x.test/', header: 'OAuth oauth_signature_method="PLAINTEXT", oauth_signature="x"', consumerSecret: 'c' })).toBe(false);
  });

  it('a signature equals a plain HMAC-SHA1 of the base string with the encoded secrets as key', () => {
    const base = 'GET&https%3A%2F%2Fx.test%2F&a%3D1';
    const expected = crypto.createHmac('sha1', 'c%26s&t%20s').update(base).digest('base64');
    expect(hmacSha1Signature(base, 'c&s', 't s')).toBe(expected);
  });
});
