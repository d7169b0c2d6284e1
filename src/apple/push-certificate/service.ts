import crypto from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditLog } from '../../audit/audit-log.js';
import { hasPermission, type Actor } from '../../auth/principal.js';
import { forbidden, GraphError, invalidProperty } from '../../graph/errors.js';
import type { JobScheduler } from '../../jobs/scheduler.js';
import { createCsr, parseCertificate, parseCsr, type CertificateInfo } from '../../pki/certificates.js';
import { PkiError } from '../../pki/errors.js';
import { generateRsaKeyPair, loadPublicKey, samePublicKey } from '../../pki/keys.js';
import { pemBlocks } from '../../pki/pem.js';
import type { SecretStore } from '../../secrets/secret-store.js';
import { DAY, type Clock } from '../../shared/time.js';
import { isUniqueViolation, type Executor, type Store, type Trx } from '../../store/db.js';
import type { ApplePushCertificatesTable } from '../../store/schema.js';
import { appleIdentifierProblem, checkUploadedCertificate, pushCertificateState, subjectIdOf, topicOf, type PushCertificateStatus } from './rules.js';
import { vendorSignedPushCsr, type MdmVendorCredentials } from './vendor-csr.js';

export const PUSH_CERTIFICATE_TYPE = 'microsoft.graph.applePushNotificationCertificate';
/** Kind of the secrets holding push certificate private keys. */
export const PUSH_KEY_SECRET_KIND = 'applePushCertificateKey';
export const EXPIRY_CHECK_JOB = 'applePushCertificateExpiryCheck';
/** The stable log message of the renewal alert (operators alert on it). */
export const EXPIRY_ALERT_MESSAGE = 'Apple MDM push certificate needs renewal';

const AUDIT = { resourceType: PUSH_CERTIFICATE_TYPE, category: 'Enrollment', componentName: 'Enrollment' } as const;

/** Graph's applePushNotificationCertificate plus OpenEnroll's status properties. */
export interface PushCertificateEntity {
  id: string | null;
  appleIdentifier: string | null;
  topicIdentifier: string | null;
  lastModifiedDateTime: string | null;
  expirationDateTime: string | null;
  certificateUploadStatus: string | null;
  certificateUploadFailureReason: string | null;
  certificateSerialNumber: string | null;
  /** Always null on read (Graph). */
  certificate: null;
  status: PushCertificateStatus;
  daysUntilExpiration: number | null;
  gracePeriodEndDateTime: string | null;
  subjectId: string | null;
}

/** What APNs pushes and enrollment profiles need. */
export interface ReadyPushCertificate {
  topic: string;
  certificatePem: string;
  keyPem: string;
  expirationDateTime: string;
}

export interface ExpiryAlert {
  tenantId: string;
  status: PushCertificateStatus;
  topic: string | null;
  expirationDateTime: string | null;
  daysUntilExpiration: number | null;
  gracePeriodEndDateTime: string | null;
}

export interface PushCertificateDeps {
  store: Store;
  secrets: SecretStore;
  audit: AuditLog;
  clock: Clock;
  jobs: JobScheduler;
  logger: Logger;
  vendor: MdmVendorCredentials | undefined;
}

export function toPushCertificateEntity(row: ApplePushCertificatesTable | undefined, now: Date): PushCertificateEntity {
  const configured = row?.certificate_pem ? row : undefined;
  const expiration = configured?.expiration ? new Date(configured.expiration) : null;
  const state = pushCertificateState(expiration, now);
  return {
    id: row?.id ?? null,
    appleIdentifier: configured?.apple_identifier ?? null,
    topicIdentifier: configured?.topic ?? null,
    lastModifiedDateTime: configured?.last_modified ?? null,
    expirationDateTime: configured?.expiration ?? null,
    certificateUploadStatus: row?.upload_status ?? null,
    certificateUploadFailureReason: row?.upload_failure_reason ?? null,
    certificateSerialNumber: configured?.serial_number ?? null,
    certificate: null,
    status: state.status,
    daysUntilExpiration: state.daysUntilExpiration,
    gracePeriodEndDateTime: state.gracePeriodEndDateTime?.toISOString() ?? null,
    subjectId: configured?.topic ? subjectIdOf(configured.topic) : null,
  };
}

/**
 * The tenant's Apple MDM push certificate: CSRs with keys kept in the secrets table, uploads that
 * must answer our CSR and keep the topic, the enrollment gate, and the daily renewal alert.
 */
export class PushCertificateService {
  constructor(private readonly deps: PushCertificateDeps) {}

  private lock(db: Executor, tenantId: string) {
    const q = db.selectFrom('apple_push_certificates').selectAll().where('tenant_id', '=', tenantId);
    return (this.deps.store.dialect === 'postgres' ? q.forUpdate() : q).executeTakeFirst();
  }

  private row(db: Executor, tenantId: string) {
    return db.selectFrom('apple_push_certificates').selectAll().where('tenant_id', '=', tenantId).executeTakeFirst();
  }

  async get(actor: Actor): Promise<PushCertificateEntity> {
    return toPushCertificateEntity(await this.row(this.deps.store.db, actor.tenantId), this.deps.clock.now());
  }

  /** The CSR as handed to the admin: vendor-signed when a vendor certificate is configured. */
  private present(csrPem: string): string {
    if (!this.deps.vendor) return csrPem;
    const der = pemBlocks(csrPem)[0]!.der;
    return vendorSignedPushCsr(der, this.deps.vendor);
  }

  /** New RSA-2048 key and CSR, replacing any pending one; the current certificate and key stay in use. */
  async generateSigningRequest(actor: Actor): Promise<string> {
    const { tenantId } = actor;
    const { privateKeyPem } = await generateRsaKeyPair(2048);
    const tenant = await this.deps.store.db.selectFrom('tenants').select('display_name').where('id', '=', tenantId).executeTakeFirst();
    // X.520 caps organizationName at 64 characters.
    const org = (tenant?.display_name ?? 'OpenEnroll').slice(0, 64);
    const csr = await createCsr({ subject: [['CN', 'OpenEnroll MDM Push'], ['O', org]], privateKeyPem });
    const write = () =>
      this.deps.store.transaction(async (trx) => {
        const now = this.deps.clock.now().toISOString();
        const row = await this.lock(trx, tenantId);
        const keySecretId = await this.deps.secrets.put(trx, tenantId, PUSH_KEY_SECRET_KIND, privateKeyPem);
        if (row) {
          if (row.pending_key_secret_id) await this.deps.secrets.delete(trx, tenantId, row.pending_key_secret_id);
          await trx
            .updateTable('apple_push_certificates')
            .set({ pending_csr_pem: csr.pem, pending_key_secret_id: keySecretId, pending_csr_created_at: now })
            .where('tenant_id', '=', tenantId)
            .execute();
        } else {
          await trx
            .insertInto('apple_push_certificates')
            .values({
              tenant_id: tenantId,
              id: crypto.randomUUID(),
              apple_identifier: null,
              topic: null,
              certificate_pem: null,
              serial_number: null,
              not_before: null,
              expiration: null,
              key_secret_id: null,
              pending_csr_pem: csr.pem,
              pending_key_secret_id: keySecretId,
              pending_csr_created_at: now,
              upload_status: null,
              upload_failure_reason: null,
              last_modified: now,
              created_at: now,
            })
            .execute();
        }
        const after = await this.row(trx, tenantId);
        await this.deps.audit.record(trx, actor, {
          ...AUDIT,
          activity: 'Generate Apple MDM push certificate signing request',
          operation: 'Action',
          resourceId: after!.id,
          resourceDisplayName: after!.topic,
          before: { certificateSigningRequestDateTime: row?.pending_csr_created_at ?? null },
          after: { certificateSigningRequestDateTime: now, certificateSigningRequestKeySha256: sha256Hex(csr.publicKeySpki) },
        });
      });
    try {
      await write();
    } catch (err) {
      // Two first requests at once: one inserted the row; the other now updates it.
      if (!isUniqueViolation(err)) throw err;
      await write();
    }
    return this.present(csr.pem);
  }

  /** The pending CSR; one is generated when none is pending (that needs the write permission). */
  async downloadSigningRequest(actor: Actor): Promise<string> {
    const row = await this.row(this.deps.store.db, actor.tenantId);
    if (row?.pending_csr_pem) return this.present(row.pending_csr_pem);
    const p = actor.principal;
    if (!hasPermission(p, 'enrollment.write') || p.scopeTagIds !== null) {
      throw forbidden('No certificate signing request is pending, and generating one needs an unscoped principal with enrollment.write.');
    }
    return this.generateSigningRequest(actor);
  }

  /** Upload or renew (PATCH): the certificate must answer our CSR (or be the current key's) and keep the topic. */
  async upload(actor: Actor, input: { appleIdentifier: string; certificate?: string | null }): Promise<PushCertificateEntity> {
    const { tenantId } = actor;
    const appleProblem = appleIdentifierProblem(input.appleIdentifier);
    if (appleProblem) throw invalidProperty('appleIdentifier', appleProblem);
    const appleIdentifier = input.appleIdentifier.trim();
    const cert = input.certificate == null ? undefined : readPushCertificate(input.certificate);
    const now = this.deps.clock.now();

    const entity = await this.deps.store.transaction(async (trx) => {
      const row = await this.lock(trx, tenantId);
      const before = toPushCertificateEntity(row, now);
      const nowIso = now.toISOString();
      if (!cert) {
        if (!row?.certificate_pem) throw invalidProperty('certificate', 'is required: no push certificate is configured yet.');
        await trx.updateTable('apple_push_certificates').set({ apple_identifier: appleIdentifier, last_modified: nowIso }).where('tenant_id', '=', tenantId).execute();
        const after = toPushCertificateEntity(await this.row(trx, tenantId), now);
        await this.audit(trx, actor, 'Patch Apple MDM push certificate', before, after);
        return after;
      }
      const refusal = checkUploadedCertificate(cert, row?.certificate_pem ? { topic: row.topic } : null, now);
      if (refusal) throw new GraphError(refusal.status, refusal.status === 409 ? 'Conflict' : 'BadRequest', refusal.message, { target: refusal.target });

      const certKey = loadPublicKey(cert.publicKeySpki);
      const pendingKey = row?.pending_csr_pem ? (await parseCsr(row.pending_csr_pem)).publicKeySpki : undefined;
      const currentKey = row?.certificate_pem ? parseCertificate(row.certificate_pem).publicKeySpki : undefined;
      let keySecretId: string;
      let promoted = false;
      if (pendingKey && row?.pending_key_secret_id && samePublicKey(certKey, loadPublicKey(pendingKey))) {
        keySecretId = row.pending_key_secret_id;
        promoted = true;
      } else if (currentKey && row?.key_secret_id && samePublicKey(certKey, loadPublicKey(currentKey))) {
        keySecretId = row.key_secret_id;
      } else {
        throw invalidProperty(
          'certificate',
          row?.pending_csr_pem
            ? "its public key doesn't match the certificate signing request OpenEnroll generated. Upload the certificate Apple issued for the latest CSR downloaded from OpenEnroll."
            : 'no certificate signing request from OpenEnroll is pending. Download the CSR, have Apple sign it in the Apple Push Certificates Portal, then upload the certificate Apple returns.',
        );
      }
      if (promoted && row?.key_secret_id && row.key_secret_id !== keySecretId) await this.deps.secrets.delete(trx, tenantId, row.key_secret_id);
      await trx
        .updateTable('apple_push_certificates')
        .set({
          apple_identifier: appleIdentifier,
          topic: topicOf(cert)!,
          certificate_pem: cert.pem,
          serial_number: cert.serialNumberHex,
          not_before: cert.notBefore.toISOString(),
          expiration: cert.notAfter.toISOString(),
          key_secret_id: keySecretId,
          ...(promoted ? { pending_csr_pem: null, pending_key_secret_id: null, pending_csr_created_at: null } : {}),
          upload_status: null,
          upload_failure_reason: null,
          last_modified: nowIso,
        })
        .where('tenant_id', '=', tenantId)
        .execute();
      // Daily renewal check for this tenant, from now on (dedupe key: one job per tenant).
      await this.deps.jobs.enqueue(trx, { tenantId, kind: EXPIRY_CHECK_JOB, dedupeKey: EXPIRY_CHECK_JOB, intervalMs: DAY });
      const after = toPushCertificateEntity(await this.row(trx, tenantId), now);
      await this.audit(trx, actor, before.topicIdentifier ? 'Renew Apple MDM push certificate' : 'Upload Apple MDM push certificate', before, after);
      return after;
    });
    if (entity.status !== 'active') this.alert(tenantId, entity);
    return entity;
  }

  /** Removes the certificate, its keys and any pending CSR. Apple devices can no longer be reached or enroll. */
  async delete(actor: Actor): Promise<void> {
    const { tenantId } = actor;
    await this.deps.store.transaction(async (trx) => {
      const row = await this.lock(trx, tenantId);
      if (!row) return;
      for (const id of [row.key_secret_id, row.pending_key_secret_id]) if (id) await this.deps.secrets.delete(trx, tenantId, id);
      await trx.deleteFrom('apple_push_certificates').where('tenant_id', '=', tenantId).execute();
      await this.deps.jobs.cancel(trx, tenantId, EXPIRY_CHECK_JOB);
      await this.audit(trx, actor, 'Delete Apple MDM push certificate', toPushCertificateEntity(row, this.deps.clock.now()), null);
    });
  }

  private async audit(trx: Trx, actor: Actor, activity: string, before: PushCertificateEntity | null, after: PushCertificateEntity | null) {
    const subject = after ?? before!;
    await this.deps.audit.record(trx, actor, {
      ...AUDIT,
      activity,
      operation: after === null ? 'Delete' : 'Patch',
      resourceId: subject.id ?? actor.tenantId,
      resourceDisplayName: subject.topicIdentifier,
      before: before ? { ...before } : null,
      after: after ? { ...after } : null,
      secretProperties: ['certificate'],
    });
  }

  /**
   * The gate every Apple enrollment passes: a configured, unexpired push certificate and its key.
   * Expired (even within the 30-day grace period, which is for renewing) blocks enrollment, because
   * APNs refuses an expired certificate and a device enrolled then could never be managed.
   */
  async requireReadyPushCertificate(db: Executor, tenantId: string, now: Date = this.deps.clock.now()): Promise<ReadyPushCertificate> {
    const row = await this.row(db, tenantId);
    if (!row?.certificate_pem || !row.topic || !row.expiration || !row.key_secret_id) {
      throw new GraphError(
        409,
        'PushCertificateRequired',
        'Apple enrollment is not possible: no Apple MDM push certificate is configured. Upload one at deviceManagement/applePushNotificationCertificate.',
      );
    }
    const state = pushCertificateState(new Date(row.expiration), now);
    if (state.status === 'expiredInGracePeriod') {
      throw new GraphError(
        409,
        'PushCertificateExpired',
        `Apple enrollment is blocked: the Apple MDM push certificate (topic ${row.topic}) expired on ${row.expiration}. ` +
          `Renew it in the Apple Push Certificates Portal with the same Apple ID (${row.apple_identifier ?? 'the one that created it'}) and upload it before the grace period ends on ${state.gracePeriodEndDateTime!.toISOString()}.`,
      );
    }
    if (state.status === 'expired') {
      throw new GraphError(
        409,
        'PushCertificateExpired',
        `Apple enrollment is blocked: the Apple MDM push certificate (topic ${row.topic}) expired on ${row.expiration} and its 30-day grace period ended on ${state.gracePeriodEndDateTime!.toISOString()}. ` +
          'Renew it in the Apple Push Certificates Portal if Apple still allows it; otherwise a new certificate means every Apple device must re-enroll.',
      );
    }
    return { topic: row.topic, certificatePem: row.certificate_pem, keyPem: await this.deps.secrets.getText(db, tenantId, row.key_secret_id), expirationDateTime: row.expiration };
  }

  /** The daily job: logs the renewal alert while the certificate is in its last 30 days or expired. */
  async checkExpiry(tenantId: string): Promise<ExpiryAlert | null> {
    const entity = toPushCertificateEntity(await this.row(this.deps.store.db, tenantId), this.deps.clock.now());
    if (entity.status === 'active' || entity.status === 'notConfigured') return null;
    return this.alert(tenantId, entity);
  }

  private alert(tenantId: string, entity: PushCertificateEntity): ExpiryAlert {
    const alert: ExpiryAlert = {
      tenantId,
      status: entity.status,
      topic: entity.topicIdentifier,
      expirationDateTime: entity.expirationDateTime,
      daysUntilExpiration: entity.daysUntilExpiration,
      gracePeriodEndDateTime: entity.gracePeriodEndDateTime,
    };
    this.deps.logger.warn({ pushCertificateAlert: alert }, EXPIRY_ALERT_MESSAGE);
    return alert;
  }
}

const sha256Hex = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex').toUpperCase();

/** The push certificate from the uploaded text: the PEM block with an MDM topic, else the first one. */
function readPushCertificate(text: string): CertificateInfo {
  try {
    const blocks = text.includes('-----BEGIN ') ? pemBlocks(text).filter((b) => b.label === 'CERTIFICATE') : [];
    if (blocks.length > 1) {
      const certs = blocks.map((b) => parseCertificate(b.der));
      return certs.find((c) => topicOf(c)) ?? certs[0]!;
    }
    return parseCertificate(blocks[0]?.der ?? text);
  } catch (err) {
    if (err instanceof PkiError) throw invalidProperty('certificate', `must be the PEM certificate downloaded from the Apple Push Certificates Portal (${err.message})`);
    throw err;
  }
}
