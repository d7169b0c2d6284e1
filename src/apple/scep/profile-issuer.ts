import type { Logger } from 'pino';
import type { CertificateAuthority } from '../../ca/authority.js';
import { createSignedData } from '../../pki/signed.js';
import { buildPlist } from '../../shared/plist.js';
import type { Clock } from '../../shared/time.js';
import type { Trx } from '../../store/db.js';
import { appleDeviceUrls } from '../device-urls.js';
import type { EnrollmentIntent, ProfileIssuer } from '../mdm/contracts.js';
import { createChallenge, ONE_TIME_CHALLENGE_MS } from './challenges.js';
import { buildEnrollmentProfile } from './profile.js';

/**
 * Issues the signed enrollment profile of an intent: a fresh SCEP challenge bound to it, the CA
 * as trust anchor, and the com.apple.mdm payload, signed (CMS SignedData, attached) by the tenant's
 * profile signer or the configured certificate. Lives beside the SCEP server because it mints the
 * challenges that server redeems.
 */

export interface ProfileIssuerDeps {
  authority: CertificateAuthority;
  clock: Clock;
  logger: Logger;
  /** OPENENROLL_PUBLIC_URL: must be https, as Apple requires for ServerURL, CheckInURL and SCEP. */
  publicUrl: string | undefined;
}

export class EnrollmentProfileIssuer implements ProfileIssuer {
  constructor(private readonly deps: ProfileIssuerDeps) {}

  async issueProfile(
    trx: Trx,
    intent: EnrollmentIntent,
    opts: { topic: string; challengeExpiresAt: Date; managedAppleId?: string },
  ): Promise<{ signedProfile: Buffer; profileUuid: string }> {
    if (!opts.topic.startsWith('com.apple.mgmt.')) throw new Error(`The push topic '${opts.topic}' doesn't start with com.apple.mgmt.`);
    if (intent.platform !== 'iOS' && intent.platform !== 'macOS') throw new Error(`Enrollment profiles are for iOS and macOS, not '${intent.platform}'.`);
    const urls = appleDeviceUrls(this.deps.publicUrl, intent.tenant_id);
    if (!urls.serverUrl.startsWith('https://')) throw new Error('OPENENROLL_PUBLIC_URL must be https: Apple devices refuse MDM and SCEP URLs over plain http.');
    const now = this.deps.clock.now();
    // One-time challenges never outlive the 15-minute window, whatever the caller asked.
    const expiresAt = intent.reusable ? opts.challengeExpiresAt : new Date(Math.min(opts.challengeExpiresAt.getTime(), now.getTime() + ONE_TIME_CHALLENGE_MS));
    if (expiresAt <= now) throw new Error('The SCEP challenge would already be expired.');

    const ca = await this.deps.authority.ensure(trx, intent.tenant_id);
    const tenant = await trx.selectFrom('tenants').select('display_name').where('id', '=', intent.tenant_id).executeTakeFirstOrThrow();
    const { challenge, row } = await createChallenge(trx, intent, now, expiresAt);
    const { profile, ids } = buildEnrollmentProfile({
      tenantId: intent.tenant_id,
      intentId: intent.id,
      platform: intent.platform,
      userEnrollment: intent.enrollment_type === 'user',
      organization: tenant.display_name,
      topic: opts.topic,
      serverUrl: urls.serverUrl,
      checkInUrl: urls.checkInUrl,
      scepUrl: urls.scepUrl,
      challenge,
      caCertificateDer: ca.certificate.der,
      managedAppleId: opts.managedAppleId,
    });
    const signer = await this.deps.authority.profileSigner(trx, intent.tenant_id);
    const signedProfile = createSignedData(Buffer.from(buildPlist(profile), 'utf8'), {
      certificatePem: signer.certificatePem,
      privateKeyPem: signer.privateKey,
      chainPems: signer.chainPems,
      signingTime: now,
    });
    this.deps.logger.info({ tenantId: intent.tenant_id, intentId: intent.id, challengeId: row.id, challengeExpiresAt: expiresAt.toISOString(), reusable: !!intent.reusable }, 'enrollment profile issued');
    return { signedProfile, profileUuid: ids.profileUuid };
  }
}
