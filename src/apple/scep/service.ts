import type crypto from 'node:crypto';
import type { Logger } from 'pino';
import type { CertificateAuthority, TenantCa } from '../../ca/authority.js';
import type { DeviceIdentities, IssuedIdentity } from '../../ca/identities.js';
import { parseCsr, type CertificateInfo, type CsrInfo } from '../../pki/certificates.js';
import { decryptEnvelopedData, encryptEnvelopedData, type DecryptedEnvelope } from '../../pki/enveloped.js';
import { PkiError } from '../../pki/errors.js';
import { loadPublicKey, samePublicKey } from '../../pki/keys.js';
import type { NameInput } from '../../pki/names.js';
import { verifySignedData } from '../../pki/signed.js';
import type { Clock } from '../../shared/time.js';
import type { Store, Trx } from '../../store/db.js';
import { checkChallenge, claimChallenge } from './challenges.js';
import { buildCertRep, certificatesOnly, csrChallengePassword, MalformedPkiMessage, readPkiMessage, type FailInfo, type PkiMessageEnvelope } from './pki-message.js';

/**
 * The SCEP server (RFC 8894) of each tenant's CA. The CA itself signs responses and receives
 * requests (GetCACert returns the one CA certificate; no RA). We never answer PENDING: a request
 * is granted or refused at once, so CertPoll (GetCertInitial) is always refused.
 */

/** What GetCACaps advertises (RFC 8894 §3.5.2). SHA-1 and DES3 are accepted from old clients but not offered. */
export const CA_CAPABILITIES = ['AES', 'POSTPKIOperation', 'Renewal', 'SCEPStandard', 'SHA-256', 'SHA-512'] as const;
/** pkiMessages are a few KiB; this bounds the work an anonymous request can cause. */
export const MAX_PKI_MESSAGE_BYTES = 256 * 1024;
const RSA_BITS = { min: 2048, max: 4096 };

/** The subject of a device identity: the intent it proves, nothing about the device (also right for User Enrollment). */
export function identitySubject(intentId: string): NameInput {
  return [
    ['O', 'OpenEnroll'],
    ['CN', intentId],
  ];
}

export interface ScepAnswer {
  status: number;
  contentType: string;
  body: Buffer | string;
}

/** A refusal: answered with a CertRep FAILURE when the request could be read, else an HTTP error. */
class Refusal extends Error {
  constructor(
    readonly failInfo: FailInfo,
    readonly reason: string,
  ) {
    super(reason);
  }
}

const text = (status: number, body: string): ScepAnswer => ({ status, contentType: 'text/plain; charset=utf-8', body: `${body}\n` });

export interface ScepServiceDeps {
  store: Store;
  clock: Clock;
  logger: Logger;
  authority: CertificateAuthority;
  identities: DeviceIdentities;
}

export interface ScepRequestContext {
  requestId: string;
}

export class ScepService {
  private readonly logger: Logger;

  constructor(private readonly deps: ScepServiceDeps) {
    this.logger = deps.logger.child({ component: 'scep' });
  }

  async tenantExists(tenantId: string): Promise<boolean> {
    return !!(await this.deps.store.db.selectFrom('tenants').select('id').where('id', '=', tenantId).executeTakeFirst());
  }

  /** The CA certificate (DER), creating the tenant's CA on first use. */
  async caCertificate(tenantId: string): Promise<Buffer> {
    return (await this.deps.authority.ensure(this.deps.store.db, tenantId)).certificate.der;
  }

  caCapabilities(): string {
    return `${CA_CAPABILITIES.join('\n')}\n`;
  }

  /** Logs a refusal: what and why, never the body or the challenge. */
  refused(tenantId: string, ctx: ScepRequestContext, fields: Record<string, unknown>, reason: string): void {
    this.logger.warn({ tenantId, requestId: ctx.requestId, ...fields, reason }, 'SCEP request refused');
  }

  /** PKIOperation: PKCSReq and RenewalReq are answered with a signed CertRep; unreadable messages with HTTP 400. */
  async pkiOperation(tenantId: string, der: Buffer, ctx: ScepRequestContext): Promise<ScepAnswer> {
    let msg: PkiMessageEnvelope;
    try {
      msg = readPkiMessage(der);
    } catch (err) {
      const reason = err instanceof MalformedPkiMessage ? err.message : 'unreadable pkiMessage';
      this.refused(tenantId, ctx, { operation: 'PKIOperation' }, reason);
      return text(400, 'The pkiMessage is malformed.');
    }
    const ca = await this.deps.authority.find(this.deps.store.db, tenantId);
    if (!ca) {
      this.refused(tenantId, ctx, { operation: 'PKIOperation', messageType: msg.messageType, transactionId: msg.transactionId }, 'the tenant has no CA yet (GetCACert first)');
      return text(400, 'This SCEP server has no CA certificate yet; request GetCACert first.');
    }
    const now = this.deps.clock.now();
    try {
      const issued = await this.process(tenantId, ca, msg, der, now);
      this.logger.info(
        { tenantId, requestId: ctx.requestId, messageType: msg.messageType, transactionId: msg.transactionId, thumbprintSha256: issued.identity.thumbprintSha256, intentId: issued.identity.row.intent_id },
        'SCEP certificate issued',
      );
      const degenerate = certificatesOnly([issued.identity.certificate.der]);
      const envelopedContent = encryptEnvelopedData(degenerate, [issued.requester.der], { cipher: issued.cipher });
      return this.certRep(ca, msg, now, { status: 'SUCCESS', envelopedContent });
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      this.refused(tenantId, ctx, { operation: 'PKIOperation', messageType: msg.messageType, transactionId: msg.transactionId, failInfo: err.failInfo }, err.reason);
      return this.certRep(ca, msg, now, { status: 'FAILURE', failInfo: err.failInfo });
    }
  }

  private certRep(ca: TenantCa, msg: PkiMessageEnvelope, now: Date, result: { status: 'SUCCESS'; envelopedContent: Buffer } | { status: 'FAILURE'; failInfo: FailInfo }): ScepAnswer {
    const body = buildCertRep({
      signerCertificatePem: ca.certificate.pem,
      signerKey: ca.privateKey,
      transactionId: msg.transactionId,
      recipientNonce: msg.senderNonce,
      digest: msg.digest,
      signingTime: now,
      ...result,
    });
    return { status: 200, contentType: 'application/x-pki-message', body };
  }

  private async process(tenantId: string, ca: TenantCa, msg: PkiMessageEnvelope, der: Buffer, now: Date): Promise<{ identity: IssuedIdentity; requester: CertificateInfo; cipher: DecryptedEnvelope['cipher'] }> {
    let requester: CertificateInfo;
    try {
      requester = verifySignedData(der).signer;
    } catch (err) {
      throw pkiRefusal(err, 'the pkiMessage signature');
    }
    if (msg.messageType === 'CertPoll') throw new Refusal('badRequest', 'CertPoll (GetCertInitial) for a transaction we never left pending');
    if (msg.messageType !== 'PKCSReq' && msg.messageType !== 'RenewalReq') throw new Refusal('badRequest', `${msg.messageType} is not supported`);

    let decrypted: DecryptedEnvelope;
    try {
      decrypted = decryptEnvelopedData(msg.envelope, { certificatePem: ca.certificate.der, privateKeyPem: ca.privateKey });
    } catch (err) {
      throw pkiRefusal(err, 'the pkcsPKIEnvelope');
    }
    let csr: CsrInfo;
    try {
      csr = await parseCsr(decrypted.content);
    } catch (err) {
      throw pkiRefusal(err, 'the certificate signing request');
    }
    checkRequestKey(csr.publicKeySpki);
    const csrKey = loadPublicKey(csr.publicKeySpki);

    if (msg.messageType === 'PKCSReq') {
      // Proof of possession for the response: it is encrypted to the signer, which must hold the requested key.
      if (!samePublicKey(loadPublicKey(requester.publicKeySpki), csrKey)) throw new Refusal('badMessageCheck', "the PKCSReq isn't signed with the key being certified");
      let challenge: string | undefined;
      try {
        challenge = csrChallengePassword(decrypted.content);
      } catch (err) {
        throw new Refusal('badRequest', err instanceof Error ? err.message : 'unreadable challengePassword');
      }
      if (challenge === undefined) throw new Refusal('badRequest', 'the request has no challengePassword');
      const identity = await this.deps.store.transaction(async (trx) => this.enroll(trx, tenantId, challenge, csrKey, now));
      return { identity, requester, cipher: decrypted.cipher };
    }

    // RenewalReq: signed by a current identity of this CA; no challenge, same intent and enrollment.
    const identity = await this.deps.store.transaction(async (trx) => {
      const current = await this.deps.identities.verifiedRecord(trx, tenantId, requester.der, now);
      if (!current) throw new Refusal('badRequest', 'RenewalReq signed by a certificate that is not a current identity of this CA');
      return this.deps.identities.issueIdentityCertificate(trx, tenantId, {
        csrPublicKey: csrKey,
        subject: current.row.intent_id ? identitySubject(current.row.intent_id) : current.certificate.subject.attributes.map((a) => [a.oid, a.value] as const),
        intentId: current.row.intent_id,
        enrollmentId: current.row.enrollment_id,
        renewedFrom: current.row.thumbprint_sha256,
      });
    });
    return { identity, requester, cipher: decrypted.cipher };
  }

  private async enroll(trx: Trx, tenantId: string, challenge: string, csrKey: crypto.KeyObject, now: Date): Promise<IssuedIdentity> {
    const check = await checkChallenge(trx, tenantId, challenge, now);
    if (!check.ok) throw new Refusal('badRequest', `challenge ${check.reason}`);
    if (!(await claimChallenge(trx, check.challenge, now))) throw new Refusal('badRequest', 'challenge used');
    return this.deps.identities.issueIdentityCertificate(trx, tenantId, { csrPublicKey: csrKey, subject: identitySubject(check.intent.id), intentId: check.intent.id });
  }
}

function pkiRefusal(err: unknown, what: string): Refusal {
  if (err instanceof Refusal) return err;
  if (err instanceof PkiError) return new Refusal(err.code === 'unsupported' ? 'badAlg' : 'badMessageCheck', `${what}: ${err.message}`);
  throw err;
}

/** RSA from 2048 to 4096 bits: what Apple devices generate, and what a response can be encrypted to. */
function checkRequestKey(spki: Buffer): void {
  const key = loadPublicKey(spki);
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (key.asymmetricKeyType !== 'rsa' || bits < RSA_BITS.min || bits > RSA_BITS.max) {
    throw new Refusal('badAlg', `the requested key is ${key.asymmetricKeyType ?? '?'} ${bits || ''} (RSA ${RSA_BITS.min}–${RSA_BITS.max} bits required)`.replace(/ {2}/g, ' '));
  }
}
