import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSelfSignedCertificate } from '../../src/pki/certificates.js';
import { decryptEnvelopedData, encryptEnvelopedData } from '../../src/pki/enveloped.js';
import { NoMatchingRecipientError, PkiError } from '../../src/pki/errors.js';
import { generateRsaKeyPair } from '../../src/pki/keys.js';
import { derToPem } from '../../src/pki/pem.js';
import { MAX_CMS_BYTES, parseMimeEntity, readCmsInput } from '../../src/pki/smime.js';
import { openssl, tempDir, testCa, testLeaf, type TestIdentity } from './fixtures.js';

describe('CMS EnvelopedData', () => {
  const tmp = tempDir();
  let me: TestIdentity;
  let other: TestIdentity;
  let certFile: string;
  let keyFile: string;
  const message = Buffer.from('{"consumer_key":"CK_x","note":"ünïcødé"}\n');
  beforeAll(async () => {
    const ca = await testCa();
    me = await testLeaf(ca, { CN: 'OpenEnroll ADE recipient' });
    other = await testLeaf(ca, { CN: 'Someone else' });
    certFile = tmp.file('me.pem', me.cert.pem);
    keyFile = tmp.file('me.key', me.keyPem);
    tmp.file('message.txt', message);
  });
  afterAll(() => tmp.cleanup());
  const mine = () => ({ certificatePem: me.cert.pem, privateKeyPem: me.keyPem });

  describe('decrypts what openssl encrypts', () => {
    const cases: [string, string[], string, string][] = [
      ['smime -aes256, S/MIME', ['smime', '-encrypt', '-aes256', '-binary'], 'aes-256-cbc', 'rsaes-pkcs1-v1_5'],
      ['smime -aes256, PEM', ['smime', '-encrypt', '-aes256', '-binary', '-outform', 'PEM'], 'aes-256-cbc', 'rsaes-pkcs1-v1_5'],
      ['smime -aes256, DER', ['smime', '-encrypt', '-aes256', '-binary', '-outform', 'DER'], 'aes-256-cbc', 'rsaes-pkcs1-v1_5'],
      ['smime -des3', ['smime', '-encrypt', '-des3', '-binary'], 'des-ede3-cbc', 'rsaes-pkcs1-v1_5'],
      ['smime default cipher', ['smime', '-encrypt', '-binary', '-outform', 'DER'], 'des-ede3-cbc', 'rsaes-pkcs1-v1_5'],
      ['smime -aes128, streamed BER', ['smime', '-encrypt', '-aes128', '-binary', '-stream', '-outform', 'DER'], 'aes-128-cbc', 'rsaes-pkcs1-v1_5'],
      ['cms -aes192 -keyid (subject key identifier)', ['cms', '-encrypt', '-aes192', '-binary', '-keyid', '-outform', 'DER'], 'aes-192-cbc', 'rsaes-pkcs1-v1_5'],
      ['cms, PEM (BEGIN CMS)', ['cms', '-encrypt', '-aes256', '-binary', '-outform', 'PEM'], 'aes-256-cbc', 'rsaes-pkcs1-v1_5'],
    ];
    for (const [name, args, cipher, keyTransport] of cases) {
      it(name, () => {
        const out = openssl([...args, '-in', tmp.file('message.txt'), certFile]);
        const input = readCmsInput(out);
        const res = decryptEnvelopedData(input.der, mine());
        expect(res.content).toEqual(message);
        expect(res.cipher).toBe(cipher);
        expect(res.keyTransport).toBe(keyTransport);
      });
    }

    it('RSA-OAEP key transport (SHA-1 and SHA-256)', () => {
      for (const [md, expected] of [
        [[], 'rsaes-oaep-sha1'],
        [['-keyopt', 'rsa_oaep_md:sha256'], 'rsaes-oaep-sha256'],
      ] as const) {
        const out = openssl(['cms', '-encrypt', '-aes256', '-binary', '-outform', 'DER', '-in', tmp.file('message.txt'), '-recip', certFile, '-keyopt', 'rsa_padding_mode:oaep', ...md]);
        const res = decryptEnvelopedData(out, mine());
        expect(res.content).toEqual(message);
        expect(res.keyTransport).toBe(expected);
      }
    });

    it('picks our recipient among several, by issuer and serial', () => {
      const out = openssl(['smime', '-encrypt', '-aes256', '-binary', '-outform', 'DER', '-in', tmp.file('message.txt'), tmp.file('other.pem', other.cert.pem), certFile]);
      const res = decryptEnvelopedData(out, mine());
      expect(res.content).toEqual(message);
      expect(res.recipient).toEqual({ issuer: me.cert.issuer.text, serialNumberHex: me.cert.serialNumberHex });
    });

    it('without -binary, openssl canonicalises line ends to CRLF (what we then see)', () => {
      const out = openssl(['smime', '-encrypt', '-aes256', '-in', tmp.file('message.txt'), certFile]);
      expect(decryptEnvelopedData(readCmsInput(out).der, mine()).content.toString()).toBe(message.toString().replace('\n', '\r\n'));
    });
  });

  describe('encrypts what openssl decrypts', () => {
    const variants = [
      {},
      { cipher: 'aes-128-cbc' as const },
      { cipher: 'aes-192-cbc' as const },
      { cipher: 'des-ede3-cbc' as const },
      { keyTransport: 'rsaes-oaep-sha1' as const },
      { keyTransport: 'rsaes-oaep-sha256' as const, recipientIdentifier: 'subjectKeyIdentifier' as const },
    ];
    for (const v of variants) {
      it(JSON.stringify(v), () => {
        const der = encryptEnvelopedData(message, [me.cert.pem], v);
        const out = openssl(['cms', '-decrypt', '-binary', '-inform', 'DER', '-in', tmp.file('ours.der', der), '-recip', certFile, '-inkey', keyFile]);
        expect(out).toEqual(message);
        expect(decryptEnvelopedData(der, mine()).content).toEqual(message);
      });
    }

    it('to several recipients, each of whom can decrypt', () => {
      const der = encryptEnvelopedData(message, [other.cert.pem, me.cert.pem]);
      expect(decryptEnvelopedData(der, mine()).content).toEqual(message);
      expect(decryptEnvelopedData(der, { certificatePem: other.cert.pem, privateKeyPem: other.keyPem }).content).toEqual(message);
    });
  });

  it('names the recipients when the message is for another certificate (a stale key)', () => {
    const der = encryptEnvelopedData(message, [other.cert.pem]);
    let err: unknown;
    try {
      decryptEnvelopedData(der, mine());
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NoMatchingRecipientError);
    const e = err as NoMatchingRecipientError;
    expect(e.code).toBe('noMatchingRecipient');
    expect(e.recipients).toEqual([{ issuer: other.cert.issuer.text, serialNumberHex: other.cert.serialNumberHex }]);
    expect(e.ours).toEqual({ issuer: me.cert.issuer.text, serialNumberHex: me.cert.serialNumberHex });
    expect(e.message).toContain(other.cert.serialNumberHex);
    const byKeyId = encryptEnvelopedData(message, [other.cert.pem], { recipientIdentifier: 'subjectKeyIdentifier' });
    expect(() => decryptEnvelopedData(byKeyId, mine())).toThrow(/subject key identifier [0-9A-F]{40}/);
  });

  it('a matching serial from another issuer is not ours', async () => {
    const { privateKeyPem } = await generateRsaKeyPair();
    const twin = await createSelfSignedCertificate({ privateKeyPem, subject: { CN: 'Twin' }, validityDays: 1, serialNumberHex: me.cert.serialNumberHex });
    const der = encryptEnvelopedData(message, [twin.pem]);
    expect(() => decryptEnvelopedData(der, mine())).toThrow(NoMatchingRecipientError);
  });

  it('fails with decryptionFailed, not an oracle, when the wrapped key or content is damaged', () => {
    const der = encryptEnvelopedData(message, [me.cert.pem]);
    // The content: the last byte of the next-to-last cipher block XORs into the padding length.
    const content = Buffer.from(der);
    content[content.length - 17]! ^= 0x55;
    expect(() => decryptEnvelopedData(content, mine())).toThrow(expect.objectContaining({ code: 'decryptionFailed' }));
    // The encrypted key: a random key is used instead, so the outcome looks the same (or is garbage).
    const key = Buffer.from(der);
    const at = key.indexOf(Buffer.from([0x04, 0x82, 0x01, 0x00])) + 10;
    key[at]! ^= 0x01;
    try {
      const res = decryptEnvelopedData(key, mine());
      expect(res.content).not.toEqual(message);
    } catch (e) {
      expect(e).toMatchObject({ code: 'decryptionFailed' });
    }
  });

  it('refuses a private key that is not the certificate’s, and SignedData where EnvelopedData is expected', () => {
    const der = encryptEnvelopedData(message, [me.cert.pem]);
    expect(() => decryptEnvelopedData(der, { certificatePem: me.cert.pem, privateKeyPem: other.keyPem })).toThrow(expect.objectContaining({ code: 'keyMismatch' }));
    const signed = openssl(['cms', '-sign', '-binary', '-nodetach', '-outform', 'DER', '-in', tmp.file('message.txt'), '-signer', certFile, '-inkey', keyFile]);
    expect(() => decryptEnvelopedData(signed, mine())).toThrow(/CMS SignedData, not EnvelopedData/);
  });
});

describe('reading S/MIME, PEM, DER and base64 input', () => {
  const der = Buffer.from(encryptEnvelopedDataLike());
  function encryptEnvelopedDataLike(): Buffer {
    // Any DER SEQUENCE will do for input detection.
    return Buffer.concat([Buffer.from([0x30, 0x81, 0x80]), crypto.randomBytes(128)]);
  }
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');

  it('accepts the forms users hand over', () => {
    const smime = `Content-Type: application/pkcs7-mime; name="smime.p7m"; smime-type=enveloped-data\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="smime.p7m"\r\nContent-Description: S/MIME Encrypted Message\r\n\r\n${b64.replace(/\n/g, '\r\n')}\r\n`;
    expect(readCmsInput(smime)).toEqual({ der, form: 'smime', smimeType: 'enveloped-data' });
    expect(readCmsInput(`\uFEFF\n\n${smime}`).der).toEqual(der);
    const folded = `MIME-Version: 1.0\nContent-Type: application/x-pkcs7-mime;\n\tsmime-type="enveloped-data"; name="smime.p7m"\nContent-Transfer-Encoding: base64\n\n${b64}`;
    expect(readCmsInput(folded)).toMatchObject({ form: 'smime', smimeType: 'enveloped-data' });
    expect(readCmsInput(derToPem(der, 'PKCS7'))).toEqual({ der, form: 'pem' });
    expect(readCmsInput(derToPem(der, 'CMS')).der).toEqual(der);
    expect(readCmsInput(der)).toEqual({ der, form: 'der' });
    expect(readCmsInput(b64)).toEqual({ der, form: 'base64' });
    expect(readCmsInput(Buffer.concat([Buffer.from('Content-Type: application/pkcs7-mime\nContent-Transfer-Encoding: binary\n\n'), der])).der).toEqual(der);
  });

  it('refuses garbage, other MIME types and oversized input with clear errors', () => {
    const cases: [string | Buffer, RegExp][] = [
      ['', /empty/],
      ['hello world', /not a CMS message/],
      ['Content-Type: text/plain\n\nhello', /not application\/pkcs7-mime/],
      ['Content-Type: application/pkcs7-mime\nContent-Transfer-Encoding: base64\n\n!!!!', /not valid base64/],
      ['Content-Type: application/pkcs7-mime\nContent-Transfer-Encoding: x-uuencode\n\nabc', /not supported/],
      ['-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n', /No PEM block labelled "PKCS7"/],
      [Buffer.alloc(MAX_CMS_BYTES + 1, 0x30), /larger than 1048576 bytes/],
      ['aGVsbG8gd29ybGQ=', /not a CMS message/],
    ];
    for (const [input, msg] of cases) {
      expect(() => readCmsInput(input), String(input).slice(0, 40)).toThrow(msg);
      expect(() => readCmsInput(input)).toThrow(PkiError);
    }
    expect(readCmsInput(Buffer.alloc(MAX_CMS_BYTES, 0x30)).der).toHaveLength(MAX_CMS_BYTES);
  });

  it('parses MIME headers with folding and both line ends', () => {
    const e = parseMimeEntity(Buffer.from('A: 1\r\nB: two\r\n  parts\r\n\r\nbody'));
    expect(e?.headers.get('b')).toBe('two parts');
    expect(e?.body.toString()).toBe('body');
    expect(parseMimeEntity(Buffer.from('not a header line\n\nbody'))).toBeUndefined();
    expect(parseMimeEntity(Buffer.from('A: 1'))).toBeUndefined();
  });
});
