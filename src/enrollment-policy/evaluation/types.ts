/**
 * The contract of the one enrollment decision every enrollment path calls (requirements -E §9).
 * The engine is pure: facts and policies in, a decision and the applied-policy snapshot out.
 * Services gather the facts from the store; enrollment paths (Apple, Windows, Android) call it
 * through `EnrollmentGate` (gate.ts) and act on the result.
 */

/** Graph enrollmentRestrictionPlatformType, as restriction policies name platforms. */
export type RestrictionPlatform = 'ios' | 'mac' | 'windows' | 'windowsPhone' | 'android' | 'androidForWork' | 'linux';

/** How the device is enrolling. Drives ownership, which checks apply and the device limit exemptions. */
export type EnrollmentMethod =
  // Apple
  | 'appleAde' // Automated Device Enrollment (ABM)
  | 'appleAsm' // Apple School Manager ADE
  | 'appleConfigurator' // Apple Configurator (Setup Assistant or direct)
  | 'appleCompanyPortal' // user-initiated device enrollment (Company Portal / web)
  | 'appleUserEnrollment' // Apple User Enrollment (BYOD, managed Apple ID partition)
  | 'appleDirect' // macOS/iOS direct enrollment .mobileconfig
  // Windows
  | 'windowsAutopilot'
  | 'windowsAutopilotSelfDeploying'
  | 'windowsAzureAdJoinOobe' // automatic MDM enrollment with Azure AD join during setup
  | 'windowsAzureAdJoinSettings' // automatic MDM enrollment with Azure AD join from Settings
  | 'windowsAddWorkAccount' // automatic MDM enrollment with Add Work Account
  | 'windowsMdmOnly' // "MDM enrollment only" from Settings
  | 'windowsBulk' // provisioning package
  | 'windowsGpo'
  | 'windowsCoManagement'
  | 'windowsAzureVirtualDesktop'
  // Android
  | 'androidCompanyPortal' // device administrator or personally-owned work profile via Company Portal (routed, -E §6.3)
  | 'androidWorkProfile' // personally-owned work profile, already decided by the path
  | 'androidCorporateWorkProfile'
  | 'androidFullyManaged'
  | 'androidDedicated'
  | 'androidAospUser'
  | 'androidAospUserless'
  | 'androidKnox'; // Knox Mobile Enrollment into device administrator

/** Which kind of corporate identifier matched the device (-A §8). */
export type CorporateIdentifierKind = 'imei' | 'serial';

export interface EnrollmentFacts {
  tenantId: string;
  /** When the attempt happens (counting windows are relative to it). ISO-8601. */
  now: string;
  platform: RestrictionPlatform;
  method: EnrollmentMethod;
  /** False for Autopilot self-deploying, bulk/WCD, Azure Virtual Desktop, co-management by device token, ADE without user affinity. */
  userDriven: boolean;
  user?: {
    id: string;
    userPrincipalName: string;
    /** Ids of every group the user is a member of (direct and dynamic). */
    groupIds: string[];
    /**
     * Graph user.deviceEnrollmentLimit. Not used by the evaluation: the seed never says it overrides the
     * device limit restriction (evaluation/decisions.md).
     */
    deviceEnrollmentLimit?: number | null;
    isDeviceEnrollmentManager: boolean;
  };
  device: {
    osVersion?: string | null;
    manufacturer?: string | null;
    model?: string | null;
    serialNumber?: string | null;
    imei?: string | null;
    /** Registered as a corporate identifier (serial or IMEI). */
    matchesCorporateIdentifier: boolean;
    /**
     * Which identifier kinds matched. Omitted with matchesCorporateIdentifier = true means "some identifier
     * matched"; it then counts on every platform that supports identifiers.
     */
    corporateIdentifierKinds?: CorporateIdentifierKind[];
    /** Windows: registered with Autopilot. */
    autopilotRegistered?: boolean;
    /** Android Company Portal: the device supports a personally-owned work profile (else it routes to device administrator). */
    supportsWorkProfile?: boolean;
    /** macOS: a virtual machine (must report a serial number and a model). */
    isVirtualMachine?: boolean;
    /**
     * Properties assignment filters may test, by filter property name (operatingSystemSKU, enrollmentProfileName, …).
     * manufacturer, model, osVersion and deviceOwnership default to the facts above and the computed ownership.
     */
    filterProperties?: Record<string, string | boolean | null>;
  };
  /** The user's existing enrollments, for the device limit (-E §7.2, -A §11). */
  userDevices?: CountedDevice[];
  /** Devices this DEM account already enrolled. */
  demEnrolledCount?: number;
  /** Personally-owned work profile devices this DEM account already enrolled (at most 10, -C §C). */
  demEnrolledWorkProfileCount?: number;
  /** Terms and conditions assigned to the user and whether the current version is accepted. */
  terms?: { termsId: string; version: number; accepted: boolean; displayName: string }[];
  /**
   * An Apple User Enrollment profile governs this iOS enrollment (overrides the platform restriction). Counts only
   * for method appleUserEnrollment or appleCompanyPortal, never for ADE, ASM or Apple Configurator.
   */
  userEnrollmentProfileApplies?: boolean;
}

export interface CountedDevice {
  id: string;
  enrolledDateTime: string;
  lastContactDateTime: string;
  /** Registration still pending (counts only within 24 hours). */
  registrationPending: boolean;
  /** When the pending state began; enrolledDateTime when omitted. */
  registrationPendingSince?: string;
  /** Enrolled in shared mode (Windows shared scenarios don't count). */
  sharedMode: boolean;
  deleted: boolean;
  /** An Apple enrollment that failed doesn't count. */
  appleEnrollmentFailed?: boolean;
  /** False for a record Intune doesn't manage (e.g. registered only); counts when omitted. */
  intuneManaged?: boolean;
}

export type AssignmentTarget =
  | { kind: 'allUsers' }
  | { kind: 'allDevices' }
  | { kind: 'group'; groupId: string }
  | { kind: 'exclusionGroup'; groupId: string };

export interface PolicyAssignment {
  target: AssignmentTarget;
  /** An assignment filter: the device must match (include) or not match (exclude). */
  filter?: { id: string; displayName: string; mode: 'include' | 'exclude'; rule: string };
}

interface PolicyBase {
  id: string;
  displayName: string;
  /** 0 for the default; 1 is the highest priority. */
  priority: number;
  isDefault: boolean;
  assignments: PolicyAssignment[];
}

export interface PlatformRestriction {
  platformBlocked: boolean;
  personalDeviceEnrollmentBlocked: boolean;
  osMinimumVersion?: string | null;
  osMaximumVersion?: string | null;
  blockedManufacturers?: string[];
}

export interface PlatformRestrictionPolicy extends PolicyBase {
  type: 'platformRestriction';
  /**
   * The default (legacy all-platform) policy holds one restriction per platform; a custom policy holds its
   * platform tab's ('android' and 'androidForWork' together for the Android tab).
   */
  restrictions: Partial<Record<RestrictionPlatform, PlatformRestriction>>;
}

export interface DeviceLimitPolicy extends PolicyBase {
  type: 'limit';
  /** 1–15. */
  limit: number;
}

export type RestrictionPolicy = PlatformRestrictionPolicy | DeviceLimitPolicy;

/** Stable codes; each has a title, an explanation and a remediation in the catalogue (reasons.ts). */
export type EnrollmentReasonCode =
  | 'userRequired'
  | 'missingHardwareIdentity'
  | 'demNotAllowedForMethod'
  | 'invalidProfile'
  | 'devicePlatformBlocked'
  | 'personalDeviceBlocked'
  | 'windowsEnrollmentNotAuthorized'
  | 'osVersionBelowMinimum'
  | 'osVersionAboveMaximum'
  | 'osVersionUnrecognized'
  | 'manufacturerBlocked'
  | 'demLimitReached'
  | 'demWorkProfileLimitReached'
  | 'deviceLimitReached'
  | 'termsNotAccepted';

export interface FilterResult {
  filterId: string;
  mode: 'include' | 'exclude';
  /** The device matched the filter rule. */
  matched: boolean;
  /** The stored rule couldn't be parsed or uses a property the platform doesn't support; the assignment was skipped. */
  error?: string;
}

export interface AppliedPolicy {
  policyId: string;
  displayName: string;
  type: 'platformRestriction' | 'limit';
  priority: number;
  isDefault: boolean;
  /** Which assignment made it apply ('default' for the default policy). */
  target: 'default' | 'allUsers' | 'allDevices' | { groupId: string };
  /** Filter outcome, when the assignment has a filter. */
  filterResult?: FilterResult;
  /**
   * What the policy decided for this enrollment: notApplicable for a better-priority policy whose filter left the
   * device out, or a check that doesn't apply to the method; notEvaluated when an earlier check already failed.
   */
  state: 'succeeded' | 'failed' | 'notApplicable' | 'notEvaluated';
}

export interface EnrollmentDecision {
  allowed: boolean;
  reason?: EnrollmentReasonCode;
  /** Human text for the reason (the catalogue's explanation). */
  message?: string;
  /** What exactly failed, e.g. "OS version 14.8 is below the minimum 15.0.0." */
  detail?: string;
  ownership: 'company' | 'personal';
  applied: AppliedPolicy[];
  /** Android Company Portal and work profile enrollments: the flow the device goes through (-E §6.3). */
  androidRoute?: 'workProfile' | 'deviceAdministrator';
  /** The device limit check, when it ran. */
  deviceLimit?: { policyId: string; limit: number; counted: number };
}
