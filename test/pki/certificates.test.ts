import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  certificateMatchesKey,
  createCsr,
  createSelfSignedCertificate,
  issueCertificate,
  normalizeSerialHex,
  parseCertificate,
  parseCsr,
} from '../../src/pki/certificates.js';
import { PkiError } from '../../src/pki/errors.js';
import { generateRsaKeyPair, loadPrivateKey, samePublicKey, loadPublicKey } from '../../src/pki/keys.js';
import { nameField } from '../../src/pki/names.js';
import { decodeBase64, derToPem, pemBlocks, pemToDer, toDer } from '../../src/pki/pem.js';
import { openssl, tempDir, testCa } from './fixtures.js';

describe('keys', () => {
  it('generates RSA-2048 PKCS#8 keys by default, and only sizes we support', async () => {
    const k = await generateRsaKeyPair();
    expect(k.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(k.publicKeyPem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    const key = loadPrivateKey(k.privateKeyPem);
    expect(key.asymmetricKeyType).toBe('rsa');
    expect(key.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(samePublicKey(key, loadPublicKey(k.publicKeyPem))).toBe(true);
    await expect(generateRsaKeyPair(1024)).rejects.toMatchObject({ code: 'unsupported' });
  });

  it('reads PKCS#1 keys too, and refuses garbage with a typed error', () => {
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pkcs1 = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    expect(loadPrivateKey(pkcs1).asymmetricKeyType).toBe('rsa');
    expect(() => loadPrivateKey('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')).toThrow(PkiError);
  });
});

describe('PEM and DER helpers', () => {
  it('round-trips DER through PEM with 64-character lines', () => {
    const der = crypto.randomBytes(200);
    const pem = derToPem(der, 'CERTIFICATE');
    expect(pem.split('\n').slice(1, -3).every((l) => l.length === 64)).toBe(true);
    expect(pemToDer(pem, 'CERTIFICATE')).toEqual(der);
    expect(pemBlocks(`junk\n${pem}more junk\n${derToPem(der.subarray(0, 10), 'PKCS7')}`).map((b) => b.label)).toEqual(['CERTIFICATE', 'PKCS7']);
  });

  it('refuses malformed PEM and non-DER input with clear errors', () => {
    expect(() => pemToDer('nothing here', 'CERTIFICATE')).toThrow(/No PEM block labelled "CERTIFICATE"/);
    expect(() => pemBlocks('-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----')).toThrow(/isn't valid base64/);
    expect(() => pemBlocks('-----BEGIN CERTIFICATE-----\nAAAA\n-----END PKCS7-----')).toThrow(/ends with/);
    expect(() => pemBlocks('-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END RSA PRIVATE KEY-----')).toThrow(/encrypted key/);
    expect(() => toDer('aGVsbG8=', ['CERTIFICATE'], 'certificate')).toThrow(/neither PEM, DER nor base64 DER/);
    expect(decodeBase64('abc')).toBeUndefined();
    expect(decodeBase64('YWJj\n')).toEqual(Buffer.from('abc'));
  });
});

describe('certificates', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());
  let key: { privateKeyPem: string; publicKeyPem: string };
  beforeAll(async () => {
    key = await generateRsaKeyPair();
  });

  it('creates a self-signed certificate with the subject, validity, key usages and identifiers asked for', async () => {
    const notBefore = new Date('2026-03-01T10:00:00.750Z');
    const cert = await createSelfSignedCertificate({
      privateKeyPem: key.privateKeyPem,
      subject: [
        ['C', 'FR'],
        ['O', 'Société Exemple'],
        ['CN', 'OpenEnroll ADE 1234'],
        ['emailAddress', 'admin@example.com'],
      ],
      validityDays: 365,
      notBefore,
      keyUsages: ['keyEncipherment', 'digitalSignature'],
      extendedKeyUsages: ['clientAuth'],
    });
    expect(cert.subject.text).toBe('C=FR, O=Société Exemple, CN=OpenEnroll ADE 1234, emailAddress=admin@example.com');
    expect(cert.issuer.text).toBe(cert.subject.text);
    expect(cert.isSelfIssued).toBe(true);
    expect(cert.isCa).toBe(false);
    expect(cert.notBefore.toISOString()).toBe('2026-03-01T10:00:00.000Z');
    expect(cert.notAfter.toISOString()).toBe('2027-03-01T10:00:00.000Z');
    expect(cert.serialNumberHex).toMatch(/^[0-9A-F]+$/);
    expect(cert.sha256Thumbprint).toBe(crypto.createHash('sha256').update(cert.der).digest('hex').toUpperCase());
    expect(cert.sha1Thumbprint).toHaveLength(40);
    expect(certificateMatchesKey(cert.pem, key.privateKeyPem)).toBe(true);

    // openssl reads it the same way.
    const file = tmp.file('self.pem', cert.pem);
    const text = openssl(['x509', '-in', file, '-noout', '-text', '-nameopt', 'RFC2253,-esc_msb']).toString();
    expect(text).toContain('Key Encipherment');
    expect(text).toContain('Digital Signature');
    expect(text).toContain('TLS Web Client Authentication');
    expect(text).toContain('emailAddress=admin@example.com,CN=OpenEnroll ADE 1234,O=Société Exemple,C=FR');
    expect(openssl(['x509', '-in', file, '-noout', '-serial']).toString().trim()).toBe(`serial=${cert.serialNumberHex}`);
    const fp = openssl(['x509', '-in', file, '-noout', '-fingerprint', '-sha256']).toString().trim();
    expect(fp.split('=')[1]!.replace(/:/g, '')).toBe(cert.sha256Thumbprint);
    expect(openssl(['x509', '-in', file, '-noout', '-enddate']).toString().trim()).toBe('notAfter=Mar  1 10:00:00 2027 GMT');
    // Country is a PrintableString, emailAddress an IA5String (RFC 5280).
    const asn = openssl(['asn1parse', '-in', file]).toString();
    expect(asn).toMatch(/PRINTABLESTRING\s+:FR/);
    expect(asn).toMatch(/IA5STRING\s+:admin@example.com/);
  });

  it('issues a certificate for another key that chains to its issuer in openssl verify', async () => {
    const ca = await testCa();
    const leaf = await generateRsaKeyPair();
    const cert = await issueCertificate({
      publicKey: leaf.publicKeyPem,
      issuerCertificatePem: ca.cert.pem,
      issuerPrivateKeyPem: ca.keyPem,
      subject: [['UID', 'com.apple.mgmt.External.0f0e']],
      validityDays: 10,
    });
    expect(cert.issuer.text).toBe(ca.cert.subject.text);
    expect(certificateMatchesKey(cert.pem, leaf.privateKeyPem)).toBe(true);
    expect(certificateMatchesKey(cert.pem, ca.keyPem)).toBe(false);
    expect(openssl(['verify', '-CAfile', tmp.file('ca.pem', ca.cert.pem), tmp.file('leaf.pem', cert.pem)]).toString()).toContain('OK');
    // An issuer key that doesn't match the issuer certificate is refused.
    await expect(
      issueCertificate({ publicKey: leaf.publicKeyPem, issuerCertificatePem: ca.cert.pem, issuerPrivateKeyPem: leaf.privateKeyPem, subject: { CN: 'x' }, validityDays: 1 }),
    ).rejects.toMatchObject({ code: 'keyMismatch' });
  });

  it('parses certificates made by openssl: UID, CN, serial, dates, SPKI, and the key match', () => {
    const keyFile = tmp.file('o.key', key.privateKeyPem);
    const pem = openssl([
      'req', '-x509', '-new', '-key', keyFile, '-days', '365', '-set_serial', '0x0B7002EFEA6BA6D0',
      '-subj', '/UID=com.apple.mgmt.External.8f8e1b7e-2b6c-4a3e-9d0e-123456789abc/CN=APSP:8f8e1b7e-2b6c-4a3e-9d0e-123456789abc/C=US',
    ]).toString();
    const cert = parseCertificate(pem);
    expect(nameField(cert.subject, 'UID')).toBe('com.apple.mgmt.External.8f8e1b7e-2b6c-4a3e-9d0e-123456789abc');
    expect(nameField(cert.subject, '0.9.2342.19200300.100.1.1')).toBe(nameField(cert.subject, 'UID'));
    expect(nameField(cert.subject, 'CN')).toBe('APSP:8f8e1b7e-2b6c-4a3e-9d0e-123456789abc');
    expect(cert.serialNumberHex).toBe('0B7002EFEA6BA6D0');
    expect(Math.round((cert.notAfter.getTime() - cert.notBefore.getTime()) / 86_400_000)).toBe(365);
    expect(cert.publicKeySpki).toEqual(loadPublicKey(key.publicKeyPem).export({ type: 'spki', format: 'der' }));
    expect(certificateMatchesKey(pem, key.privateKeyPem)).toBe(true);
    // DER and bare base64 work too.
    expect(parseCertificate(cert.der).sha256Thumbprint).toBe(cert.sha256Thumbprint);
    expect(parseCertificate(cert.der.toString('base64')).serialNumberHex).toBe('0B7002EFEA6BA6D0');
  });

  it('normalises serials like openssl prints them', () => {
    expect(normalizeSerialHex('00ff')).toBe('FF');
    expect(normalizeSerialHex('b70')).toBe('0B70');
    expect(normalizeSerialHex('00')).toBe('00');
  });

  it('refuses what is not a certificate with a typed error', () => {
    for (const bad of ['', 'hello', Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01]), derToPem(Buffer.from([0x30, 0x00]), 'CERTIFICATE')]) {
      expect(() => parseCertificate(bad)).toThrow(PkiError);
    }
  });
});

describe('certificate signing requests', () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it('creates a PKCS#10 request with C/O/CN/emailAddress that openssl req -verify accepts', async () => {
    const key = await generateRsaKeyPair();
    const csr = await createCsr({
      privateKeyPem: key.privateKeyPem,
      subject: [
        ['C', 'US'],
        ['O', 'Contoso'],
        ['CN', 'OpenEnroll MDM Push'],
        ['emailAddress', 'mdm@contoso.com'],
      ],
    });
    expect(csr.pem).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----/);
    const file = tmp.file('req.pem', csr.pem);
    const res = openssl(['req', '-in', file, '-verify', '-noout', '-subject', '-nameopt', 'RFC2253']).toString();
    expect(res).toContain('subject=emailAddress=mdm@contoso.com,CN=OpenEnroll MDM Push,O=Contoso,C=US');
    const parsed = await parseCsr(csr.der);
    expect(parsed.subject.text).toBe('C=US, O=Contoso, CN=OpenEnroll MDM Push, emailAddress=mdm@contoso.com');
    expect(samePublicKey(loadPublicKey(parsed.publicKeySpki), loadPrivateKey(key.privateKeyPem))).toBe(true);
  });

  it('reads openssl-made requests and refuses a tampered one', async () => {
    const key = await generateRsaKeyPair();
    const pem = openssl(['req', '-new', '-key', tmp.file('k.pem', key.privateKeyPem), '-subj', '/CN=device/O=Org']).toString();
    const csr = await parseCsr(pem);
    expect(csr.subject.text).toBe('CN=device, O=Org');
    const der = Buffer.from(csr.der);
    der[der.length - 5]! ^= 0xff; // inside the signature
    await expect(parseCsr(der)).rejects.toMatchObject({ code: 'badSignature' });
    await expect(parseCsr('not a csr')).rejects.toBeInstanceOf(PkiError);
  });
});
