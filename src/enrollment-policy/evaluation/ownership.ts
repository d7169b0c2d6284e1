import type { CorporateIdentifierKind, EnrollmentFacts, EnrollmentMethod } from './types.js';
import { majorVersion } from './versions.js';

/**
 * Ownership at enrollment (-E §5.3, -A §8). Personal unless something makes the device corporate:
 * - a device enrollment manager account, on every platform;
 * - iOS/iPadOS: ADE, Apple School Manager or Apple Configurator, or a serial number or IMEI identifier;
 * - macOS: ADE or Apple School Manager, direct enrollment (an Apple Configurator profile, -E §2), or a serial
 *   number identifier (IMEI doesn't count for Macs);
 * - Windows: the corporate methods (Autopilot, bulk, GPO, co-management, Azure AD join, Azure Virtual Desktop), or a
 *   device registered with Autopilot unless it uses MDM enrollment only; identifiers aren't supported;
 * - Android: fully managed, dedicated, corporate-owned work profile, AOSP and Knox Mobile Enrollment; an IMEI or
 *   serial identifier only for device administrator before Android 10 and personally-owned work profile before 12.
 */
export type OwnershipBasis = 'deviceEnrollmentManager' | 'enrollmentMethod' | 'autopilotRegistration' | 'corporateIdentifier' | 'default';

export interface OwnershipClassification {
  ownership: 'company' | 'personal';
  basis: OwnershipBasis;
}

export const APPLE_CORPORATE_METHODS: ReadonlySet<EnrollmentMethod> = new Set(['appleAde', 'appleAsm', 'appleConfigurator', 'appleDirect']);

export const WINDOWS_CORPORATE_METHODS: ReadonlySet<EnrollmentMethod> = new Set([
  'windowsAutopilot',
  'windowsAutopilotSelfDeploying',
  'windowsBulk',
  'windowsGpo',
  'windowsCoManagement',
  'windowsAzureAdJoinOobe',
  'windowsAzureAdJoinSettings',
  'windowsAzureVirtualDesktop',
]);

export const ANDROID_CORPORATE_METHODS: ReadonlySet<EnrollmentMethod> = new Set([
  'androidFullyManaged',
  'androidDedicated',
  'androidCorporateWorkProfile',
  'androidAospUser',
  'androidAospUserless',
  'androidKnox',
]);

/** Identifiers stop making Android devices corporate from these major versions (-A §8 table). */
export const ANDROID_IDENTIFIER_CUTOFF = { deviceAdministrator: 10, workProfile: 12 } as const;

function matchedKinds(facts: EnrollmentFacts): ReadonlySet<CorporateIdentifierKind> {
  if (!facts.device.matchesCorporateIdentifier) return new Set();
  return new Set(facts.device.corporateIdentifierKinds ?? ['imei', 'serial']);
}

const company = (basis: OwnershipBasis): OwnershipClassification => ({ ownership: 'company', basis });
const PERSONAL: OwnershipClassification = { ownership: 'personal', basis: 'default' };

/**
 * `androidRoute` is the flow an Android Company Portal enrollment takes; identifiers count differently on the two
 * (androidWorkProfile implies the work profile, every other method the device administrator cut-off).
 */
export function classifyOwnership(facts: EnrollmentFacts, androidRoute?: 'workProfile' | 'deviceAdministrator'): OwnershipClassification {
  if (facts.user?.isDeviceEnrollmentManager) return company('deviceEnrollmentManager');
  const kinds = matchedKinds(facts);
  const method = facts.method;
  switch (facts.platform) {
    case 'ios':
      if (APPLE_CORPORATE_METHODS.has(method)) return company('enrollmentMethod');
      return kinds.size > 0 ? company('corporateIdentifier') : PERSONAL;
    case 'mac':
      if (APPLE_CORPORATE_METHODS.has(method)) return company('enrollmentMethod');
      return kinds.has('serial') ? company('corporateIdentifier') : PERSONAL;
    case 'windows':
      if (WINDOWS_CORPORATE_METHODS.has(method)) return company('enrollmentMethod');
      if (facts.device.autopilotRegistered && method !== 'windowsMdmOnly') return company('autopilotRegistration');
      return PERSONAL;
    case 'android':
    case 'androidForWork': {
      if (ANDROID_CORPORATE_METHODS.has(method)) return company('enrollmentMethod');
      const route = androidRoute ?? (method === 'androidWorkProfile' ? 'workProfile' : 'deviceAdministrator');
      const major = majorVersion(facts.device.osVersion);
      // An unknown version can't show it's old enough for identifiers to count.
      if (kinds.size > 0 && major !== undefined && major < ANDROID_IDENTIFIER_CUTOFF[route]) return company('corporateIdentifier');
      return PERSONAL;
    }
    default:
      return PERSONAL;
  }
}
