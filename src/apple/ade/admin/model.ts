/**
 * Pure rules of the ADE admin API: the Graph shapes of depOnboardingSetting and
 * importedAppleDeviceIdentity (with OpenEnroll's extension properties), token and device statuses,
 * ids and serial numbers. No I/O.
 */
import type { DepProfilePlatform } from '../profiles/index.js';

export const DEP_TOKEN_TYPE = 'microsoft.graph.depOnboardingSetting';
export const APPLE_DEVICE_TYPE = 'microsoft.graph.importedAppleDeviceIdentity';
export const APPLE_DEVICE_RESULT_TYPE = 'microsoft.graph.importedAppleDeviceIdentityResult';
/** object_type of a token's scope tags; its profiles and devices are seen through it. */
export const DEP_TOKEN_OBJECT = 'depOnboardingSetting';

export const ADE_LIMITS = {
  /** "Maximum Automated Device Enrollment tokens per Intune account: 2,000". */
  tokensPerTenant: 2000,
  /** "Maximum enrollment profiles per token: 1,000" (the same article also says 100; see decisions). */
  profilesPerToken: 1000,
  tokenName: 128,
  description: 1024,
  serialNumber: 64,
  /** Serials per importAppleDeviceIdentityList / updateDeviceProfileAssignment call. */
  devicesPerRequest: 5000,
} as const;

/** Graph's value for a non-null DateTimeOffset that has no value yet. */
export const NEVER = '0001-01-01T00:00:00Z';

export const DEP_TOKEN_TYPES = ['none', 'dep', 'appleSchoolManager'] as const;
export type DepTokenType = (typeof DEP_TOKEN_TYPES)[number];
export const DISCOVERY_SOURCES = ['unknown', 'adminImport', 'deviceEnrollmentProgram'] as const;
export const ENROLLMENT_STATES = ['unknown', 'enrolled', 'pendingReset', 'failed', 'notContacted', 'blocked'] as const;
export const DEVICE_PLATFORMS = ['unknown', 'ios', 'android', 'windows', 'windowsMobile', 'macOS', 'visionOS', 'tvOS', 'unknownFutureValue'] as const;
export type DevicePlatform = (typeof DEVICE_PLATFORMS)[number];
/** Platforms an ADE device can be imported as. */
export const IMPORT_PLATFORMS = ['unknown', 'ios', 'macOS'] as const;

/** Apple's answer to our last assignment of a device, or PENDING until it comes. */
export const ASSIGNMENT_RESULTS = ['SUCCESS', 'NOT_ACCESSIBLE', 'FAILED', 'THROTTLED', 'PENDING'] as const;
export type AssignmentResult = (typeof ASSIGNMENT_RESULTS)[number];

// ---- tokens ----------------------------------------------------------------------------

export const TOKEN_STATUSES = ['pendingUpload', 'active', 'expired', 'termsNotSigned', 'tokenRejected'] as const;
export type TokenStatus = (typeof TOKEN_STATUSES)[number];

const DAY_MS = 86_400_000;

/**
 * pendingUpload: no server token yet; expired: Apple's access_token_expiry has passed;
 * termsNotSigned / tokenRejected: the sync engine recorded Apple's refusal in apple_status
 * (T_C_NOT_SIGNED, or any other refusal an admin must fix); else active.
 */
export function tokenStatus(t: { uploaded: boolean; expiration: string | null; appleStatus: string | null }, now: Date): TokenStatus {
  if (!t.uploaded) return 'pendingUpload';
  if (t.expiration && Date.parse(t.expiration) <= now.getTime()) return 'expired';
  if (t.appleStatus) return /T_C_NOT_SIGNED/.test(t.appleStatus) ? 'termsNotSigned' : 'tokenRejected';
  return 'active';
}

/** Whole days left, rounded up while valid (365 on the day of a year-long upload); negative once expired. */
export function daysUntil(expiration: string | null, now: Date): number | null {
  if (!expiration) return null;
  const left = Date.parse(expiration) - now.getTime();
  if (Number.isNaN(left)) return null;
  const days = left >= 0 ? Math.ceil(left / DAY_MS) : Math.floor(left / DAY_MS);
  return days === 0 ? 0 : days;
}

/** ABM answers org_type 'org', ASM 'edu'. */
export function tokenTypeOfOrg(orgType: string | null | undefined): DepTokenType {
  return orgType === 'edu' ? 'appleSchoolManager' : 'dep';
}

export const DEVICE_STATUSES = ['notContacted', 'missingProfile', 'assigned', 'readyToEnroll', 'enrolled', 'removedFromAbm'] as const;
export type DeviceStatus = (typeof DEVICE_STATUSES)[number];
export type DeviceStatusCounts = Record<DeviceStatus, number>;

export function emptyStatusCounts(): DeviceStatusCounts {
  return Object.fromEntries(DEVICE_STATUSES.map((s) => [s, 0])) as DeviceStatusCounts;
}

/** The dep_tokens columns the entity shows. */
export interface TokenRow {
  id: string;
  token_name: string | null;
  apple_identifier: string | null;
  token_type: string;
  data_sharing_consent: number;
  token_expiration: string | null;
  oauth_secret_id: string | null;
  server_name: string | null;
  org_name: string | null;
  share_sds: number;
  sync_status: string;
  last_sync_triggered_at: string | null;
  last_successful_sync_at: string | null;
  last_sync_error_code: number;
  last_sync_error: string | null;
  apple_status: string | null;
  synced_device_count: number;
  updated_at: string;
}

/** Graph's depOnboardingSetting plus OpenEnroll's extension properties (see decisions). */
export function toTokenEntity(row: TokenRow, tags: readonly string[], counts: DeviceStatusCounts, now: Date): Record<string, unknown> {
  return {
    id: row.id,
    appleIdentifier: row.apple_identifier,
    tokenExpirationDateTime: row.token_expiration ?? NEVER,
    lastModifiedDateTime: row.updated_at,
    lastSuccessfulSyncDateTime: row.last_successful_sync_at ?? NEVER,
    lastSyncTriggeredDateTime: row.last_sync_triggered_at ?? NEVER,
    shareTokenWithSchoolDataSyncService: row.share_sds === 1,
    lastSyncErrorCode: row.last_sync_error_code,
    tokenType: (DEP_TOKEN_TYPES as readonly string[]).includes(row.token_type) ? row.token_type : 'none',
    tokenName: row.token_name,
    syncedDeviceCount: row.synced_device_count,
    dataSharingConsentGranted: row.data_sharing_consent === 1,
    roleScopeTagIds: [...tags],
    // OpenEnroll extensions.
    status: tokenStatus({ uploaded: row.oauth_secret_id !== null, expiration: row.token_expiration, appleStatus: row.apple_status }, now),
    syncStatus: row.sync_status,
    lastSyncErrorMessage: row.last_sync_error ?? row.apple_status,
    daysUntilExpiration: daysUntil(row.token_expiration, now),
    mdmServerName: row.server_name,
    organizationName: row.org_name,
    deviceStatusCounts: { ...counts },
  };
}

// ---- devices ---------------------------------------------------------------------------

/** What a device's status is derived from (dep_devices, its token's default and its effective profile). */
export interface DeviceStatusInput {
  removedFromAppleAt: string | null;
  /** The stored enrollment_state. */
  enrollmentState: string;
  /** The sync engine has seen the serial on our MDM server at Apple. */
  seenAtApple: boolean;
  assignmentResult: string | null;
  /** The admin's choice, else the token's default for the device's platform. */
  effectiveProfileId: string | null;
  /** Apple's profile_uuid of the effective profile as currently defined (null: not defined yet). */
  effectiveProfileAppleUuid: string | null;
  /** The profile Apple holds for the device (from our assignment or the sync). */
  appleProfileUuid: string | null;
}

/**
 * The device's status, first match wins:
 * - removedFromAbm: released from ABM/ASM (deleted 45 days later);
 * - enrolled: enrolled here (also when pending a reset);
 * - notContacted: imported by an admin and not (yet) seen on our MDM server at Apple, unless Apple
 *   has accepted an assignment for it;
 * - missingProfile: no profile chosen and no default for its platform ("Missing profile");
 * - readyToEnroll: Apple holds the effective profile's current profile_uuid;
 * - assigned: a profile is chosen but Apple doesn't hold it (yet): pending, failed, throttled,
 *   not accessible, or the profile isn't defined at Apple yet.
 * The device list's SQL (device-service.ts) computes the same; a test keeps them equal.
 */
export function deviceStatus(d: DeviceStatusInput): DeviceStatus {
  if (d.removedFromAppleAt !== null) return 'removedFromAbm';
  if (d.enrollmentState === 'enrolled' || d.enrollmentState === 'pendingReset') return 'enrolled';
  if (!d.seenAtApple && d.assignmentResult !== 'SUCCESS') return 'notContacted';
  if (d.effectiveProfileId === null) return 'missingProfile';
  if (d.effectiveProfileAppleUuid !== null && d.appleProfileUuid === d.effectiveProfileAppleUuid) return 'readyToEnroll';
  return 'assigned';
}

/**
 * Graph's enrollmentState: 'enrolled' becomes 'pendingReset' while the device was enrolled with
 * another profile than its effective one, or with an older revision of it (a change that applies
 * only after a reset; name and device-name-template changes don't bump the revision).
 */
export function enrollmentStateOf(d: {
  enrollmentState: string;
  enrolledProfileId: string | null;
  enrolledProfileRevision: number | null;
  effectiveProfileId: string | null;
  effectiveProfileRevision: number | null;
}): string {
  if (d.enrollmentState !== 'enrolled' || d.enrolledProfileId === null || d.effectiveProfileId === null) return d.enrollmentState;
  if (d.enrolledProfileId !== d.effectiveProfileId) return 'pendingReset';
  return (d.enrolledProfileRevision ?? 0) < (d.effectiveProfileRevision ?? 0) ? 'pendingReset' : 'enrolled';
}

/** A dep_devices row with what the list query adds. */
export interface DeviceView {
  id: string;
  token_id: string;
  serial_number: string;
  description: string | null;
  platform: string;
  discovery_source: string;
  is_supervised: number;
  requested_profile_id: string | null;
  requested_profile_assigned_at: string | null;
  assignment_result: string | null;
  assignment_result_at: string | null;
  removed_from_apple_at: string | null;
  last_contacted_at: string | null;
  created_at: string;
  effective_profile_id: string | null;
  status: string;
  enrollment_state_now: string;
}

/** Graph's importedAppleDeviceIdentity plus OpenEnroll's extension properties (see decisions). */
export function toDeviceEntity(v: DeviceView): Record<string, unknown> {
  return {
    id: v.id,
    serialNumber: v.serial_number,
    requestedEnrollmentProfileId: v.requested_profile_id,
    requestedEnrollmentProfileAssignmentDateTime: v.requested_profile_assigned_at,
    isSupervised: v.is_supervised === 1,
    platform: v.platform,
    description: v.description,
    discoverySource: v.discovery_source,
    createdDateTime: v.created_at,
    lastContactedDateTime: v.last_contacted_at ?? NEVER,
    enrollmentState: v.enrollment_state_now,
    isDeleted: v.removed_from_apple_at !== null,
    // OpenEnroll extensions (deviceStatus, not status: Graph's import result has a Boolean status).
    deviceStatus: v.status,
    appleAssignmentResult: v.assignment_result,
    appleAssignmentDateTime: v.assignment_result_at,
    removedFromAppleDateTime: v.removed_from_apple_at,
    effectiveEnrollmentProfileId: v.effective_profile_id,
  };
}

/** Graph's platform of an Apple device, from Apple's device_family (else its os). */
export function platformOfAppleDevice(deviceFamily: string | null | undefined, os?: string | null): DevicePlatform {
  switch ((deviceFamily ?? '').toLowerCase()) {
    case 'iphone':
    case 'ipad':
    case 'ipod':
      return 'ios';
    case 'mac':
      return 'macOS';
    case 'appletv':
      return 'tvOS';
    case 'vision':
      return 'visionOS';
  }
  switch ((os ?? '').toLowerCase()) {
    case 'ios':
    case 'ipados':
      return 'ios';
    case 'osx':
    case 'macos':
      return 'macOS';
    case 'tvos':
      return 'tvOS';
    case 'visionos':
      return 'visionOS';
  }
  return 'unknown';
}

/** The profile platform that serves a device platform (ADE profiles exist for iOS/iPadOS and macOS). */
export function profilePlatformOf(platform: string): DepProfilePlatform | null {
  return platform === 'ios' ? 'iOS' : platform === 'macOS' ? 'macOS' : null;
}

/** Why a serial number can't be imported, or null. Apple serials are letters and digits. */
export function serialProblem(serial: string): string | null {
  const s = serial.trim();
  if (s === '') return 'is required';
  if (s.includes('.')) return 'must not contain a period';
  if (s.length > ADE_LIMITS.serialNumber) return `must be at most ${ADE_LIMITS.serialNumber} characters`;
  if (!/^[A-Za-z0-9]+$/.test(s)) return 'must contain only letters and digits';
  return null;
}

/** Serials are stored and compared in upper case, as Apple writes them. */
export const normalizeSerial = (serial: string) => serial.trim().toUpperCase();

// ---- profile ids ----------------------------------------------------------------------

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Intune's enrollmentProfile id: `{depOnboardingSettingId}_{profileGuid}`. */
export const profileIdFor = (tokenId: string, guid: string) => `${tokenId}_${guid}`;

/** A profile id as clients give it: the full id, or the bare GUID (Intune's observed $filter). */
export function fullProfileId(tokenId: string, given: string): string {
  const v = given.trim();
  return GUID.test(v) ? profileIdFor(tokenId, v.toLowerCase()) : v;
}

/**
 * One item of an importAppleDeviceIdentityList answer (Graph importedAppleDeviceIdentityResult):
 * the stored device, or what was asked for when nothing was stored, with the Boolean status and
 * OData property annotations saying why (Graph clients ignore them; people reading learn why).
 */
export function importResultItem(
  input: { serialNumber: string; requestedEnrollmentProfileId?: string | null; platform?: string | null; description?: string | null },
  stored: object | null | undefined,
  ok: boolean,
  annotations: Record<string, string>,
): Record<string, unknown> {
  const entity = stored ?? {
    id: null,
    serialNumber: input.serialNumber,
    requestedEnrollmentProfileId: input.requestedEnrollmentProfileId ?? null,
    requestedEnrollmentProfileAssignmentDateTime: null,
    isSupervised: false,
    platform: input.platform ?? 'unknown',
    description: input.description ?? null,
    discoverySource: 'adminImport',
    createdDateTime: null,
    lastContactedDateTime: null,
    enrollmentState: 'unknown',
    isDeleted: false,
  };
  return { '@odata.type': `#${APPLE_DEVICE_RESULT_TYPE}`, ...entity, status: ok, ...annotations };
}
