import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MAX_PKI_MESSAGE_BYTES } from '../../src/apple/scep/index.js';
import { hashChallenge } from '../../src/apple/scep/challenges.js';
import { createSelfSignedCertificate, parseCertificate } from '../../src/pki/certificates.js';
import { MINUTE, SECOND } from '../../src/shared/time.js';
import { testCa, testLeaf } from '../pki/fixtures.js';
import { clientKey, forgeCsr, pkiMessage, readCertRep, scepHarness, type ClientKey, type ScepHarness } from './scep-support.js';

describe('SCEP server (RFC 8894)', () => {
  let h: ScepHarness;
  let caPem: string;
  let key: ClientKey;
  beforeAll(async () => {
    h = await scepHarness();
    caPem = await h.caPem();
    key = await clientKey();
  });
  afterAll(() => h.close());

  /** PKCSReq with the challenge, posted; the CertRep read as a client would. */
  async function enroll(challenge: string, k = key, opts: Parameters<typeof pkiMessage>[3] = {}) {
    const msg = pkiMessage(forgeCsr(k, { challenge }), caPem, k, opts);
    const res = await h.post(msg.der);
    expect(res.statusCode, res.body.toString()).toBe(200);
    expect(res.contentType).toBe('application/x-pki-message');
    const rep = readCertRep(res.body, caPem, { certPem: (opts.signer ?? { certPem: k.selfSigned.pem }).certPem, keyPem: opts.signer?.keyPem ?? k.keyPem });
    expect(rep.messageType).toBe('3');
    expect(rep.transactionId).toBe(msg.transactionId);
    expect(rep.recipientNonce).toEqual(msg.senderNonce);
    expect(rep.senderNonce).toHaveLength(16);
    expect(rep.senderNonce).not.toEqual(msg.senderNonce);
    return rep;
  }

  describe('GetCACert and GetCACaps', () => {
    it('serves the tenant CA as DER application/x-x509-ca-cert, on both paths, GET and POST', async () => {
      for (const url of [`/scep/${h.tenantId}?operation=GetCACert`, `/scep/${h.tenantId}/pkiclient.exe?operation=GetCACert&message=OpenEnroll`]) {
        for (const method of ['GET', 'POST'] as const) {
          const res = await h.t.app.server.inject({ method, url });
          expect(res.statusCode).toBe(200);
          expect(res.headers['content-type']).toBe('application/x-x509-ca-cert');
          const ca = parseCertificate(res.rawPayload);
          expect(ca.pem).toBe(caPem);
          expect(ca.isCa).toBe(true);
          expect(ca.isSelfIssued).toBe(true);
        }
      }
    });

    it('advertises what it implements', async () => {
      const res = await h.t.app.server.inject({ method: 'GET', url: `/scep/${h.tenantId}/pkiclient.exe?operation=GetCACaps` });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      expect(res.body.trim().split('\n').sort()).toEqual(['AES', 'POSTPKIOperation', 'Renewal', 'SCEPStandard', 'SHA-256', 'SHA-512']);
    });

    it('refuses unknown tenants and operations', async () => {
      expect((await h.t.app.server.inject({ method: 'GET', url: `/scep/${crypto.randomUUID()}?operation=GetCACert` })).statusCode).toBe(404);
      expect((await h.t.app.server.inject({ method: 'GET', url: `/scep/${h.tenantId}?operation=GetNextCACert` })).statusCode).toBe(400);
      expect((await h.t.app.server.inject({ method: 'GET', url: `/scep/${h.tenantId}` })).statusCode).toBe(400);
      expect((await h.t.app.server.inject({ method: 'GET', url: `/scep/${h.tenantId}?operation=GetCACert&operation=GetCACaps` })).statusCode).toBe(400);
    });
  });

  describe('PKCSReq', () => {
    it('issues a device identity for a valid challenge, bound to the intent', async () => {
      const intent = await h.intent();
      const { challenge } = await h.profile(intent);
      const rep = await enroll(challenge);
      expect(rep.pkiStatus).toBe('0');
      expect(rep.certificates).toHaveLength(1);
      const cert = rep.certificates[0]!;
      expect(cert.publicKeySpki).toEqual(key.selfSigned.publicKeySpki);
      expect(cert.subject.text).toBe(`O=OpenEnroll, CN=${intent.id}`);
      expect(new crypto.X509Certificate(cert.der).verify(new crypto.X509Certificate(parseCertificate(caPem).der).publicKey)).toBe(true);
      // A year, starting a little in the past for slow device clocks.
      expect(cert.notBefore.getTime()).toBe(h.clock.now().getTime() - 10 * MINUTE);
      expect(cert.notAfter.getTime() - cert.notBefore.getTime()).toBe(365 * 86_400_000);
      const binding = await h.apple.scep.identities.identify(h.t.store.db, h.tenantId, cert.der, h.clock.now());
      expect(binding).toEqual({ tenantId: h.tenantId, thumbprintSha256: cert.sha256Thumbprint, intentId: intent.id, enrollmentId: null });
      const row = await h.t.store.db.selectFrom('scep_challenges').selectAll().where('challenge_hash', '=', hashChallenge(challenge)).executeTakeFirstOrThrow();
      expect(row.used_at).toBe(h.clock.now().toISOString());
    });

    it('accepts GET PKIOperation with a base64 message, SHA-1/SHA-512 digests and 3DES envelopes, answering in kind', async () => {
      for (const [digest, cipher] of [
        ['sha512', 'aes-256-cbc'],
        ['sha1', 'des-ede3-cbc'],
      ] as const) {
        const { challenge } = await h.profile(await h.intent());
        const msg = pkiMessage(forgeCsr(key, { challenge }), caPem, key, { digest, envelope: { cipher } });
        const res = await h.t.app.server.inject({ method: 'GET', url: `/scep/${h.tenantId}/pkiclient.exe?operation=PKIOperation&message=${encodeURIComponent(msg.der.toString('base64'))}` });
        expect(res.statusCode).toBe(200);
        const rep = readCertRep(res.rawPayload, caPem, { certPem: key.selfSigned.pem, keyPem: key.keyPem });
        expect(rep.pkiStatus).toBe('0');
      }
      // Unencoded base64 too ('+' arrives as a space).
      const { challenge } = await h.profile(await h.intent());
      const raw = pkiMessage(forgeCsr(key, { challenge }), caPem, key).der.toString('base64');
      const res = await h.t.app.server.inject({ method: 'GET', url: `/scep/${h.tenantId}?operation=PKIOperation&message=${raw}` });
      expect(readCertRep(res.rawPayload, caPem, { certPem: key.selfSigned.pem, keyPem: key.keyPem }).pkiStatus).toBe('0');
    });

    it('accepts a body whatever its content type, and none', async () => {
      const { challenge } = await h.profile(await h.intent());
      const msg = pkiMessage(forgeCsr(key, { challenge }), caPem, key);
      const res = await h.post(msg.der, { contentType: null, path: `/scep/${h.tenantId}/pkiclient.exe` });
      expect(res.statusCode).toBe(200);
      expect(readCertRep(res.body, caPem, { certPem: key.selfSigned.pem, keyPem: key.keyPem }).pkiStatus).toBe('0');
    });
  });

  describe('challenges', () => {
    it('is refused once used (one-time), with CertRep FAILURE badRequest, and nothing changes', async () => {
      const { challenge } = await h.profile(await h.intent());
      expect((await enroll(challenge)).pkiStatus).toBe('0');
      const before = await h.counts();
      const refused = vi.spyOn(h.apple.scep.service, 'refused');
      const rep = await enroll(challenge, await clientKey());
      expect(rep).toMatchObject({ pkiStatus: '2', failInfo: '2', certificates: [] });
      expect(await h.counts()).toEqual(before);
      // Logged with the reason, never the challenge.
      expect(refused).toHaveBeenCalledWith(h.tenantId, expect.anything(), expect.objectContaining({ messageType: 'PKCSReq', failInfo: 'badRequest' }), 'challenge used');
      expect(JSON.stringify(refused.mock.calls)).not.toContain(challenge);
      refused.mockRestore();
    });

    it('is valid at 14:59 and refused at 15:00', async () => {
      const a = await h.profile(await h.intent());
      const b = await h.profile(await h.intent());
      h.clock.advance(15 * MINUTE - SECOND);
      expect((await enroll(a.challenge)).pkiStatus).toBe('0');
      h.clock.advance(SECOND);
      const before = await h.counts();
      expect(await enroll(b.challenge)).toMatchObject({ pkiStatus: '2', failInfo: '2' });
      expect(await h.counts()).toEqual(before);
    });

    it('one-time challenges never outlive 15 minutes, even when asked for longer', async () => {
      const { challenge } = await h.profile(await h.intent(), { challengeExpiresAt: new Date(h.clock.now().getTime() + 60 * MINUTE) });
      h.clock.advance(15 * MINUTE);
      expect((await enroll(challenge)).pkiStatus).toBe('2');
    });

    it('reusable intents give reusable challenges that expire with the intent', async () => {
      const expires = new Date(h.clock.now().getTime() + 14 * 86_400_000);
      const intent = await h.intent({ reusable: 1, expires_at: expires.toISOString() });
      const { challenge } = await h.profile(intent, { challengeExpiresAt: expires });
      expect((await enroll(challenge)).pkiStatus).toBe('0');
      h.clock.advance(13 * 86_400_000);
      expect((await enroll(challenge, await clientKey())).pkiStatus).toBe('0');
      h.clock.advance(86_400_000);
      expect((await enroll(challenge, await clientKey())).pkiStatus).toBe('2');
    });

    it('refuses unknown challenges, a request without one, and a consumed intent', async () => {
      const before = await h.counts();
      expect((await enroll('0'.repeat(64))).pkiStatus).toBe('2');
      const msg = pkiMessage(forgeCsr(key), caPem, key);
      expect(readCertRep((await h.post(msg.der)).body, caPem, { certPem: key.selfSigned.pem, keyPem: key.keyPem })).toMatchObject({ pkiStatus: '2', failInfo: '2' });
      expect(await h.counts()).toEqual(before);
      const intent = await h.intent();
      const { challenge } = await h.profile(intent);
      await h.t.store.db.updateTable('enrollment_intents').set({ consumed_at: h.clock.now().toISOString() }).where('id', '=', intent.id).execute();
      expect((await enroll(challenge)).pkiStatus).toBe('2');
    });

    it("refuses tenant A's challenge at tenant B's SCEP URL", async () => {
      const other = await h.t.createTenant('Fabrikam');
      const otherCa = await h.caPem(other.tenantId);
      const { challenge } = await h.profile(await h.intent());
      const before = await h.counts();
      const msg = pkiMessage(forgeCsr(key, { challenge }), otherCa, key);
      const res = await h.post(msg.der, { tenantId: other.tenantId });
      expect(readCertRep(res.body, otherCa, { certPem: key.selfSigned.pem, keyPem: key.keyPem })).toMatchObject({ pkiStatus: '2', failInfo: '2' });
      // And a request encrypted to tenant A's CA, sent to B, can't even be opened there.
      const toA = pkiMessage(forgeCsr(key, { challenge }), caPem, key);
      expect(readCertRep((await h.post(toA.der, { tenantId: other.tenantId })).body, otherCa, { certPem: key.selfSigned.pem, keyPem: key.keyPem })).toMatchObject({ pkiStatus: '2', failInfo: '1' });
      expect(await h.counts()).toEqual(before);
      // Still good at home.
      expect((await enroll(challenge)).pkiStatus).toBe('0');
    });
  });

  describe('RenewalReq', () => {
    /** A device with an identity: PKCSReq done, bound to an enrollment. */
    async function enrolledDevice() {
      const intent = await h.intent();
      const { challenge } = await h.profile(intent);
      const k = await clientKey();
      const identity = (await enroll(challenge, k)).certificates[0]!;
      await h.t.store.transaction((trx) => h.apple.scep.identities.bindEnrollment(trx, h.tenantId, identity.sha256Thumbprint, `enr-${intent.id}`));
      return { intent, key: k, identity, signer: { certPem: identity.pem, keyPem: k.keyPem } };
    }

    it('renews with the current identity (no challenge): same intent and enrollment, renewed_from recorded', async () => {
      const device = await enrolledDevice();
      h.clock.advance(200 * 86_400_000);
      const next = await clientKey();
      const rep = await enroll('', next, { messageType: '17', signer: device.signer });
      expect(rep.pkiStatus).toBe('0');
      const renewed = rep.certificates[0]!;
      expect(renewed.publicKeySpki).toEqual(next.selfSigned.publicKeySpki);
      expect(renewed.subject.text).toBe(`O=OpenEnroll, CN=${device.intent.id}`);
      const binding = await h.apple.scep.identities.identify(h.t.store.db, h.tenantId, renewed.der, h.clock.now());
      expect(binding).toEqual({ tenantId: h.tenantId, thumbprintSha256: renewed.sha256Thumbprint, intentId: device.intent.id, enrollmentId: `enr-${device.intent.id}` });
      const row = await h.t.store.db.selectFrom('issued_certificates').selectAll().where('thumbprint_sha256', '=', renewed.sha256Thumbprint).executeTakeFirstOrThrow();
      expect(row.renewed_from).toBe(device.identity.sha256Thumbprint);
      // The old identity stays valid until it expires: the device switches once it has the new one.
      expect(await h.apple.scep.identities.identify(h.t.store.db, h.tenantId, device.identity.der, h.clock.now())).toBeDefined();
    });

    it('is refused when signed by a revoked, expired, foreign or self-signed certificate, and nothing changes', async () => {
      const device = await enrolledDevice();
      const next = await clientKey();
      // Self-signed (a PKCSReq signer) without a challenge.
      let before = await h.counts();
      expect(await enroll('', next, { messageType: '17' })).toMatchObject({ pkiStatus: '2', failInfo: '2' });
      // Another CA's certificate for the same key.
      const foreignCa = await testCa('Foreign CA');
      const foreign = await testLeaf(foreignCa, { CN: 'foreign' });
      expect(await enroll('', next, { messageType: '17', signer: { certPem: foreign.cert.pem, keyPem: foreign.keyPem } })).toMatchObject({ pkiStatus: '2', failInfo: '2' });
      expect(await h.counts()).toEqual(before);
      // Revoked.
      await h.t.store.transaction((trx) => h.apple.scep.identities.revoke(trx, h.tenantId, device.identity.sha256Thumbprint, 'test'));
      before = await h.counts();
      expect(await enroll('', next, { messageType: '17', signer: device.signer })).toMatchObject({ pkiStatus: '2', failInfo: '2' });
      expect(await h.counts()).toEqual(before);
      // Expired.
      const other = await enrolledDevice();
      h.clock.advance(366 * 86_400_000);
      before = await h.counts();
      expect(await enroll('', next, { messageType: '17', signer: other.signer })).toMatchObject({ pkiStatus: '2', failInfo: '2' });
      expect(await h.counts()).toEqual(before);
    });
  });

  describe('tampering and bad input change nothing', () => {
    it('a tampered signature, another signer key, a CSR signed by another key, another CA as recipient', async () => {
      const { challenge } = await h.profile(await h.intent());
      const before = await h.counts();
      const other = await clientKey();
      // Flip a byte in the signature (the last bytes of the DER).
      const good = pkiMessage(forgeCsr(key, { challenge }), caPem, key);
      const tampered = Buffer.from(good.der);
      tampered[tampered.length - 5] = tampered[tampered.length - 5]! ^ 0x01;
      expect(readCertRep((await h.post(tampered)).body, caPem, { certPem: key.selfSigned.pem, keyPem: key.keyPem })).toMatchObject({ pkiStatus: '2', failInfo: '1' });
      // Signed by a key other than the one being certified.
      const wrongSigner = pkiMessage(forgeCsr(key, { challenge }), caPem, key, { signer: { certPem: other.selfSigned.pem, keyPem: other.keyPem } });
      expect(readCertRep((await h.post(wrongSigner.der)).body, caPem, { certPem: other.selfSigned.pem, keyPem: other.keyPem })).toMatchObject({ pkiStatus: '2', failInfo: '1' });
      // A CSR whose self-signature was made with another key.
      const badCsr = pkiMessage(forgeCsr(key, { challenge, signWith: other.keyPem }), caPem, key);
      expect(readCertRep((await h.post(badCsr.der)).body, caPem, { certPem: key.selfSigned.pem, keyPem: key.keyPem })).toMatchObject({ pkiStatus: '2', failInfo: '1' });
      // Encrypted to another CA.
      const stranger = await testCa('Some other CA');
      const elsewhere = pkiMessage(forgeCsr(key, { challenge }), caPem, key, { recipientPem: stranger.cert.pem });
      expect(readCertRep((await h.post(elsewhere.der)).body, caPem, { certPem: key.selfSigned.pem, keyPem: key.keyPem })).toMatchObject({ pkiStatus: '2', failInfo: '1' });
      // A 1024-bit key: refused as a bad algorithm.
      const small = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      const weak = { keyPem: small, selfSigned: await createSelfSignedCertificate({ privateKeyPem: small, subject: { CN: 'weak' }, validityDays: 1 }) };
      expect(readCertRep((await h.post(pkiMessage(forgeCsr(weak, { challenge }), caPem, weak).der)).body, caPem, { certPem: weak.selfSigned.pem, keyPem: weak.keyPem })).toMatchObject({ pkiStatus: '2', failInfo: '0' });
      expect(await h.counts()).toEqual(before);
      // The challenge is still unused.
      expect((await enroll(challenge)).pkiStatus).toBe('0');
    });

    it('oversized and malformed bodies are HTTP errors', async () => {
      const before = await h.counts();
      expect((await h.post(Buffer.alloc(MAX_PKI_MESSAGE_BYTES + 1, 0x30))).statusCode).toBe(413);
      expect((await h.post(Buffer.alloc(0))).statusCode).toBe(400);
      expect((await h.post(Buffer.from('not a pkiMessage'))).statusCode).toBe(400);
      expect((await h.post(crypto.randomBytes(2000))).statusCode).toBe(400);
      const { der } = pkiMessage(Buffer.from('x'), caPem, key);
      expect((await h.post(der.subarray(0, der.length - 10))).statusCode).toBe(400);
      expect((await h.t.app.server.inject({ method: 'GET', url: `/scep/${h.tenantId}?operation=PKIOperation&message=%%%` })).statusCode).toBe(400);
      expect((await h.t.app.server.inject({ method: 'GET', url: `/scep/${h.tenantId}?operation=PKIOperation` })).statusCode).toBe(400);
      // Readable envelope, unreadable CSR inside: a CertRep FAILURE.
      const rep = readCertRep((await h.post(der)).body, caPem, { certPem: key.selfSigned.pem, keyPem: key.keyPem });
      expect(rep).toMatchObject({ pkiStatus: '2' });
      expect(await h.counts()).toEqual(before);
    });

    it('CertPoll, GetCert and GetCRL are refused (we never answer PENDING)', async () => {
      for (const messageType of ['20', '21', '22']) {
        const msg = pkiMessage(Buffer.from('x'), caPem, key, { messageType });
        expect(readCertRep((await h.post(msg.der)).body, caPem, { certPem: key.selfSigned.pem, keyPem: key.keyPem })).toMatchObject({ pkiStatus: '2', failInfo: '2' });
      }
      // A CertRep isn't a request.
      expect((await h.post(pkiMessage(Buffer.from('x'), caPem, key, { messageType: '3' }).der)).statusCode).toBe(400);
    });

    it('no CA is created for a PKIOperation before GetCACert', async () => {
      const other = await h.t.createTenant('Northwind');
      const stranger = await testCa('Not yet');
      const before = await h.counts();
      const msg = pkiMessage(forgeCsr(key, { challenge: 'x' }), stranger.cert.pem, key);
      expect((await h.post(msg.der, { tenantId: other.tenantId })).statusCode).toBe(400);
      expect(await h.counts()).toEqual(before);
    });
  });
});
