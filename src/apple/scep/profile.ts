import crypto from 'node:crypto';

/**
 * The enrollment profile (.mobileconfig) as a plist dictionary, following Apple's schemas
 * (apple/device-management mdm/profiles: TopLevel, CommonPayloadKeys, com.apple.security.scep,
 * com.apple.security.root, com.apple.mdm). Pure: the issuer adds the challenge, signs and stores.
 */

/** Every right (Apple: 8191 = all thirteen flags); ignored in User Enrollment, so left out there. */
export const ACCESS_RIGHTS_ALL = 8191;
export const SERVER_CAPABILITIES = ['com.apple.mdm.per-user-connections', 'com.apple.mdm.bootstraptoken'] as const;
/** Apple's "Key Usage": 1 signing | 4 encryption. */
export const SCEP_KEY_USAGE = 5;
export const SCEP_KEY_SIZE = 2048;
/** TopLevel TargetDeviceType: 1 iPhone/iPad/iPod touch, 5 Mac. */
const TARGET_DEVICE_TYPE = { iOS: 1, macOS: 5 } as const;

export interface EnrollmentProfileInput {
  tenantId: string;
  intentId: string;
  platform: 'iOS' | 'macOS';
  userEnrollment: boolean;
  organization: string;
  topic: string;
  serverUrl: string;
  checkInUrl: string;
  scepUrl: string;
  challenge: string;
  /** DER of the tenant CA: the SCEP trust anchor and CAFingerprint. */
  caCertificateDer: Buffer;
  /** Profile-based User Enrollment (before iOS 18 / macOS 15). */
  managedAppleId?: string | undefined;
}

export interface ProfileIdentifiers {
  profileIdentifier: string;
  profileUuid: string;
  scepUuid: string;
  caUuid: string;
  mdmUuid: string;
}

/** A UUID derived from a name, so re-issuing a profile for the same intent replaces rather than duplicates it. */
function nameUuid(name: string): string {
  const b = crypto.createHash('sha256').update(name).digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x50; // version 5 layout (name-based), SHA-256 instead of SHA-1
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex').toUpperCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Reverse-DNS labels: letters, digits and hyphens. */
const label = (s: string) => s.replace(/[^A-Za-z0-9-]/g, '-');

export function profileIdentifiers(tenantId: string, intentId: string): ProfileIdentifiers {
  const base = `openenroll:${tenantId}:${intentId}`;
  return {
    profileIdentifier: `com.openenroll.enrollment.${label(intentId)}`,
    profileUuid: nameUuid(`${base}:profile`),
    scepUuid: nameUuid(`${base}:scep`),
    caUuid: nameUuid(`${base}:ca`),
    mdmUuid: nameUuid(`${base}:mdm`),
  };
}

export type PlistDict = Record<string, unknown>;

export function buildEnrollmentProfile(input: EnrollmentProfileInput): { profile: PlistDict; ids: ProfileIdentifiers } {
  const ids = profileIdentifiers(input.tenantId, input.intentId);
  const org = input.organization.trim() || 'OpenEnroll';
  const scep: PlistDict = {
    PayloadType: 'com.apple.security.scep',
    PayloadVersion: 1,
    PayloadIdentifier: `${ids.profileIdentifier}.scep`,
    PayloadUUID: ids.scepUuid,
    PayloadDisplayName: 'Device identity certificate',
    PayloadContent: {
      URL: input.scepUrl,
      Name: 'OpenEnroll',
      // The intent, not the device: nothing identifying in User Enrollment either.
      Subject: [[['O', 'OpenEnroll']], [['CN', input.intentId]]],
      Challenge: input.challenge,
      Keysize: SCEP_KEY_SIZE,
      'Key Type': 'RSA',
      'Key Usage': SCEP_KEY_USAGE,
      // SHA-1: Apple's SCEP client recognises MD5 and SHA-1 fingerprints only (by length).
      CAFingerprint: crypto.createHash('sha1').update(input.caCertificateDer).digest(),
      Retries: 3,
      RetryDelay: 10,
      // macOS: the identity key can't be exported from the keychain.
      KeyIsExtractable: false,
    },
  };
  const ca: PlistDict = {
    PayloadType: 'com.apple.security.root',
    PayloadVersion: 1,
    PayloadIdentifier: `${ids.profileIdentifier}.ca`,
    PayloadUUID: ids.caUuid,
    PayloadDisplayName: `${org} device CA`,
    PayloadCertificateFileName: 'openenroll-device-ca.cer',
    PayloadContent: input.caCertificateDer,
  };
  const mdm: PlistDict = {
    PayloadType: 'com.apple.mdm',
    PayloadVersion: 1,
    PayloadIdentifier: `${ids.profileIdentifier}.mdm`,
    PayloadUUID: ids.mdmUuid,
    PayloadDisplayName: 'Mobile device management',
    IdentityCertificateUUID: ids.scepUuid,
    Topic: input.topic,
    ServerURL: input.serverUrl,
    CheckInURL: input.checkInUrl,
    SignMessage: true,
    CheckOutWhenRemoved: true,
    ServerCapabilities: [...SERVER_CAPABILITIES],
    ...(input.userEnrollment
      ? { EnrollmentMode: 'BYOD', ...(input.managedAppleId ? { ManagedAppleID: input.managedAppleId } : {}) }
      : { AccessRights: ACCESS_RIGHTS_ALL }),
  };
  const profile: PlistDict = {
    PayloadType: 'Configuration',
    PayloadVersion: 1,
    PayloadIdentifier: ids.profileIdentifier,
    PayloadUUID: ids.profileUuid,
    PayloadDisplayName: `${org} MDM enrollment`,
    PayloadDescription: input.userEnrollment
      ? `Lets ${org} manage its own apps, accounts and data on this device, kept apart from yours (User Enrollment).`
      : `Enrolls this device in ${org}'s device management.`,
    PayloadOrganization: org,
    // The MDM payload is device-channel only (com.apple.mdm.yaml); macOS reads this key, iOS ignores it.
    PayloadScope: 'System',
    TargetDeviceType: TARGET_DEVICE_TYPE[input.platform],
    PayloadContent: [ca, scep, mdm],
  };
  return { profile, ids };
}
