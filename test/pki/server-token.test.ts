import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DepOAuthTokens } from '../../src/apple/ade/dep-api.js';
import {
  decryptServerToken,
  encryptServerToken,
  generateTokenEncryptionKeyPair,
  parseDepOAuthTokens,
  ServerTokenError,
  unwrapTokenJson,
  type TokenEncryptionKeyPair,
} from '../../src/apple/ade/server-token.js';
import { parseCertificate } from '../../src/pki/certificates.js';
import { encryptEnvelopedData } from '../../src/pki/enveloped.js';
import { openssl, tempDir } from './fixtures.js';

const NOW = new Date('2026-06-01T00:00:00Z');
const TOKENS: DepOAuthTokens = {
  consumer_key: 'CK_48dd68d198350f51258e885ce9a5c37ab7f98543c4a697323d75682a6c10a32501cb247e3db08105db868f73f2c972bdb6ae77112aea803b9219eb52689d42e6',
  consumer_secret: 'CS_34c7b2b531a600d99a0e4edcf4a78135fbaebd71',
  access_token: 'AT_927696831c59ba510cfe4ec1a69e5267c19881257d4bca2906a99d0785b785a6f6fdeb09774954fdd5e2d0ad952e3af52c6d8d2f21c924ba0caf4a031c158b89',
  access_secret: 'AS_c31afd7a09691d83548489336e8ff1cb11b82b6bca13f793344496a556b1f4972eaff4dde6deb5ac9cf076fdfa97ec97699c34d515947b9cf9ed31c99dded6ba',
  access_token_expiry: '2027-05-31T18:14:46Z',
};
/** The decrypted .p7m content as Apple writes it (nanodep tokenpki). */
const inner = (json: string, eol = '\r\n') =>
  `Content-Type: text/plain;charset=UTF-8${eol}Content-Transfer-Encoding: 7bit${eol}${eol}-----BEGIN MESSAGE-----${eol}${json}${eol}-----END MESSAGE-----${eol}`;

describe('ADE server token', () => {
  const tmp = tempDir();
  let kp: TokenEncryptionKeyPair;
  let certFile: string;
  const keys = () => ({ certPem: kp.certificatePem, keyPem: kp.privateKeyPem });
  beforeAll(async () => {
    kp = await generateTokenEncryptionKeyPair({ tokenId: 'f1e2d3c4', now: new Date('2026-05-01T00:00:00Z') });
    certFile = tmp.file('token-cert.pem', kp.certificatePem);
  });
  afterAll(() => tmp.cleanup());

  it('generates the public key certificate ABM expects: self-signed PEM X.509, RSA-2048, a year', () => {
    expect(kp.certificatePem).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n$/);
    const cert = parseCertificate(kp.certificatePem);
    expect(cert.subject.text).toBe('CN=OpenEnroll ADE f1e2d3c4');
    expect(cert.isSelfIssued).toBe(true);
    expect(cert.notAfter.toISOString()).toBe('2027-05-01T00:00:00.000Z');
    expect(kp.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const text = openssl(['x509', '-in', certFile, '-noout', '-text']).toString();
    expect(text).toContain('Public-Key: (2048 bit)');
    expect(text).toMatch(/Digital Signature, Key Encipherment/);
    expect(openssl(['verify', '-CAfile', certFile, certFile]).toString()).toContain('OK');
  });

  describe('decrypts tokens encrypted by openssl smime (as ABM does)', () => {
    for (const [name, args] of [
      ['-aes256, S/MIME text', ['-aes256']],
      ['-aes256, PEM', ['-aes256', '-outform', 'PEM']],
      ['-aes256, DER', ['-aes256', '-outform', 'DER']],
      ['-des3', ['-des3']],
      ['default cipher', []],
    ] as const) {
      it(name, () => {
        const out = openssl(['smime', '-encrypt', ...args, '-in', tmp.file('token.txt', inner(JSON.stringify(TOKENS), '\n')), certFile]);
        expect(decryptServerToken((args as readonly string[]).includes('DER') ? out : out.toString(), keys(), NOW)).toEqual(TOKENS);
      });
    }

    it('a token whose content is plain JSON, without MIME or markers', () => {
      const out = openssl(['smime', '-encrypt', '-aes256', '-in', tmp.file('plain.json', JSON.stringify(TOKENS)), certFile]);
      expect(decryptServerToken(out.toString(), keys(), NOW)).toEqual(TOKENS);
    });
  });

  it('decrypts tokens from our own encryption helper, which openssl also decrypts', () => {
    const p7m = encryptServerToken(TOKENS, kp.certificatePem);
    expect(p7m).toMatch(/^Content-Type: application\/pkcs7-mime; name="smime.p7m"; smime-type=enveloped-data\r\n/);
    expect(decryptServerToken(p7m, keys(), NOW)).toEqual(TOKENS);
    expect(decryptServerToken(encryptServerToken(TOKENS, kp.certificatePem, { cipher: 'des-ede3-cbc' }), keys(), NOW)).toEqual(TOKENS);
    const out = openssl(['smime', '-decrypt', '-in', tmp.file('ours.p7m', p7m), '-recip', certFile, '-inkey', tmp.file('token.key', kp.privateKeyPem)]).toString();
    expect(out).toContain('-----BEGIN MESSAGE-----');
    expect(out).toContain(TOKENS.consumer_key);
  });

  it('ignores extra fields and accepts RFC 3339 offsets and fractions', () => {
    const json = JSON.stringify({ ...TOKENS, access_token_expiry: '2027-05-31T18:14:46.123+02:00', extra: 1 });
    expect(parseDepOAuthTokens(json, NOW)).toEqual({ ...TOKENS, access_token_expiry: '2027-05-31T18:14:46.123+02:00' });
  });

  describe('refuses, saying why', () => {
    const reasonOf = (fn: () => unknown): ServerTokenError => {
      try {
        fn();
      } catch (e) {
        expect(e).toBeInstanceOf(ServerTokenError);
        return e as ServerTokenError;
      }
      throw new Error('expected a ServerTokenError');
    };

    it('not a token: garbage, a certificate, signed data, oversized files', () => {
      const signed = openssl(['smime', '-sign', '-in', tmp.file('t.txt', 'x'), '-signer', certFile, '-inkey', tmp.file('k.pem', kp.privateKeyPem), '-nodetach']).toString();
      for (const input of ['', 'hello', kp.certificatePem, signed, 'A'.repeat(2 * 1024 * 1024), Buffer.from([0x30, 0x03, 0x01, 0x01, 0x00])]) {
        const e = reasonOf(() => decryptServerToken(input, keys(), NOW));
        expect(e.reason, String(input).slice(0, 30)).toBe('notAToken');
        expect(e.message).toMatch(/^This is not an Apple server token \(\.p7m\)/);
      }
      expect(reasonOf(() => decryptServerToken(signed, keys(), NOW)).message).toContain('signed-data');
    });

    it('encrypted for another key (a stale or other server key), naming the recipient', async () => {
      const older = await generateTokenEncryptionKeyPair({ tokenId: 'old' });
      const e = reasonOf(() => decryptServerToken(encryptServerToken(TOKENS, older.certificatePem), keys(), NOW));
      expect(e.reason).toBe('encryptedForAnotherKey');
      expect(e.details.recipients).toEqual([{ issuer: 'CN=OpenEnroll ADE old', serialNumberHex: older.serialNumberHex }]);
      expect(e.message).toContain(older.serialNumberHex);
      expect(e.message).toContain(kp.serialNumberHex);
    });

    it('expired: access_token_expiry in the past (and at the instant itself)', () => {
      const expired = { ...TOKENS, access_token_expiry: '2026-05-31T23:59:59Z' };
      const e = reasonOf(() => decryptServerToken(encryptServerToken(expired, kp.certificatePem), keys(), NOW));
      expect(e.reason).toBe('expired');
      expect(e.details.expiredAt?.toISOString()).toBe('2026-05-31T23:59:59.000Z');
      expect(reasonOf(() => parseDepOAuthTokens(JSON.stringify({ ...TOKENS, access_token_expiry: NOW.toISOString() }), NOW)).reason).toBe('expired');
      expect(parseDepOAuthTokens(JSON.stringify({ ...TOKENS, access_token_expiry: new Date(NOW.getTime() + 1000).toISOString() }), NOW).consumer_key).toBe(TOKENS.consumer_key);
    });

    it('malformed content: not JSON, missing or empty fields, bad expiry, unbalanced markers', () => {
      const cases: [string, RegExp][] = [
        ['not json', /not JSON/],
        ['[]', /not a JSON object/],
        [JSON.stringify({ ...TOKENS, consumer_secret: '' }), /no consumer_secret/],
        [JSON.stringify({ ...TOKENS, access_secret: 42 }), /no access_secret/],
        [JSON.stringify({ consumer_key: 'x' }), /no consumer_secret/],
        [JSON.stringify({ ...TOKENS, access_token_expiry: 'tomorrow' }), /not an RFC 3339 time/],
        [JSON.stringify({ ...TOKENS, access_token_expiry: '2027-13-45T00:00:00Z' }), /not an RFC 3339 time/],
        [JSON.stringify({ ...TOKENS, access_token_expiry: '2027-05-31T18:14:46' }), /not an RFC 3339 time/],
      ];
      for (const [json, msg] of cases) {
        const der = encryptEnvelopedData(Buffer.from(inner(json)), [kp.certificatePem]);
        const e = reasonOf(() => decryptServerToken(der, keys(), NOW));
        expect(e.reason, json).toBe('malformedContent');
        expect(e.message).toMatch(msg);
      }
      expect(() => unwrapTokenJson(Buffer.from('-----END MESSAGE-----{}-----BEGIN MESSAGE-----'))).toThrow(/unbalanced/);
      expect(unwrapTokenJson(Buffer.from(`Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n${Buffer.from('{"a":1}').toString('base64')}`))).toBe('{"a":1}');
    });
  });
});
