import crypto from 'node:crypto';
import * as asn1js from 'asn1js';
import forge from 'node-forge';
import * as pkijs from 'pkijs';
import { expect } from 'vitest';
import type { AppleModule } from '../../src/apple/module.js';
import type { EnrollmentIntent } from '../../src/apple/mdm/contracts.js';
import { createSelfSignedCertificate, parseCertificate, type CertificateInfo } from '../../src/pki/certificates.js';
import { decryptEnvelopedData, encryptEnvelopedData, type EncryptOptions } from '../../src/pki/enveloped.js';
import { generateRsaKeyPair } from '../../src/pki/keys.js';
import { verifySignedData } from '../../src/pki/signed.js';
import { parsePlistDict } from '../../src/shared/plist.js';
import { MINUTE, ManualClock } from '../../src/shared/time.js';
import { createTestApp, type TestApp } from '../helpers/app.js';

/**
 * A SCEP client written for the tests (pkijs for CMS, node-forge for the CSR, so the server's own
 * message code isn't what reads its answers), and a harness: an app with https public URL on a
 * ManualClock, intents and issued profiles.
 */

export const PUBLIC_URL = 'https://openenroll.test';
export const TOPIC = 'com.apple.mgmt.External.5e3b1b1c-8a5d-4a3a-9b0e-2c7d1f0a9e11';

const SCEP = {
  messageType: '2.16.840.1.113733.1.9.2',
  pkiStatus: '2.16.840.1.113733.1.9.3',
  failInfo: '2.16.840.1.113733.1.9.4',
  senderNonce: '2.16.840.1.113733.1.9.5',
  recipientNonce: '2.16.840.1.113733.1.9.6',
  transactionID: '2.16.840.1.113733.1.9.7',
};
const OIDS = { data: '1.2.840.113549.1.7.1', signedData: '1.2.840.113549.1.7.2', contentType: '1.2.840.113549.1.9.3', messageDigest: '1.2.840.113549.1.9.4' };
const DIGEST_OIDS: Record<string, string> = { sha1: '1.3.14.3.2.26', sha256: '2.16.840.1.101.3.4.2.1', sha512: '2.16.840.1.101.3.4.2.3' };

export interface ClientKey {
  keyPem: string;
  /** Self-signed, as the requester's signer for PKCSReq. */
  selfSigned: CertificateInfo;
}

export async function clientKey(bits = 2048): Promise<ClientKey> {
  const { privateKeyPem } = await generateRsaKeyPair(bits);
  const selfSigned = await createSelfSignedCertificate({ privateKeyPem, subject: { CN: 'SCEP requester' }, validityDays: 30, notBefore: new Date(Date.now() - 86_400_000) });
  return { keyPem: privateKeyPem, selfSigned };
}

/** A PKCS#10 request by node-forge, with a challengePassword when given. */
export function forgeCsr(key: ClientKey, opts: { challenge?: string; cn?: string; signWith?: string } = {}): Buffer {
  const priv = forge.pki.privateKeyFromPem(key.keyPem);
  const pub = forge.pki.setRsaPublicKey(priv.n, priv.e);
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = pub;
  csr.setSubject([{ name: 'commonName', value: opts.cn ?? 'device' }]);
  if (opts.challenge !== undefined) csr.setAttributes([{ name: 'challengePassword', value: opts.challenge }]);
  csr.sign(forge.pki.privateKeyFromPem(opts.signWith ?? key.keyPem), forge.md.sha256.create());
  return Buffer.from(forge.asn1.toDer(forge.pki.certificationRequestToAsn1(csr)).getBytes(), 'binary');
}

export interface PkiMessageOptions {
  messageType?: string;
  transactionId?: string;
  senderNonce?: Buffer;
  digest?: 'sha1' | 'sha256' | 'sha512';
  /** Signer certificate and key (default: the requester's self-signed pair). */
  signer?: { certPem: string; keyPem: string };
  envelope?: EncryptOptions;
  /** Recipient of the envelope (default: the CA). */
  recipientPem?: string;
}

/** SignedData (SCEP attributes) over EnvelopedData (to the CA) of the CSR: a PKCSReq or RenewalReq. */
export function pkiMessage(content: Buffer, caPem: string, key: ClientKey, opts: PkiMessageOptions = {}): { der: Buffer; transactionId: string; senderNonce: Buffer } {
  const envelope = encryptEnvelopedData(content, [opts.recipientPem ?? caPem], { cipher: 'aes-128-cbc', ...opts.envelope });
  const signer = opts.signer ?? { certPem: key.selfSigned.pem, keyPem: key.keyPem };
  const transactionId = opts.transactionId ?? crypto.createHash('sha256').update(envelope).digest('hex');
  const senderNonce = opts.senderNonce ?? crypto.randomBytes(16);
  const digest = opts.digest ?? 'sha256';
  const cert = new pkijs.Certificate({ schema: asn1js.fromBER(new Uint8Array(parseCertificate(signer.certPem).der)).result });
  const attr = (type: string, value: asn1js.AsnType) => new pkijs.Attribute({ type, values: [value] });
  const attrs = [
    attr(OIDS.contentType, new asn1js.ObjectIdentifier({ value: OIDS.data })),
    attr(OIDS.messageDigest, new asn1js.OctetString({ valueHex: crypto.createHash(digest).update(envelope).digest() })),
    attr(SCEP.messageType, new asn1js.PrintableString({ value: opts.messageType ?? '19' })),
    attr(SCEP.transactionID, new asn1js.PrintableString({ value: transactionId })),
    attr(SCEP.senderNonce, new asn1js.OctetString({ valueHex: senderNonce })),
  ];
  const signedAttrs = new pkijs.SignedAndUnsignedAttributes({ type: 0, attributes: attrs });
  const toSign = Buffer.from(signedAttrs.toSchema().toBER());
  toSign[0] = 0x31;
  const digestAlg = new pkijs.AlgorithmIdentifier({ algorithmId: DIGEST_OIDS[digest]! });
  const sd = new pkijs.SignedData({
    version: 1,
    digestAlgorithms: [digestAlg],
    encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: OIDS.data, eContent: new asn1js.OctetString({ valueHex: envelope }) }),
    certificates: [cert],
    signerInfos: [
      new pkijs.SignerInfo({
        version: 1,
        sid: new pkijs.IssuerAndSerialNumber({ issuer: cert.issuer, serialNumber: cert.serialNumber }),
        digestAlgorithm: digestAlg,
        signedAttrs,
        signatureAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: '1.2.840.113549.1.1.1', algorithmParams: new asn1js.Null() }),
        signature: new asn1js.OctetString({ valueHex: crypto.sign(digest, toSign, signer.keyPem) }),
      }),
    ],
  });
  const der = Buffer.from(new pkijs.ContentInfo({ contentType: OIDS.signedData, content: sd.toSchema(true) }).toSchema().toBER());
  return { der, transactionId, senderNonce };
}

export interface CertRepView {
  messageType: string;
  pkiStatus: string;
  failInfo: string | undefined;
  transactionId: string;
  recipientNonce: Buffer;
  senderNonce: Buffer;
  /** SUCCESS: the issued certificates, decrypted with the requester's key. */
  certificates: CertificateInfo[];
}

/** Verifies a CertRep against the CA (as a client does) and reads it. */
export function readCertRep(body: Buffer, caPem: string, recipient: { certPem: string; keyPem: string }): CertRepView {
  const verified = verifySignedData(body, { trustAnchors: [caPem] });
  const info = new pkijs.ContentInfo({ schema: asn1js.fromBER(new Uint8Array(body)).result });
  const sd = new pkijs.SignedData({ schema: info.content });
  const attrs = sd.signerInfos[0]!.signedAttrs!.attributes;
  const get = (oid: string) => attrs.find((a) => a.type === oid)?.values[0] as asn1js.AsnType | undefined;
  const str = (oid: string) => (get(oid) as asn1js.PrintableString | undefined)?.valueBlock.value;
  const bytes = (oid: string) => Buffer.from((get(oid) as asn1js.OctetString).valueBlock.valueHexView);
  const pkiStatus = str(SCEP.pkiStatus)!;
  let certificates: CertificateInfo[] = [];
  if (pkiStatus === '0') {
    const inner = decryptEnvelopedData(verified.content, { certificatePem: recipient.certPem, privateKeyPem: recipient.keyPem });
    const degenerate = new pkijs.SignedData({ schema: new pkijs.ContentInfo({ schema: asn1js.fromBER(new Uint8Array(inner.content)).result }).content });
    expect(degenerate.signerInfos).toHaveLength(0);
    certificates = (degenerate.certificates ?? []).map((c) => parseCertificate(Buffer.from((c as pkijs.Certificate).toSchema().toBER())));
  }
  return {
    messageType: str(SCEP.messageType)!,
    pkiStatus,
    failInfo: str(SCEP.failInfo),
    transactionId: str(SCEP.transactionID)!,
    recipientNonce: bytes(SCEP.recipientNonce),
    senderNonce: bytes(SCEP.senderNonce),
    certificates,
  };
}

// ---- the app side ----

export interface ScepHarness {
  t: TestApp;
  clock: ManualClock;
  apple: AppleModule;
  tenantId: string;
  /** An intent row written directly (the intents service is another module's). */
  intent(opts?: Partial<EnrollmentIntent> & { tenantId?: string }): Promise<EnrollmentIntent>;
  /** Issues a profile for the intent; returns the signed DER, the parsed plist and the challenge. */
  profile(intent: EnrollmentIntent, opts?: { challengeExpiresAt?: Date; managedAppleId?: string }): Promise<{ signed: Buffer; xml: string; plist: Record<string, any>; challenge: string; profileUuid: string }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  caPem(tenantId?: string): Promise<string>;
  scepPath(tenantId?: string): string;
  post(body: Buffer, opts?: { tenantId?: string; path?: string; contentType?: string | null }): Promise<{ statusCode: number; body: Buffer; contentType: string }>;
  /** Row counts of what SCEP writes, to prove a refusal changed nothing. */
  counts(): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

export async function scepHarness(opts: { start?: string; env?: Record<string, string> } = {}): Promise<ScepHarness> {
  const clock = new ManualClock(opts.start ?? '2026-04-01T09:00:00.000Z');
  const t = await createTestApp({ clock, env: { OPENENROLL_PUBLIC_URL: PUBLIC_URL, ...opts.env } });
  const apple = t.app.modules.find((m) => m.name === 'apple') as AppleModule;
  const h: ScepHarness = {
    t,
    clock,
    apple,
    tenantId: t.tenantId,
    async intent(o = {}) {
      const now = clock.now();
      const row: EnrollmentIntent = {
        id: crypto.randomUUID(),
        tenant_id: o.tenantId ?? t.tenantId,
        source: 'userInitiated',
        enrollment_type: 'device',
        platform: 'iOS',
        serial_number: null,
        udid: null,
        imei: null,
        os_version: null,
        product: null,
        dep_device_id: null,
        profile_id: null,
        profile_name: null,
        profile_revision: null,
        user_id: null,
        ownership: 'company',
        device_enrollment_type: 'appleBulkWithUser',
        scope_tag_ids: '[]',
        gate_request: null,
        gate_decision: null,
        reusable: 0,
        created_at: now.toISOString(),
        expires_at: new Date(now.getTime() + 60 * MINUTE).toISOString(),
        consumed_at: null,
        ...o,
      };
      delete (row as { tenantId?: string }).tenantId;
      await t.store.db.insertInto('enrollment_intents').values(row).execute();
      return row;
    },
    async profile(intent, o = {}) {
      const { signedProfile, profileUuid } = await t.store.transaction((trx) =>
        apple.scep.profileIssuer.issueProfile(trx, intent, {
          topic: TOPIC,
          challengeExpiresAt: o.challengeExpiresAt ?? new Date(clock.now().getTime() + 15 * MINUTE),
          ...(o.managedAppleId ? { managedAppleId: o.managedAppleId } : {}),
        }),
      );
      const xml = verifySignedData(signedProfile).content.toString('utf8');
      const plist = parsePlistDict(xml) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
      const scep = (plist.PayloadContent as Record<string, any>[]).find((p) => p.PayloadType === 'com.apple.security.scep')!; // eslint-disable-line @typescript-eslint/no-explicit-any
      return { signed: signedProfile, xml, plist, challenge: scep.PayloadContent.Challenge as string, profileUuid };
    },
    async caPem(tenantId = t.tenantId) {
      const res = await t.app.server.inject({ method: 'GET', url: `/scep/${tenantId}?operation=GetCACert` });
      expect(res.statusCode, res.body).toBe(200);
      return parseCertificate(res.rawPayload).pem;
    },
    scepPath: (tenantId = t.tenantId) => `/scep/${tenantId}`,
    async post(body, o = {}) {
      const res = await t.app.server.inject({
        method: 'POST',
        url: `${o.path ?? `/scep/${o.tenantId ?? t.tenantId}`}?operation=PKIOperation`,
        payload: body,
        headers: o.contentType === null ? {} : { 'content-type': o.contentType ?? 'application/x-pki-message' },
      });
      return { statusCode: res.statusCode, body: res.rawPayload, contentType: String(res.headers['content-type'] ?? '') };
    },
    async counts() {
      const db = t.store.db;
      const n = async (table: 'issued_certificates' | 'tenant_cas' | 'secrets') => Number((await db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
      const used = await db.selectFrom('scep_challenges').select(['id', 'used_at']).orderBy('id').execute();
      return { issued: await n('issued_certificates'), cas: await n('tenant_cas'), secrets: await n('secrets'), challenges: used };
    },
    close: () => t.close(),
  };
  return h;
}
