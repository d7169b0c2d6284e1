import { countedDevices, DEM_DEVICE_LIMIT, DEM_WORK_PROFILE_LIMIT, deviceLimitExemption } from './device-limit.js';
import type { FilterDeviceProperties } from './filters.js';
import { classifyOwnership } from './ownership.js';
import { ENROLLMENT_REASONS } from './reasons.js';
import { platformCandidates, selectPolicy, type PolicySelection, type SelectedPolicy, type SelectionContext } from './selection.js';
import type {
  AppliedPolicy,
  DeviceLimitPolicy,
  EnrollmentDecision,
  EnrollmentFacts,
  EnrollmentMethod,
  EnrollmentReasonCode,
  PlatformRestriction,
  PlatformRestrictionPolicy,
  RestrictionPlatform,
  RestrictionPolicy,
} from './types.js';
import { compareVersions, formatVersion, parseDeviceVersion, parseRestrictionVersion, type OsVersion } from './versions.js';

/**
 * The one enrollment decision (-E §9). Pure and total: it never throws, and the same facts and policies always give
 * the same decision.
 *
 * Check order (the seed doesn't give one; the first failing check is the reason reported). Checks about who and
 * what is enrolling come first, then what the restriction policy allows, then counts that change as devices come
 * and go, then terms the user can accept on the spot:
 *  1. userRequired             a user-driven enrollment without a user
 *  2. missingHardwareIdentity  a macOS virtual machine without a serial number or hardware model
 *  3. demNotAllowedForMethod   a DEM account with ADE, ASM, Apple Configurator, Android fully managed or COPE
 *  4. platform restriction of the chosen policy (skipped for an iOS User Enrollment, and for Android Enterprise
 *     corporate modes and AOSP, which platform restrictions don't cover):
 *     a. platform blocked      -> devicePlatformBlocked; iOS ADE/ASM -> invalidProfile
 *     b. personally owned blocked -> personalDeviceBlocked; Windows: windowsEnrollmentNotAuthorized unless the
 *        method is authorized for corporate enrollment
 *     c. OS version range, where it applies -> osVersionUnrecognized / osVersionBelowMinimum / osVersionAboveMaximum
 *     d. Android manufacturer block list -> manufacturerBlocked
 *  5. demLimitReached (1,000 devices), demWorkProfileLimitReached (10 work profile devices)
 *  6. deviceLimitReached       counted devices >= the chosen limit, unless exempt
 *  7. termsNotAccepted         user-driven, and an assigned terms and conditions version isn't accepted
 */

/** Methods a device enrollment manager can't use (-A §12, -D §10.15). */
export const DEM_FORBIDDEN_METHODS: ReadonlySet<EnrollmentMethod> = new Set([
  'appleAde',
  'appleAsm',
  'appleConfigurator',
  'appleDirect',
  'androidFullyManaged',
  'androidCorporateWorkProfile',
]);

/** Android enrollments platform restrictions don't cover: they restrict device administrator and work profile only. */
export const ANDROID_UNRESTRICTED_METHODS: ReadonlySet<EnrollmentMethod> = new Set([
  'androidFullyManaged',
  'androidDedicated',
  'androidCorporateWorkProfile',
  'androidAospUser',
  'androidAospUserless',
]);

/** "The min/max range isn't applicable to Apple devices that enroll with the Device Enrollment Program, Apple School Manager, or the Apple Configurator app." */
const APPLE_AUTOMATED_METHODS: ReadonlySet<EnrollmentMethod> = new Set(['appleAde', 'appleAsm']);

type AndroidRoute = 'workProfile' | 'deviceAdministrator';

const isAndroid = (p: RestrictionPlatform) => p === 'android' || p === 'androidForWork';

/**
 * An iOS User Enrollment profile overrides the platform restriction (-E §5.3, -D §6). Only for user-initiated
 * enrollments: an ADE, ASM or Configurator device isn't enrolling through the profile, so the flag doesn't free it.
 */
export function userEnrollmentOverrides(facts: EnrollmentFacts): boolean {
  if (facts.platform !== 'ios') return false;
  return facts.method === 'appleUserEnrollment' || (facts.method === 'appleCompanyPortal' && facts.userEnrollmentProfileApplies === true);
}

/**
 * The Windows methods authorized for corporate enrollment when personal devices are blocked (-E §5.3 (a)-(e)):
 * a DEM account, Autopilot, a device registered with Autopilot (except MDM enrollment only), bulk provisioning,
 * GPO or co-management. Azure AD join (setup or Settings), Add Work Account, Azure Virtual Desktop and MDM
 * enrollment only are blocked.
 */
export function windowsCorporateAuthorized(facts: EnrollmentFacts): boolean {
  if (facts.user?.isDeviceEnrollmentManager) return true;
  switch (facts.method) {
    case 'windowsAutopilot':
    case 'windowsAutopilotSelfDeploying':
    case 'windowsBulk':
    case 'windowsGpo':
    case 'windowsCoManagement':
      return true;
    case 'windowsMdmOnly':
      return false;
    default:
      return facts.device.autopilotRegistered === true;
  }
}

/**
 * Where the OS version range applies (-E §5.1, §6.2): Windows always; iOS/iPadOS and Android device administrator /
 * work profile only for Company Portal enrollments (never ADE, ASM or Apple Configurator); never macOS.
 */
export function osBoundsApply(restriction: RestrictionPlatform, method: EnrollmentMethod): boolean {
  switch (restriction) {
    case 'windows':
    case 'windowsPhone':
      return true;
    case 'ios':
      return method === 'appleCompanyPortal';
    case 'android':
    case 'androidForWork':
      return method === 'androidCompanyPortal' || method === 'androidWorkProfile';
    default:
      return false;
  }
}

// A stored bound the admin API would have refused is ignored rather than blocking every device of the platform.
function bound(text: string | null | undefined, platform: RestrictionPlatform): OsVersion | undefined {
  if (typeof text !== 'string' || text.trim() === '') return undefined;
  const parsed = parseRestrictionVersion(text, platform);
  return 'version' in parsed ? parsed.version : undefined;
}

type Failure = { reason: EnrollmentReasonCode; detail: string };

function checkOsVersion(r: PlatformRestriction, platform: RestrictionPlatform, reported: string | null | undefined): Failure | undefined {
  const min = bound(r.osMinimumVersion, platform);
  const max = bound(r.osMaximumVersion, platform);
  if (!min && !max) return undefined;
  const version = parseDeviceVersion(reported);
  if (!version) return { reason: 'osVersionUnrecognized', detail: `The device reported the OS version '${reported ?? ''}', which can't be read.` };
  if (min && compareVersions(version, min) < 0) {
    return { reason: 'osVersionBelowMinimum', detail: `OS version ${formatVersion(version)} is below the minimum ${formatVersion(min)}.` };
  }
  if (max && compareVersions(version, max) > 0) {
    return { reason: 'osVersionAboveMaximum', detail: `OS version ${formatVersion(version)} is above the maximum ${formatVersion(max)}.` };
  }
  return undefined;
}

function blockedManufacturer(r: PlatformRestriction, manufacturer: string | null | undefined): string | undefined {
  const m = manufacturer?.trim().toLowerCase();
  if (!m) return undefined;
  return (r.blockedManufacturers ?? []).find((b) => typeof b === 'string' && b.trim().toLowerCase() === m);
}

/**
 * Android Company Portal routing (-E §5.2, §6.3, -C §C): a device that supports a work profile enrolls with one when
 * the work profile platform is allowed for its version; otherwise it goes through device administrator, and is
 * blocked there if device administrator doesn't allow it either.
 */
export function androidRoute(facts: EnrollmentFacts, restrictions: PlatformRestrictionPolicy['restrictions']): AndroidRoute | undefined {
  if (!isAndroid(facts.platform)) return undefined;
  switch (facts.method) {
    case 'androidWorkProfile':
      return 'workProfile';
    case 'androidKnox':
      return 'deviceAdministrator';
    case 'androidCompanyPortal':
      break;
    default:
      return undefined;
  }
  if (!facts.device.supportsWorkProfile) return 'deviceAdministrator';
  const wp = restrictions.androidForWork;
  if (!wp) return 'workProfile';
  if (wp.platformBlocked) return 'deviceAdministrator';
  if (osBoundsApply('androidForWork', facts.method) && checkOsVersion(wp, 'androidForWork', facts.device.osVersion)) return 'deviceAdministrator';
  return 'workProfile';
}

/** Policies holding a restriction for one Android platform, plus the default. */
function subPlatformCandidates(policies: readonly RestrictionPolicy[], platform: 'android' | 'androidForWork'): PlatformRestrictionPolicy[] {
  return policies.filter((p): p is PlatformRestrictionPolicy => p.type === 'platformRestriction' && (p.isDefault || p.restrictions[platform] !== undefined));
}

function restrictionPlatform(facts: EnrollmentFacts, route: AndroidRoute | undefined): RestrictionPlatform {
  if (!isAndroid(facts.platform)) return facts.platform;
  return route === 'workProfile' ? 'androidForWork' : 'android';
}

interface PlatformOutcome {
  state: AppliedPolicy['state'];
  failure?: Failure;
}

function checkPlatformRestriction(
  facts: EnrollmentFacts,
  policy: PlatformRestrictionPolicy | undefined,
  ownership: 'company' | 'personal',
  route: AndroidRoute | undefined,
): PlatformOutcome {
  if (userEnrollmentOverrides(facts)) return { state: 'notApplicable' };
  if (isAndroid(facts.platform) && ANDROID_UNRESTRICTED_METHODS.has(facts.method)) return { state: 'notApplicable' };
  const platform = restrictionPlatform(facts, route);
  const r = policy?.restrictions[platform];
  if (!r) return { state: 'succeeded' };
  const failed = (reason: EnrollmentReasonCode, detail: string): PlatformOutcome => ({ state: 'failed', failure: { reason, detail } });

  if (r.platformBlocked) {
    if (platform === 'ios' && APPLE_AUTOMATED_METHODS.has(facts.method)) {
      return failed('invalidProfile', `Policy '${policy!.displayName}' blocks the iOS/iPadOS platform, so automated enrollment fails.`);
    }
    return failed('devicePlatformBlocked', `Policy '${policy!.displayName}' blocks the ${platform} platform.`);
  }
  if (r.personalDeviceEnrollmentBlocked) {
    if (platform === 'windows') {
      if (!windowsCorporateAuthorized(facts)) {
        return failed('windowsEnrollmentNotAuthorized', `Policy '${policy!.displayName}' blocks personally owned Windows devices, and ${facts.method} isn't authorized for corporate enrollment.`);
      }
    } else if (ownership === 'personal') {
      return failed('personalDeviceBlocked', `Policy '${policy!.displayName}' blocks personally owned ${platform} devices.`);
    }
  }
  if (osBoundsApply(platform, facts.method)) {
    const versionFailure = checkOsVersion(r, platform, facts.device.osVersion);
    if (versionFailure) return { state: 'failed', failure: versionFailure };
  }
  if (isAndroid(platform)) {
    const blocked = blockedManufacturer(r, facts.device.manufacturer);
    if (blocked) return failed('manufacturerBlocked', `Policy '${policy!.displayName}' blocks devices made by ${blocked.trim()}.`);
  }
  return { state: 'succeeded' };
}

/** What assignment filters see: the device facts and the computed ownership, overridden by filterProperties. */
function filterPropertiesOf(facts: EnrollmentFacts, ownership: 'company' | 'personal'): FilterDeviceProperties {
  const props: Record<string, string | boolean | null> = {
    manufacturer: facts.device.manufacturer ?? null,
    model: facts.device.model ?? null,
    osVersion: facts.device.osVersion ?? null,
    operatingSystemVersion: facts.device.osVersion ?? null,
    deviceOwnership: ownership === 'company' ? 'Corporate' : 'Personal',
  };
  for (const [key, value] of Object.entries(facts.device.filterProperties ?? {})) {
    for (const k of Object.keys(props)) if (k.toLowerCase() === key.toLowerCase()) delete props[k];
    props[key] = value;
  }
  return props;
}

function snapshot(selected: SelectedPolicy<RestrictionPolicy>, state: AppliedPolicy['state']): AppliedPolicy {
  const p = selected.policy;
  const entry: AppliedPolicy = {
    policyId: p.id,
    displayName: p.displayName,
    type: p.type,
    priority: p.priority,
    isDefault: p.isDefault,
    target: selected.target,
    state,
  };
  if (selected.filterResult) entry.filterResult = selected.filterResult;
  return entry;
}

function snapshots(selection: PolicySelection<RestrictionPolicy>, state: AppliedPolicy['state']): AppliedPolicy[] {
  const entries = selection.filteredOut.map((s) => snapshot(s, 'notApplicable'));
  if (selection.chosen) entries.push(snapshot(selection.chosen, state));
  return entries;
}

export function evaluateEnrollment(facts: EnrollmentFacts, policies: readonly RestrictionPolicy[]): EnrollmentDecision {
  const user = facts.user;
  const isDem = user?.isDeviceEnrollmentManager === true;

  // Ownership first: filters may test it. Android has no filters, and its ownership depends on the route below.
  const provisional = classifyOwnership(facts);
  const ctx: SelectionContext = {
    userDriven: facts.userDriven,
    hasUser: user !== undefined,
    groupIds: new Set(user?.groupIds ?? []),
    filterPlatform: facts.platform,
    filterProperties: filterPropertiesOf(facts, provisional.ownership),
  };
  const limitSelection = selectPolicy(
    policies.filter((p): p is DeviceLimitPolicy => p.type === 'limit'),
    ctx,
  );
  // Android's tab holds two platforms that Graph stores as separate policies with their own priority lists:
  // device administrator and work profile are each chosen on their own, falling back to the default's entry.
  let route: AndroidRoute | undefined;
  let platformSelection: PolicySelection<PlatformRestrictionPolicy>;
  if (isAndroid(facts.platform)) {
    const byPlatform = {
      android: selectPolicy(subPlatformCandidates(policies, 'android'), ctx),
      androidForWork: selectPolicy(subPlatformCandidates(policies, 'androidForWork'), ctx),
    };
    route = androidRoute(facts, {
      android: byPlatform.android.chosen?.policy.restrictions.android,
      androidForWork: byPlatform.androidForWork.chosen?.policy.restrictions.androidForWork,
    });
    platformSelection = byPlatform[restrictionPlatform(facts, route) as 'android' | 'androidForWork'];
  } else {
    platformSelection = selectPolicy(platformCandidates(policies, facts.platform), ctx);
  }
  const platformPolicy = platformSelection.chosen?.policy;
  const ownership = route ? classifyOwnership(facts, route).ownership : provisional.ownership;

  let platformState: AppliedPolicy['state'] = 'notEvaluated';
  let limitState: AppliedPolicy['state'] = 'notEvaluated';
  let deviceLimit: EnrollmentDecision['deviceLimit'];

  const decide = (failure?: Failure): EnrollmentDecision => {
    const decision: EnrollmentDecision = {
      allowed: !failure,
      ownership,
      applied: [...snapshots(platformSelection, platformState), ...snapshots(limitSelection, limitState)],
    };
    if (failure) {
      decision.reason = failure.reason;
      decision.message = ENROLLMENT_REASONS[failure.reason].explanation;
      decision.detail = failure.detail;
    }
    if (route) decision.androidRoute = route;
    if (deviceLimit) decision.deviceLimit = deviceLimit;
    return decision;
  };

  // 1-3. Who and what is enrolling.
  if (facts.userDriven && !user) return decide({ reason: 'userRequired', detail: `${facts.method} is user-driven, and no user signed in.` });
  if (facts.platform === 'mac' && facts.device.isVirtualMachine) {
    const missing: string[] = [];
    if (!facts.device.serialNumber?.trim()) missing.push('serial number');
    if (!facts.device.model?.trim()) missing.push('hardware model');
    if (missing.length > 0) return decide({ reason: 'missingHardwareIdentity', detail: `The virtual machine reported no ${missing.join(' and no ')}.` });
  }
  if (isDem && DEM_FORBIDDEN_METHODS.has(facts.method)) {
    return decide({ reason: 'demNotAllowedForMethod', detail: `${user!.userPrincipalName} is a device enrollment manager, which ${facts.method} doesn't support.` });
  }

  // 4. The chosen platform restriction.
  const platformOutcome = checkPlatformRestriction(facts, platformPolicy, ownership, route);
  platformState = platformOutcome.state;
  if (platformOutcome.failure) return decide(platformOutcome.failure);

  // 5. Device enrollment manager caps.
  if (isDem) {
    const enrolled = facts.demEnrolledCount ?? 0;
    if (enrolled >= DEM_DEVICE_LIMIT) {
      return decide({ reason: 'demLimitReached', detail: `${user!.userPrincipalName} has enrolled ${enrolled} devices; the limit is ${DEM_DEVICE_LIMIT}.` });
    }
    const workProfiles = facts.demEnrolledWorkProfileCount ?? 0;
    if (route === 'workProfile' && workProfiles >= DEM_WORK_PROFILE_LIMIT) {
      return decide({
        reason: 'demWorkProfileLimitReached',
        detail: `${user!.userPrincipalName} has enrolled ${workProfiles} work profile devices; the limit is ${DEM_WORK_PROFILE_LIMIT}.`,
      });
    }
  }

  // 6. The chosen device limit.
  const limitPolicy = limitSelection.chosen?.policy;
  if (limitPolicy) {
    if (deviceLimitExemption(facts)) {
      limitState = 'notApplicable';
    } else {
      const counted = countedDevices(facts.userDevices, facts.now);
      deviceLimit = { policyId: limitPolicy.id, limit: limitPolicy.limit, counted };
      if (counted >= limitPolicy.limit) {
        limitState = 'failed';
        return decide({ reason: 'deviceLimitReached', detail: `${counted} devices count toward the limit of ${limitPolicy.limit} set by '${limitPolicy.displayName}'.` });
      }
      limitState = 'succeeded';
    }
  }

  // 7. Terms and conditions.
  const unaccepted = facts.userDriven && user ? (facts.terms ?? []).filter((t) => !t.accepted) : [];
  if (unaccepted.length > 0) {
    return decide({ reason: 'termsNotAccepted', detail: `Not accepted: ${unaccepted.map((t) => `'${t.displayName}' version ${t.version}`).join(', ')}.` });
  }
  return decide();
}
