import type { DeviceInput } from '../../devices/model.js';
import type { EnrollmentMethod, EnrollmentReasonCode } from '../evaluation/types.js';

/*
 * Device enrollment managers (requirements-004-A §12, seed L1438–1523). Pure: the limits and the
 * enrollment-time checks the evaluation engine applies to a DEM account, and the shape of the
 * device record a DEM enrollment writes.
 */

export const DEM_LIMITS = {
  /** "There's a limit of 150 DEM accounts in Microsoft Intune" (L1523): per tenant. */
  maxManagersPerTenant: 150,
  /** "enroll and manage up to 1,000 devices" (L1442, L1504, L6498): per account. */
  maxDevicesPerManager: 1000,
  /** "up to 10 personally owned devices with work profiles" (L1487, L2860): per account. */
  maxAndroidWorkProfileDevicesPerManager: 10,
} as const;

/** Pure: may one more DEM account be added to a tenant that has `current`? */
export const canAddManager = (current: number): boolean => current < DEM_LIMITS.maxManagersPerTenant;

/** Pure: may a DEM account that already enrolled `enrolled` devices enroll one more? */
export const withinDeviceQuota = (enrolled: number): boolean => enrolled < DEM_LIMITS.maxDevicesPerManager;

/** Pure: may it enroll one more Android personally-owned work-profile device, having `enrolled`? */
export const withinAndroidWorkProfileQuota = (enrolled: number): boolean => enrolled < DEM_LIMITS.maxAndroidWorkProfileDevicesPerManager;

/**
 * Enrollment methods a DEM account can't use: Apple ADE (L1496, L4618, L6498), Apple School Manager
 * (L5640, L6624), Apple Configurator (L5928), Android Enterprise corporate-owned work profile and
 * fully managed (L1489–1492, L3023).
 */
export const DEM_UNSUPPORTED_METHODS: readonly EnrollmentMethod[] = [
  'appleAde',
  'appleAsm',
  'appleConfigurator',
  'androidCorporateWorkProfile',
  'androidFullyManaged',
];

/** The Android personally-owned work profile, the only kind the 10-device cap counts. */
export const isAndroidPersonalWorkProfile = (method: EnrollmentMethod): boolean => method === 'androidWorkProfile';

export interface DemEnrollmentFacts {
  method: EnrollmentMethod;
  /** Devices the account enrolled so far (demEnrolledCount). */
  enrolledCount: number;
  /** Of those, Android personally-owned work-profile devices. */
  androidWorkProfileCount: number;
}

export type DemCheck =
  | { allowed: true }
  | { allowed: false; reason: Extract<EnrollmentReasonCode, 'demNotAllowedForMethod' | 'demLimitReached'>; message: string };

/** Pure: whether a DEM account may enroll this device now. Methods are checked before quotas. */
export function checkDemEnrollment(f: DemEnrollmentFacts): DemCheck {
  if (DEM_UNSUPPORTED_METHODS.includes(f.method)) {
    return { allowed: false, reason: 'demNotAllowedForMethod', message: `A device enrollment manager account can't enroll devices with ${f.method}.` };
  }
  if (!withinDeviceQuota(f.enrolledCount)) {
    return {
      allowed: false,
      reason: 'demLimitReached',
      message: `This device enrollment manager account has enrolled ${f.enrolledCount} devices; the limit is ${DEM_LIMITS.maxDevicesPerManager.toLocaleString('en-US')}.`,
    };
  }
  if (isAndroidPersonalWorkProfile(f.method) && !withinAndroidWorkProfileQuota(f.androidWorkProfileCount)) {
    return {
      allowed: false,
      reason: 'demLimitReached',
      message: `This device enrollment manager account has enrolled ${f.androidWorkProfileCount} Android work-profile devices; the limit is ${DEM_LIMITS.maxAndroidWorkProfileDevicesPerManager}.`,
    };
  }
  return { allowed: true };
}

/**
 * Pure: the device-record properties of a DEM enrollment. DEM devices have no user affinity (§1
 * tables: "Device enrollment manager — User affinity: No") and are shared (L1515, L1861): no primary
 * user, the DEM recorded only as the enrolling account, and corporate-owned (L1009).
 */
export function demDeviceRecord(dem: { userPrincipalName: string }): Pick<
  DeviceInput,
  'userId' | 'userPrincipalName' | 'userDisplayName' | 'emailAddress' | 'enrolledByUserPrincipalName' | 'deviceEnrollmentType' | 'managedDeviceOwnerType'
> {
  return {
    userId: null,
    userPrincipalName: null,
    userDisplayName: null,
    emailAddress: null,
    enrolledByUserPrincipalName: dem.userPrincipalName,
    deviceEnrollmentType: 'deviceEnrollmentManager',
    managedDeviceOwnerType: 'company',
  };
}
