import crypto from 'node:crypto';
import type { Logger } from 'pino';
import type { IdentityBinding, IdentityVerifier } from '../apple/mdm/contracts.js';
import { issueCertificate, parseCertificate, type CertificateInfo } from '../pki/certificates.js';
import type { NameInput } from '../pki/names.js';
import { DAY, type Clock } from '../shared/time.js';
import type { Executor, Trx } from '../store/db.js';
import type { IssuedCertificatesTable } from '../store/schema.js';
import { CertificateAuthorityError, LEAF_BACKDATE_MS, type CertificateAuthority } from './authority.js';
import { RecentCache } from '../shared/recent-cache.js';

/** Device identity certificates: issued by the tenant CA, recorded, bound to an intent and then an enrollment. */

export const MDM_IDENTITY_PURPOSE = 'mdmIdentity';
/** A year: Apple devices renew through a reinstalled enrollment profile well before that. */
export const IDENTITY_VALIDITY_DAYS = 365;

export interface IssueIdentityInput {
  /** The requester's public key (SPKI DER or PEM, or a KeyObject). */
  csrPublicKey: string | Uint8Array | crypto.KeyObject;
  subject: NameInput;
  intentId: string | null;
  /** Default 365; never past the CA's own expiry. */
  days?: number;
  /** Renewal: the thumbprint of the certificate this one replaces; its enrollment carries over. */
  renewedFrom?: string | null;
  enrollmentId?: string | null;
}

export interface IssuedIdentity {
  certificate: CertificateInfo;
  /** Upper-case hex SHA-256 of the DER: the id in issued_certificates and in IdentityBinding. */
  thumbprintSha256: string;
  row: IssuedCertificatesTable;
}

const normalizeThumbprint = (t: string) => t.trim().toUpperCase();

/**
 * Certificates already seen to be issued by a CA, by both DERs' SHA-256: a device presents the same
 * identity with every check-in, and whether those exact bytes chain to those exact CA bytes never
 * changes (validity, revocation and the record are still checked every time). Only successes are
 * kept; bounded, the oldest entry goes first.
 */
const issuedByCaSeen = new RecentCache<true>(20_000);

function issuedByCa(certificate: CertificateInfo, caCertificate: CertificateInfo, caX509: crypto.X509Certificate): boolean {
  const key = `${caCertificate.sha256Thumbprint}:${certificate.sha256Thumbprint}`;
  if (issuedByCaSeen.get(key)) return true;
  let x509: crypto.X509Certificate;
  try {
    x509 = new crypto.X509Certificate(certificate.der);
  } catch {
    return false;
  }
  if (!x509.checkIssued(caX509) || !x509.verify(caX509.publicKey)) return false;
  return issuedByCaSeen.set(key, true);
}

export class DeviceIdentities implements IdentityVerifier {
  constructor(
    private readonly ca: CertificateAuthority,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /** Issues and records a device identity certificate (clientAuth; digitalSignature + keyEncipherment, Apple's "Key Usage 5"). */
  async issueIdentityCertificate(trx: Trx, tenantId: string, input: IssueIdentityInput): Promise<IssuedIdentity> {
    const ca = await this.ca.ensure(trx, tenantId);
    const now = this.clock.now();
    const notBefore = new Date(now.getTime() - LEAF_BACKDATE_MS);
    const days = Math.min(input.days ?? IDENTITY_VALIDITY_DAYS, (ca.certificate.notAfter.getTime() - notBefore.getTime()) / DAY);
    if (!(days > 0)) throw new CertificateAuthorityError('caExpired', 'The tenant certificate authority has expired.');
    const certificate = await issueCertificate({
      publicKey: input.csrPublicKey,
      issuerCertificatePem: ca.certificate.pem,
      issuerPrivateKeyPem: ca.privateKey,
      subject: input.subject,
      validityDays: days,
      notBefore,
      keyUsages: ['digitalSignature', 'keyEncipherment'],
      extendedKeyUsages: ['clientAuth'],
    });
    const row: IssuedCertificatesTable = {
      thumbprint_sha256: certificate.sha256Thumbprint,
      tenant_id: tenantId,
      serial_hex: certificate.serialNumberHex,
      subject: certificate.subject.text,
      not_before: certificate.notBefore.toISOString(),
      not_after: certificate.notAfter.toISOString(),
      cert_pem: certificate.pem,
      purpose: MDM_IDENTITY_PURPOSE,
      intent_id: input.intentId,
      enrollment_id: input.enrollmentId ?? null,
      renewed_from: input.renewedFrom ? normalizeThumbprint(input.renewedFrom) : null,
      revoked_at: null,
      created_at: now.toISOString(),
    };
    await trx.insertInto('issued_certificates').values(row).execute();
    return { certificate, thumbprintSha256: certificate.sha256Thumbprint, row };
  }

  /** The record of a certificate this tenant's CA issued, current and unrevoked at `now`; undefined otherwise. */
  async verifiedRecord(db: Executor, tenantId: string, certificateDer: Buffer, now: Date): Promise<{ row: IssuedCertificatesTable; certificate: CertificateInfo } | undefined> {
    let certificate: CertificateInfo;
    try {
      certificate = parseCertificate(certificateDer);
    } catch {
      return undefined;
    }
    const ca = await this.ca.find(db, tenantId);
    if (!ca) return undefined;
    // Name chaining and the signature: a certificate of another CA (or another tenant's) fails here.
    if (!issuedByCa(certificate, ca.certificate, ca.x509)) return undefined;
    if (now < certificate.notBefore || now > certificate.notAfter) return undefined;
    const row = await db
      .selectFrom('issued_certificates')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('thumbprint_sha256', '=', certificate.sha256Thumbprint)
      .executeTakeFirst();
    // Only certificates we recorded: a signature alone isn't enough (and the record says what it is bound to).
    if (!row || row.purpose !== MDM_IDENTITY_PURPOSE || row.revoked_at !== null) return undefined;
    return { row, certificate };
  }

  async identify(db: Executor, tenantId: string, certificateDer: Buffer, now: Date): Promise<IdentityBinding | undefined> {
    const found = await this.verifiedRecord(db, tenantId, certificateDer, now);
    if (!found) return undefined;
    return { tenantId, thumbprintSha256: found.row.thumbprint_sha256, intentId: found.row.intent_id, enrollmentId: found.row.enrollment_id };
  }

  async bindEnrollment(trx: Trx, tenantId: string, thumbprintSha256: string, enrollmentId: string): Promise<void> {
    const res = await trx
      .updateTable('issued_certificates')
      .set({ enrollment_id: enrollmentId })
      .where('tenant_id', '=', tenantId)
      .where('thumbprint_sha256', '=', normalizeThumbprint(thumbprintSha256))
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) throw new Error(`No current identity certificate ${thumbprintSha256} to bind.`);
  }

  /** Revokes one certificate; false when it doesn't exist or already was. identify() refuses it from then on. */
  async revoke(trx: Trx, tenantId: string, thumbprintSha256: string, reason: string): Promise<boolean> {
    const res = await trx
      .updateTable('issued_certificates')
      .set({ revoked_at: this.clock.now().toISOString() })
      .where('tenant_id', '=', tenantId)
      .where('thumbprint_sha256', '=', normalizeThumbprint(thumbprintSha256))
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    const revoked = Number(res.numUpdatedRows) === 1;
    if (revoked) this.logger.info({ tenantId, thumbprintSha256: normalizeThumbprint(thumbprintSha256), reason }, 'device identity certificate revoked');
    return revoked;
  }

  /** Revokes every certificate bound to an enrollment (check-out, wipe, deletion); returns how many. */
  async revokeEnrollment(trx: Trx, tenantId: string, enrollmentId: string, reason: string): Promise<number> {
    const res = await trx
      .updateTable('issued_certificates')
      .set({ revoked_at: this.clock.now().toISOString() })
      .where('tenant_id', '=', tenantId)
      .where('enrollment_id', '=', enrollmentId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    const count = Number(res.numUpdatedRows);
    if (count > 0) this.logger.info({ tenantId, enrollmentId, count, reason }, 'device identity certificates revoked');
    return count;
  }
}
