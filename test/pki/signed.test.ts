import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueCertificate } from '../../src/pki/certificates.js';
import { PkiError } from '../../src/pki/errors.js';
import { derToPem } from '../../src/pki/pem.js';
import { createSignedData, verifySignedData } from '../../src/pki/signed.js';
import { readCmsInput } from '../../src/pki/smime.js';
import { openssl, tempDir, testCa, testLeaf, type TestIdentity } from './fixtures.js';

describe('CMS SignedData', () => {
  const tmp = tempDir();
  let root: TestIdentity;
  let intermediate: TestIdentity;
  let signer: TestIdentity;
  let stranger: TestIdentity;
  const content = Buffer.from('<?xml version="1.0"?>\n<plist version="1.0"><dict><key>PayloadType</key><string>Configuration</string></dict></plist>\n');
  const files = {} as Record<'root' | 'intermediate' | 'signer' | 'signerKey' | 'content', string>;
  beforeAll(async () => {
    root = await testCa('Test Root');
    intermediate = await testLeaf(root, { CN: 'Test Intermediate' }, { isCa: true, validityDays: 1000 });
    signer = await testLeaf(intermediate, { CN: 'profile signer' });
    stranger = await testCa('Untrusted Root');
    files.root = tmp.file('root.pem', root.cert.pem);
    files.intermediate = tmp.file('intermediate.pem', intermediate.cert.pem);
    files.signer = tmp.file('signer.pem', signer.cert.pem);
    files.signerKey = tmp.file('signer.key', signer.keyPem);
    files.content = tmp.file('content.plist', content);
  });
  afterAll(() => tmp.cleanup());
  const sign = (opts: { detached?: boolean; chain?: boolean } = {}) =>
    createSignedData(content, { certificatePem: signer.cert.pem, privateKeyPem: signer.keyPem, detached: opts.detached, chainPems: opts.chain === false ? [] : [intermediate.cert.pem] });

  describe('ours verifies with openssl', () => {
    it('attached: openssl smime -verify -noverify and cms -verify against the root', () => {
      const der = sign();
      const file = tmp.file('att.der', der);
      expect(openssl(['smime', '-verify', '-noverify', '-binary', '-inform', 'DER', '-in', file])).toEqual(content);
      expect(openssl(['cms', '-verify', '-binary', '-inform', 'DER', '-in', file, '-CAfile', files.root, '-purpose', 'any'])).toEqual(content);
      // And as PEM.
      const pemFile = tmp.file('att.pem', derToPem(der, 'PKCS7'));
      expect(openssl(['smime', '-verify', '-noverify', '-binary', '-inform', 'PEM', '-in', pemFile])).toEqual(content);
    });

    it('detached: openssl cms -verify with -content', () => {
      const file = tmp.file('det.der', sign({ detached: true }));
      expect(openssl(['cms', '-verify', '-binary', '-inform', 'DER', '-in', file, '-content', files.content, '-CAfile', files.root, '-purpose', 'any'])).toEqual(content);
    });

    it('carries DER-sorted signed attributes with SHA-256 and a signing time', () => {
      const when = new Date('2026-05-01T12:00:00Z');
      const der = createSignedData(content, { certificatePem: signer.cert.pem, privateKeyPem: signer.keyPem, signingTime: when });
      const asn = openssl(['cms', '-cmsout', '-print', '-inform', 'DER', '-in', tmp.file('attrs.der', der)]).toString();
      expect(asn).toContain('sha256');
      expect(asn).toContain('May  1 12:00:00 2026 GMT');
      expect(verifySignedData(der).signingTime?.toISOString()).toBe(when.toISOString());
    });
  });

  describe('openssl-signed data verifies with ours', () => {
    const cases: [string, string[]][] = [
      ['cms -sign, DER, SHA-256', ['cms', '-sign', '-binary', '-nodetach', '-outform', 'DER', '-certfile']],
      ['cms -sign, PEM, SHA-1 (old devices)', ['cms', '-sign', '-binary', '-nodetach', '-md', 'sha1', '-outform', 'PEM', '-certfile']],
      ['cms -sign, streamed BER, -keyid', ['cms', '-sign', '-binary', '-nodetach', '-stream', '-keyid', '-outform', 'DER', '-certfile']],
      ['smime -sign, S/MIME', ['smime', '-sign', '-binary', '-nodetach', '-certfile']],
      ['cms -sign without signed attributes', ['cms', '-sign', '-binary', '-nodetach', '-noattr', '-outform', 'DER', '-certfile']],
    ];
    for (const [name, args] of cases) {
      it(name, () => {
        const out = openssl([...args, files.intermediate, '-in', files.content, '-signer', files.signer, '-inkey', files.signerKey]);
        const res = verifySignedData(readCmsInput(out).der, { trustAnchors: [root.cert.pem] });
        expect(res.content).toEqual(content);
        expect(res.signer.subject.text).toBe('CN=profile signer');
        expect(res.chain?.map((c) => c.subject.text)).toEqual(['CN=profile signer', 'CN=Test Intermediate', 'CN=Test Root, O=OpenEnroll Tests']);
      });
    }

    it('a detached openssl signature, given the content', () => {
      const out = openssl(['cms', '-sign', '-binary', '-outform', 'DER', '-in', files.content, '-signer', files.signer, '-inkey', files.signerKey]);
      expect(verifySignedData(out, { detachedContent: content }).content).toEqual(content);
      expect(() => verifySignedData(out)).toThrow(/detached; the signed content is needed/);
      expect(() => verifySignedData(out, { detachedContent: Buffer.from('other') })).toThrow(expect.objectContaining({ code: 'badSignature' }));
    });

    it('an EC (P-256) signer', async () => {
      const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const cert = await issueCertificate({ publicKey, issuerCertificatePem: root.cert.pem, issuerPrivateKeyPem: root.keyPem, subject: { CN: 'ec device' }, validityDays: 30 });
      const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      const out = openssl(['cms', '-sign', '-binary', '-nodetach', '-outform', 'DER', '-in', files.content, '-signer', tmp.file('ec.pem', cert.pem), '-inkey', tmp.file('ec.key', keyPem)]);
      expect(verifySignedData(out, { trustAnchors: [root.cert.pem] }).signer.subject.text).toBe('CN=ec device');
      const ours = createSignedData(content, { certificatePem: cert.pem, privateKeyPem: keyPem });
      expect(openssl(['cms', '-verify', '-binary', '-inform', 'DER', '-in', tmp.file('ec.der', ours), '-CAfile', files.root, '-purpose', 'any'])).toEqual(content);
    });
  });

  describe('trust', () => {
    it('chains through intermediates carried in the message or given separately', () => {
      expect(verifySignedData(sign(), { trustAnchors: [root.cert.pem] }).chain).toHaveLength(3);
      const bare = sign({ chain: false });
      expect(() => verifySignedData(bare, { trustAnchors: [root.cert.pem] })).toThrow(expect.objectContaining({ code: 'untrusted' }));
      expect(verifySignedData(bare, { trustAnchors: [root.cert.pem], intermediates: [intermediate.cert.pem] }).chain).toHaveLength(3);
      // The signer itself may be the anchor (a pinned certificate).
      expect(verifySignedData(bare, { trustAnchors: [signer.cert.pem] }).chain).toHaveLength(1);
    });

    it('refuses a signer chaining elsewhere, or a certificate not valid at the time', () => {
      expect(() => verifySignedData(sign(), { trustAnchors: [stranger.cert.pem] })).toThrow(/doesn't chain to a trusted certificate/);
      const later = new Date(signer.cert.notAfter.getTime() + 1000);
      expect(() => verifySignedData(sign(), { trustAnchors: [root.cert.pem], now: later })).toThrow(/is not valid at/);
      // Without anchors only the signature is checked.
      expect(verifySignedData(sign()).chain).toBeUndefined();
    });
  });

  it('detects tampering with the content, the signature or the signer', async () => {
    const der = sign();
    const at = der.indexOf(content.subarray(10, 30));
    const tampered = Buffer.from(der);
    tampered[at]! ^= 0x01;
    expect(() => verifySignedData(tampered)).toThrow(/doesn't match the signed digest/);
    const sig = Buffer.from(der);
    sig[sig.length - 3]! ^= 0x01;
    expect(() => verifySignedData(sig)).toThrow(expect.objectContaining({ code: 'badSignature' }));
    // Someone else's certificate in place of the signer's.
    const imposter = await testLeaf(intermediate, { CN: 'imposter' });
    expect(() => createSignedData(content, { certificatePem: imposter.cert.pem, privateKeyPem: signer.keyPem })).toThrow(expect.objectContaining({ code: 'keyMismatch' }));
  });

  it('refuses EnvelopedData and garbage with typed errors', () => {
    const env = openssl(['smime', '-encrypt', '-binary', '-outform', 'DER', '-in', files.content, files.signer]);
    expect(() => verifySignedData(env)).toThrow(/CMS EnvelopedData, not SignedData/);
    for (const bad of [Buffer.alloc(0), Buffer.from([0x30, 0x80]), crypto.randomBytes(64)]) expect(() => verifySignedData(bad)).toThrow(PkiError);
  });
});
