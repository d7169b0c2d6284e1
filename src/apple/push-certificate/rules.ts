import { nameField } from '../../pki/names.js';
import type { CertificateInfo } from '../../pki/certificates.js';

/**
 * Pure rules for the Apple MDM push certificate (requirements-004-B §B1): its status over time,
 * the topic it binds devices to, and which uploads are acceptable.
 */

const DAY_MS = 86_400_000;
/** "expiringSoon" for the last 30 days (the alert window). */
export const EXPIRING_SOON_DAYS = 30;
/** "Once the certificate expires, there is a 30-day grace period to renew it." (L1700) */
export const GRACE_PERIOD_DAYS = 30;
export const TOPIC_PREFIX = 'com.apple.mgmt.';

export type PushCertificateStatus = 'notConfigured' | 'active' | 'expiringSoon' | 'expiredInGracePeriod' | 'expired';

export interface PushCertificateState {
  status: PushCertificateStatus;
  /** Whole days, rounded up while valid (365 on the day of upload); negative once expired. */
  daysUntilExpiration: number | null;
  gracePeriodEndDateTime: Date | null;
}

/**
 * X.509's notAfter is the last valid instant, so the certificate is still valid (expiringSoon) at
 * expiration itself; the grace period runs from just after it up to and including expiration + 30 days.
 */
export function pushCertificateState(expiration: Date | null, now: Date): PushCertificateState {
  if (!expiration) return { status: 'notConfigured', daysUntilExpiration: null, gracePeriodEndDateTime: null };
  const left = expiration.getTime() - now.getTime();
  const gracePeriodEnd = new Date(expiration.getTime() + GRACE_PERIOD_DAYS * DAY_MS);
  const daysUntilExpiration = left >= 0 ? Math.ceil(left / DAY_MS) : Math.floor(left / DAY_MS);
  const status: PushCertificateStatus =
    left > EXPIRING_SOON_DAYS * DAY_MS ? 'active' : left >= 0 ? 'expiringSoon' : now.getTime() <= gracePeriodEnd.getTime() ? 'expiredInGracePeriod' : 'expired';
  return { status, daysUntilExpiration: daysUntilExpiration === 0 ? 0 : daysUntilExpiration, gracePeriodEndDateTime: gracePeriodEnd };
}

/** The APNs topic: the certificate subject's UID (com.apple.mgmt.External.<uuid>), when it is an MDM topic. */
export function topicOf(cert: CertificateInfo): string | undefined {
  const uid = nameField(cert.subject, 'UID');
  return uid?.startsWith(TOPIC_PREFIX) && uid.length > TOPIC_PREFIX.length ? uid : undefined;
}

/** "The GUID portion of the UID" the Intune blade shows as Subject ID. */
export function subjectIdOf(topic: string): string {
  const guid = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i.exec(topic);
  return guid ? guid[0] : topic.slice(topic.lastIndexOf('.') + 1);
}

/** Apple IDs are email addresses. */
export function appleIdentifierProblem(appleIdentifier: string): string | undefined {
  const v = appleIdentifier.trim();
  if (v.length === 0) return 'must not be empty.';
  if (v.length > 256) return 'must be at most 256 characters.';
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v)) return 'must be the Apple ID (an email address) used in the Apple Push Certificates Portal.';
  return undefined;
}

export interface UploadRefusal {
  status: 400 | 409;
  target: 'certificate' | 'appleIdentifier';
  message: string;
}

/**
 * Checks an uploaded push certificate against what is configured. The public key check needs the
 * stored keys and is the service's job.
 */
export function checkUploadedCertificate(cert: CertificateInfo, current: { topic: string | null } | null, now: Date): UploadRefusal | undefined {
  const topic = topicOf(cert);
  if (!topic) {
    return {
      status: 400,
      target: 'certificate',
      message: `The certificate is not an Apple MDM push certificate: its subject (${cert.subject.text}) has no UID starting with '${TOPIC_PREFIX}'. Upload the .pem downloaded from the Apple Push Certificates Portal.`,
    };
  }
  if (now.getTime() > cert.notAfter.getTime()) {
    return {
      status: 400,
      target: 'certificate',
      message: `The certificate expired on ${cert.notAfter.toISOString()}. Renew it in the Apple Push Certificates Portal and upload the new one.`,
    };
  }
  if (current?.topic && current.topic !== topic) {
    return {
      status: 409,
      target: 'certificate',
      message:
        `The certificate is for topic '${topic}', but the configured push certificate is for '${current.topic}'. ` +
        'Every enrolled Apple device is bound to the configured topic, so replacing it would cut all of them off until they re-enroll. ' +
        "Renew the existing certificate in the Apple Push Certificates Portal (choose Renew, not Create, signed in with the same Apple ID), then upload the renewed certificate. " +
        'To replace it deliberately, DELETE the current certificate first.',
    };
  }
  return undefined;
}
