import type { CountedDevice, EnrollmentFacts, EnrollmentMethod } from './types.js';

/**
 * The device limit (-E §7, -A §11). A device counts toward its user's limit only if it is Intune-managed, has
 * contacted the service within the last 90 days, hasn't been registration-pending for more than 24 hours, hasn't
 * failed Apple enrollment, isn't deleted and isn't enrolled in shared mode. Both windows are inclusive: a device
 * last seen exactly 90 days ago, or pending exactly 24 hours, still counts.
 *
 * A timestamp that can't be read counts the device (fail closed: a bad record may block an enrollment, it never
 * lets an extra device through).
 */
export const DEVICE_LIMIT_RANGE = { min: 1, max: 15 } as const;
export const CONTACT_WINDOW_MS = 90 * 24 * 60 * 60 * 1000;
export const REGISTRATION_PENDING_WINDOW_MS = 24 * 60 * 60 * 1000;
/** Devices one device enrollment manager account can enroll (-A §12). */
export const DEM_DEVICE_LIMIT = 1000;
/** Personally-owned work profile devices one DEM account can enroll (-A §12, -C §C). */
export const DEM_WORK_PROFILE_LIMIT = 10;

function toMs(t: string | number | Date | undefined): number {
  if (t instanceof Date) return t.getTime();
  if (typeof t === 'number') return t;
  return typeof t === 'string' ? Date.parse(t) : NaN;
}

export function countTowardLimit(device: CountedDevice, now: string | number | Date): boolean {
  if (device.deleted || device.sharedMode || device.appleEnrollmentFailed || device.intuneManaged === false) return false;
  const nowMs = toMs(now);
  // NaN (an unreadable date) fails both comparisons, so the device counts.
  if (nowMs - toMs(device.lastContactDateTime) > CONTACT_WINDOW_MS) return false;
  if (device.registrationPending && nowMs - toMs(device.registrationPendingSince ?? device.enrolledDateTime) > REGISTRATION_PENDING_WINDOW_MS) return false;
  return true;
}

export function countedDevices(devices: readonly CountedDevice[] | undefined, now: string | number | Date): number {
  return (devices ?? []).filter((d) => countTowardLimit(d, now)).length;
}

/**
 * Windows enrollments in shared device mode, where the device limit can't be applied (-E §5.4, -A §11):
 * co-management, GPO, Azure AD join (during setup, from Settings, bulk), Autopilot; Azure Virtual Desktop is
 * Azure AD joined too. Device enrollment manager enrollments are exempt on every platform (see below).
 */
export const WINDOWS_SHARED_MODE_METHODS: ReadonlySet<EnrollmentMethod> = new Set([
  'windowsCoManagement',
  'windowsGpo',
  'windowsAzureAdJoinOobe',
  'windowsAzureAdJoinSettings',
  'windowsBulk',
  'windowsAutopilot',
  'windowsAutopilotSelfDeploying',
  'windowsAzureVirtualDesktop',
]);

/** Android enrollments without user affinity: dedicated ("Intune applies: No", -A §11) and AOSP userless. */
export const ANDROID_USERLESS_METHODS: ReadonlySet<EnrollmentMethod> = new Set(['androidDedicated', 'androidAospUserless']);

export type DeviceLimitExemption = 'noUser' | 'deviceEnrollmentManager' | 'windowsSharedMode' | 'userlessAndroid';

/**
 * Why the user device limit doesn't apply, or undefined when it does. DEM enrollments are userless and capped at
 * 1,000 per account instead, on every platform (the seed says so for Windows and Android DA; evaluation/decisions.md).
 */
export function deviceLimitExemption(facts: EnrollmentFacts): DeviceLimitExemption | undefined {
  if (!facts.user) return 'noUser';
  if (facts.user.isDeviceEnrollmentManager) return 'deviceEnrollmentManager';
  if (WINDOWS_SHARED_MODE_METHODS.has(facts.method)) return 'windowsSharedMode';
  if (ANDROID_USERLESS_METHODS.has(facts.method)) return 'userlessAndroid';
  return undefined;
}
