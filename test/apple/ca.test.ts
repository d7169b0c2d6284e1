import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CA_KEY_SECRET_KIND, CA_VALIDITY_DAYS, CertificateAuthorityError, PROFILE_SIGNER_KEY_SECRET_KIND } from '../../src/ca/index.js';
import { identitySubject } from '../../src/apple/scep/index.js';
import { issueCertificate, parseCertificate } from '../../src/pki/certificates.js';
import { generateRsaKeyPair } from '../../src/pki/keys.js';
import { DAY, MINUTE } from '../../src/shared/time.js';
import { openssl, tempDir, testCa, testLeaf } from '../pki/fixtures.js';
import { scepHarness, type ScepHarness } from './scep-support.js';

describe('tenant certificate authority', () => {
  let h: ScepHarness;
  const tmp = tempDir();
  beforeAll(async () => {
    h = await scepHarness();
  });
  afterAll(async () => {
    await h.close();
    tmp.cleanup();
  });
  const authority = () => h.apple.scep.authority;
  const identities = () => h.apple.scep.identities;
  const secretsOf = (tenantId: string) => h.t.store.db.selectFrom('secrets').select(['id', 'kind', 'ciphertext']).where('tenant_id', '=', tenantId).execute();

  it('is created on first use, once, even when asked concurrently; keys only in secrets', async () => {
    const { tenantId } = await h.t.createTenant('Contoso Pharmaceuticals');
    expect(await authority().find(h.t.store.db, tenantId)).toBeUndefined();
    const all = await Promise.all(Array.from({ length: 4 }, () => authority().ensure(h.t.store.db, tenantId)));
    const pems = new Set(all.map((ca) => ca.certificate.pem));
    expect(pems.size).toBe(1);
    const rows = await h.t.store.db.selectFrom('tenant_cas').selectAll().where('tenant_id', '=', tenantId).execute();
    expect(rows).toHaveLength(1);
    // The losers' secrets were removed with their attempt: one CA key, one signer key.
    const secrets = await secretsOf(tenantId);
    expect(secrets.map((s) => s.kind).sort()).toEqual([CA_KEY_SECRET_KIND, PROFILE_SIGNER_KEY_SECRET_KIND].sort());
    expect(secrets.map((s) => s.id).sort()).toEqual([rows[0]!.ca_key_secret_id, rows[0]!.signer_key_secret_id].sort());
    // Encrypted at rest: no PEM anywhere in the rows.
    expect(JSON.stringify([rows, secrets])).not.toContain('PRIVATE KEY');
    expect((await authority().ensure(h.t.store.db, tenantId)).certificate.pem).toBe(all[0]!.certificate.pem);
  });

  it('is an RSA-3072 ten-year CA that signs and receives SCEP messages, named per tenant', async () => {
    const ca = await authority().ensure(h.t.store.db, h.tenantId);
    const c = ca.certificate;
    expect(c.isCa && c.isSelfIssued).toBe(true);
    expect(ca.privateKey.asymmetricKeyDetails?.modulusLength).toBe(3072);
    expect(Math.round((c.notAfter.getTime() - c.notBefore.getTime()) / DAY)).toBe(CA_VALIDITY_DAYS);
    expect(c.subject.text).toContain(`OU=${h.tenantId}`);
    const text = openssl(['x509', '-noout', '-text'], c.pem).toString();
    expect(text).toMatch(/CA:TRUE/);
    expect(text).toMatch(/Digital Signature, Key Encipherment, Certificate Sign, CRL Sign/);
  });

  it("refuses a tenant that doesn't exist", async () => {
    await expect(authority().ensure(h.t.store.db, crypto.randomUUID())).rejects.toBeInstanceOf(CertificateAuthorityError);
  });

  describe('device identities', () => {
    async function issue(tenantId = h.tenantId, opts: { days?: number } = {}) {
      const { privateKeyPem, publicKeyPem } = await generateRsaKeyPair();
      const intent = await h.intent({ tenantId });
      const issued = await h.t.store.transaction((trx) =>
        identities().issueIdentityCertificate(trx, tenantId, { csrPublicKey: publicKeyPem, subject: identitySubject(intent.id), intentId: intent.id, ...opts }),
      );
      return { ...issued, keyPem: privateKeyPem, intent };
    }

    it('issues clientAuth certificates that openssl verifies against the CA', async () => {
      const { certificate } = await issue();
      const caFile = tmp.file('ca.pem', (await authority().ensure(h.t.store.db, h.tenantId)).certificate.pem);
      const leafFile = tmp.file('leaf.pem', certificate.pem);
      const verifyAt = String(Math.floor(h.clock.now().getTime() / 1000));
      expect(openssl(['verify', '-attime', verifyAt, '-purpose', 'sslclient', '-CAfile', caFile, leafFile]).toString()).toContain('OK');
      const text = openssl(['x509', '-noout', '-text', '-in', leafFile]).toString();
      expect(text).toMatch(/TLS Web Client Authentication/);
      expect(text).toMatch(/Digital Signature, Key Encipherment/);
      expect(text).not.toMatch(/CA:TRUE/);
    });

    it('identify: bound, current, unrevoked certificates of this CA only', async () => {
      const a = await issue();
      const now = h.clock.now();
      expect(await identities().identify(h.t.store.db, h.tenantId, a.certificate.der, now)).toEqual({
        tenantId: h.tenantId,
        thumbprintSha256: a.thumbprintSha256,
        intentId: a.intent.id,
        enrollmentId: null,
      });
      // Validity window, both sides.
      expect(await identities().identify(h.t.store.db, h.tenantId, a.certificate.der, new Date(a.certificate.notBefore.getTime() - 1000))).toBeUndefined();
      expect(await identities().identify(h.t.store.db, h.tenantId, a.certificate.der, a.certificate.notBefore)).toBeDefined();
      expect(await identities().identify(h.t.store.db, h.tenantId, a.certificate.der, a.certificate.notAfter)).toBeDefined();
      expect(await identities().identify(h.t.store.db, h.tenantId, a.certificate.der, new Date(a.certificate.notAfter.getTime() + 1000))).toBeUndefined();
      // Another tenant's CA, a stranger's CA, garbage.
      const other = await h.t.createTenant('Other');
      const b = await issue(other.tenantId);
      expect(await identities().identify(h.t.store.db, h.tenantId, b.certificate.der, now)).toBeUndefined();
      expect(await identities().identify(h.t.store.db, other.tenantId, a.certificate.der, now)).toBeUndefined();
      const stranger = await testLeaf(await testCa('Stranger CA'), { CN: a.intent.id });
      expect(await identities().identify(h.t.store.db, h.tenantId, stranger.cert.der, now)).toBeUndefined();
      expect(await identities().identify(h.t.store.db, h.tenantId, crypto.randomBytes(300), now)).toBeUndefined();
      expect(await identities().identify(h.t.store.db, crypto.randomUUID(), a.certificate.der, now)).toBeUndefined();
    });

    it("identify refuses a certificate signed with the CA key that the CA never recorded", async () => {
      const ca = await authority().ensure(h.t.store.db, h.tenantId);
      const { publicKeyPem } = await generateRsaKeyPair();
      const forged = await issueCertificate({
        publicKey: publicKeyPem,
        issuerCertificatePem: ca.certificate.pem,
        issuerPrivateKeyPem: ca.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        subject: { CN: 'unrecorded' },
        validityDays: 30,
        notBefore: new Date(h.clock.now().getTime() - MINUTE),
      });
      expect(await identities().identify(h.t.store.db, h.tenantId, forged.der, h.clock.now())).toBeUndefined();
    });

    it('bindEnrollment, revoke and revokeEnrollment', async () => {
      const a = await issue();
      const b = await issue();
      await h.t.store.transaction(async (trx) => {
        await identities().bindEnrollment(trx, h.tenantId, a.thumbprintSha256.toLowerCase(), 'enrollment-1');
        await identities().bindEnrollment(trx, h.tenantId, b.thumbprintSha256, 'enrollment-1');
      });
      expect((await identities().identify(h.t.store.db, h.tenantId, a.certificate.der, h.clock.now()))?.enrollmentId).toBe('enrollment-1');
      // Not across tenants, not unknown certificates.
      const other = await h.t.createTenant('Elsewhere');
      await expect(h.t.store.transaction((trx) => identities().bindEnrollment(trx, other.tenantId, a.thumbprintSha256, 'x'))).rejects.toThrow(/No current identity/);
      expect(await h.t.store.transaction((trx) => identities().revoke(trx, h.tenantId, a.thumbprintSha256, 'lost device'))).toBe(true);
      expect(await h.t.store.transaction((trx) => identities().revoke(trx, h.tenantId, a.thumbprintSha256, 'again'))).toBe(false);
      expect(await identities().identify(h.t.store.db, h.tenantId, a.certificate.der, h.clock.now())).toBeUndefined();
      await expect(h.t.store.transaction((trx) => identities().bindEnrollment(trx, h.tenantId, a.thumbprintSha256, 'x'))).rejects.toThrow();
      expect(await h.t.store.transaction((trx) => identities().revokeEnrollment(trx, h.tenantId, 'enrollment-1', 'checked out'))).toBe(1);
      expect(await identities().identify(h.t.store.db, h.tenantId, b.certificate.der, h.clock.now())).toBeUndefined();
    });

    it('never outlives the CA', async () => {
      const ca = await authority().ensure(h.t.store.db, h.tenantId);
      const saved = h.clock.now();
      h.clock.set(ca.certificate.notAfter.getTime() - 100 * DAY);
      try {
        const { certificate } = await issue();
        expect(certificate.notAfter.getTime()).toBeLessThanOrEqual(ca.certificate.notAfter.getTime());
        expect(parseCertificate(certificate.pem).notAfter.getTime() - h.clock.now().getTime()).toBeLessThan(101 * DAY);
      } finally {
        h.clock.set(saved);
      }
    });
  });
});
