import crypto from 'node:crypto';
import fs from 'node:fs';
import type { Logger } from 'pino';
import { createSelfSignedCertificate, issueCertificate, parseCertificate, type CertificateInfo } from '../pki/certificates.js';
import { generateRsaKeyPair, loadPrivateKey, loadPublicKey, samePublicKey } from '../pki/keys.js';
import { pemBlocks } from '../pki/pem.js';
import type { SecretStore } from '../secrets/secret-store.js';
import { DAY, MINUTE, HOUR, type Clock } from '../shared/time.js';
import type { Executor, Store, Trx } from '../store/db.js';
import type { TenantCasTable } from '../store/schema.js';

/**
 * The tenant certificate authority: one per tenant, created on first use. It issues device
 * identity certificates (SCEP) and the certificate that signs served enrollment profiles. Both
 * private keys live in `secrets`, encrypted under the master key.
 */

export const CA_KEY_SECRET_KIND = 'tenantCaKey';
export const PROFILE_SIGNER_KEY_SECRET_KIND = 'profileSignerKey';

/** RSA 3072: the CA lives ten years, past 2030 when NIST retires 2048-bit keys. */
export const CA_KEY_BITS = 3072;
export const CA_VALIDITY_DAYS = 3650;
export const SIGNER_KEY_BITS = 2048;
export const SIGNER_VALIDITY_DAYS = 730;
/** A signer closer than this to expiry is replaced on next use, so a served profile never carries a dying signature. */
export const SIGNER_RENEW_BEFORE_MS = 30 * DAY;
/** Certificates start a little in the past: devices with a slow clock would otherwise see them as not yet valid. */
export const CA_BACKDATE_MS = HOUR;
export const LEAF_BACKDATE_MS = 10 * MINUTE;

export class CertificateAuthorityError extends Error {
  constructor(
    readonly code: 'unknownTenant' | 'noCa' | 'caExpired',
    message: string,
  ) {
    super(message);
    this.name = 'CertificateAuthorityError';
  }
}

/** A tenant's CA with its key ready to use. */
export interface TenantCa {
  tenantId: string;
  certificate: CertificateInfo;
  /** For signature checks (crypto.X509Certificate#verify / checkIssued). */
  x509: crypto.X509Certificate;
  privateKey: crypto.KeyObject;
}

/** Whoever signs served profiles: the tenant CA's signer, or the configured certificate. */
export interface ProfileSigner {
  certificatePem: string;
  privateKey: crypto.KeyObject;
  /** Certificates verifiers need between the signer and their trust anchor (the CA, or the configured chain). */
  chainPems: string[];
}

/** OPENENROLL_PROFILE_SIGNING_CERT_FILE/_KEY_FILE: read once at start-up so a bad file stops the server with a clear message. */
export function loadConfiguredProfileSigner(files: { certFile: string; keyFile: string } | undefined, now: Date): ProfileSigner | undefined {
  if (!files) return undefined;
  try {
    const certs = pemBlocks(fs.readFileSync(files.certFile, 'utf8')).filter((b) => b.label === 'CERTIFICATE');
    if (certs.length === 0) throw new Error('the certificate file holds no PEM CERTIFICATE');
    const [leaf, ...chain] = certs.map((b) => parseCertificate(b.der));
    const privateKey = loadPrivateKey(fs.readFileSync(files.keyFile, 'utf8'));
    if (!samePublicKey(loadPublicKey(leaf!.publicKeySpki), privateKey)) throw new Error("the key doesn't match the first certificate");
    if (now > leaf!.notAfter) throw new Error(`the certificate expired on ${leaf!.notAfter.toISOString()}`);
    return { certificatePem: leaf!.pem, privateKey, chainPems: chain.map((c) => c.pem) };
  } catch (err) {
    throw new Error(`Profile signing certificate (OPENENROLL_PROFILE_SIGNING_*_FILE): ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** X.509 names allow 64 characters in a common name (RFC 5280 ub-common-name). */
function commonName(text: string, suffix: string): string {
  const room = 64 - suffix.length;
  const base = text.trim().replace(/\s+/g, ' ');
  return `${base.length > room ? base.slice(0, room - 1).trimEnd() + '…' : base}${suffix}`;
}

export interface CertificateAuthorityDeps {
  store: Store;
  secrets: SecretStore;
  clock: Clock;
  logger: Logger;
  /** Overrides the tenant signer for every tenant. */
  configuredSigner?: ProfileSigner | undefined;
}

export class CertificateAuthority {
  /** Decrypted keys by tenant and secret id: a secret id's value never changes, so entries never go stale. */
  private readonly keys = new Map<string, crypto.KeyObject>();
  /** CAs read outside a transaction (so committed; a CA never changes once created): identify() runs on every MDM request. */
  private readonly committed = new Map<string, TenantCa>();

  constructor(private readonly deps: CertificateAuthorityDeps) {}

  private async key(db: Executor, tenantId: string, secretId: string): Promise<crypto.KeyObject> {
    const cacheKey = `${tenantId}/${secretId}`;
    let key = this.keys.get(cacheKey);
    if (!key) {
      key = loadPrivateKey(await this.deps.secrets.getText(db, tenantId, secretId));
      this.keys.set(cacheKey, key);
    }
    return key;
  }

  private async row(db: Executor, tenantId: string): Promise<TenantCasTable | undefined> {
    return db.selectFrom('tenant_cas').selectAll().where('tenant_id', '=', tenantId).executeTakeFirst();
  }

  /**
   * Parsed CAs by their key's secret id (new for every CA, never reused), so a read inside a
   * transaction (every MDM check-in's) costs one indexed SELECT instead of decrypting and parsing
   * a 3072-bit key: a CA row never changes, and one rolled back leaves an entry nothing matches.
   */
  private readonly parsed = new Map<string, { rowPem: string; ca: TenantCa }>();

  private async toTenantCa(db: Executor, row: TenantCasTable): Promise<TenantCa> {
    const known = this.parsed.get(row.ca_key_secret_id);
    if (known && known.ca.tenantId === row.tenant_id && known.rowPem === row.ca_cert_pem) return known.ca;
    const certificate = parseCertificate(row.ca_cert_pem);
    const ca = { tenantId: row.tenant_id, certificate, x509: new crypto.X509Certificate(certificate.der), privateKey: await this.key(db, row.tenant_id, row.ca_key_secret_id) };
    this.parsed.set(row.ca_key_secret_id, { rowPem: row.ca_cert_pem, ca });
    return ca;
  }

  /** The tenant's CA, or undefined when it has none yet (never creates one: for device-facing checks). */
  async find(db: Executor, tenantId: string): Promise<TenantCa | undefined> {
    const cached = this.committed.get(tenantId);
    if (cached) return cached;
    const row = await this.row(db, tenantId);
    if (!row) return undefined;
    const ca = await this.toTenantCa(db, row);
    if (!db.isTransaction) this.committed.set(tenantId, ca);
    return ca;
  }

  /**
   * The tenant's CA, created on first use. Race-safe: concurrent creators insert with ON CONFLICT
   * DO NOTHING; a loser removes the secrets it wrote and uses the winner's CA. Outside a transaction
   * the keys are generated before one is opened, so no lock is held while they are.
   */
  async ensure(db: Executor, tenantId: string): Promise<TenantCa> {
    const cached = this.committed.get(tenantId);
    if (cached) return cached;
    const existing = await this.row(db, tenantId);
    if (existing) return this.toTenantCa(db, existing);
    const tenant = await db.selectFrom('tenants').select(['id', 'display_name']).where('id', '=', tenantId).executeTakeFirst();
    if (!tenant) throw new CertificateAuthorityError('unknownTenant', `Tenant '${tenantId}' doesn't exist.`);
    const material = await this.newMaterial(tenant.id, tenant.display_name);
    const write = async (trx: Executor) => {
      const now = this.deps.clock.now().toISOString();
      const caSecret = await this.deps.secrets.put(trx, tenantId, CA_KEY_SECRET_KIND, material.caKeyPem);
      const signerSecret = await this.deps.secrets.put(trx, tenantId, PROFILE_SIGNER_KEY_SECRET_KIND, material.signerKeyPem);
      const inserted = await trx
        .insertInto('tenant_cas')
        .values({
          tenant_id: tenantId,
          ca_cert_pem: material.ca.pem,
          ca_key_secret_id: caSecret,
          signer_cert_pem: material.signer.pem,
          signer_key_secret_id: signerSecret,
          ca_not_after: material.ca.notAfter.toISOString(),
          created_at: now,
        })
        .onConflict((oc) => oc.column('tenant_id').doNothing())
        .returning('tenant_id')
        .executeTakeFirst();
      if (!inserted) {
        await this.deps.secrets.delete(trx, tenantId, caSecret);
        await this.deps.secrets.delete(trx, tenantId, signerSecret);
      } else {
        this.deps.logger.info({ tenantId, caSerial: material.ca.serialNumberHex, caNotAfter: material.ca.notAfter.toISOString() }, 'tenant certificate authority created');
      }
      const row = await this.row(trx, tenantId);
      if (!row) throw new Error('tenant CA vanished after creation');
      return this.toTenantCa(trx, row);
    };
    return db.isTransaction ? write(db) : this.deps.store.transaction(write);
  }

  private async newMaterial(tenantId: string, displayName: string) {
    const now = this.deps.clock.now();
    const caKeys = await generateRsaKeyPair(CA_KEY_BITS);
    const ca = await createSelfSignedCertificate({
      privateKeyPem: caKeys.privateKeyPem,
      // The tenant id keeps every tenant's CA name distinct, whatever the display names.
      subject: [
        ['O', 'OpenEnroll'],
        ['OU', tenantId],
        ['CN', commonName(displayName || 'OpenEnroll', ' Device CA')],
      ],
      validityDays: CA_VALIDITY_DAYS,
      notBefore: new Date(now.getTime() - CA_BACKDATE_MS),
      isCa: true,
      // SCEP: the CA also signs CertReps and is the recipient of requests (no separate RA certificate).
      keyUsages: ['keyCertSign', 'cRLSign', 'digitalSignature', 'keyEncipherment'],
    });
    const signer = await this.newSigner(ca, caKeys.privateKeyPem, displayName, now);
    return { ca, caKeyPem: caKeys.privateKeyPem, signer: signer.certificate, signerKeyPem: signer.keyPem };
  }

  private async newSigner(ca: CertificateInfo, caKeyPem: string, displayName: string, now: Date) {
    const keys = await generateRsaKeyPair(SIGNER_KEY_BITS);
    const notBefore = new Date(now.getTime() - LEAF_BACKDATE_MS);
    const days = Math.min(SIGNER_VALIDITY_DAYS, (ca.notAfter.getTime() - notBefore.getTime()) / DAY);
    if (days <= 0) throw new CertificateAuthorityError('caExpired', 'The tenant certificate authority has expired.');
    const certificate = await issueCertificate({
      publicKey: keys.publicKeyPem,
      issuerCertificatePem: ca.pem,
      issuerPrivateKeyPem: caKeyPem,
      subject: [
        ['O', 'OpenEnroll'],
        ['CN', commonName(displayName || 'OpenEnroll', ' Profile Signing')],
      ],
      validityDays: days,
      notBefore,
      // No extended key usage: verifiers (openssl smime's default purpose included) then accept it for signing.
      keyUsages: ['digitalSignature'],
    });
    return { certificate, keyPem: keys.privateKeyPem };
  }

  /**
   * What signs the tenant's profiles: the configured certificate when there is one, else the
   * tenant's signer (replaced when it nears expiry; compare-and-swap, so concurrent renewals agree).
   */
  async profileSigner(trx: Trx, tenantId: string): Promise<ProfileSigner> {
    if (this.deps.configuredSigner) return this.deps.configuredSigner;
    const ca = await this.ensure(trx, tenantId);
    let row = (await this.row(trx, tenantId))!;
    const now = this.deps.clock.now();
    const current = parseCertificate(row.signer_cert_pem);
    if (current.notAfter.getTime() - now.getTime() < SIGNER_RENEW_BEFORE_MS && ca.certificate.notAfter.getTime() - now.getTime() > SIGNER_RENEW_BEFORE_MS) {
      const tenant = await trx.selectFrom('tenants').select('display_name').where('id', '=', tenantId).executeTakeFirst();
      const next = await this.newSigner(ca.certificate, ca.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), tenant?.display_name ?? '', now);
      const secretId = await this.deps.secrets.put(trx, tenantId, PROFILE_SIGNER_KEY_SECRET_KIND, next.keyPem);
      const res = await trx
        .updateTable('tenant_cas')
        .set({ signer_cert_pem: next.certificate.pem, signer_key_secret_id: secretId })
        .where('tenant_id', '=', tenantId)
        .where('signer_key_secret_id', '=', row.signer_key_secret_id)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 1) {
        await this.deps.secrets.delete(trx, tenantId, row.signer_key_secret_id);
        this.deps.logger.info({ tenantId, notAfter: next.certificate.notAfter.toISOString() }, 'profile signing certificate renewed');
      } else {
        await this.deps.secrets.delete(trx, tenantId, secretId);
      }
      row = (await this.row(trx, tenantId))!;
    }
    return { certificatePem: row.signer_cert_pem, privateKey: await this.key(trx, tenantId, row.signer_key_secret_id), chainPems: [ca.certificate.pem] };
  }
}
