/**
 * ADE enrollment profiles as Graph's depIOSEnrollmentProfile / depMacOSEnrollmentProfile, in the
 * normalized shape the store keeps: display_name and description in their own columns, every
 * other writable property in the `settings` JSON (graph-enrollment-api §3.4).
 */
import { panesFor, type DepProfilePlatform, type IosPaneProperty, type MacPaneProperty } from './setup-panes.js';

export type { DepProfilePlatform } from './setup-panes.js';

export const DEP_IOS_PROFILE_TYPE = 'microsoft.graph.depIOSEnrollmentProfile';
export const DEP_MACOS_PROFILE_TYPE = 'microsoft.graph.depMacOSEnrollmentProfile';
export const MANAGEMENT_CERTIFICATE_TYPE = 'microsoft.graph.managementCertificateWithThumbprint';
export const ROTATION_SETTING_TYPE = 'microsoft.graph.depProfileAdminAccountPasswordRotationSetting';
export const DELAY_ROTATION_SETTING_TYPE = 'microsoft.graph.depProfileDelayAutoRotationSetting';

export const PROFILE_TYPE_OF: Record<DepProfilePlatform, string> = { iOS: DEP_IOS_PROFILE_TYPE, macOS: DEP_MACOS_PROFILE_TYPE };

/** Graph iTunesPairingMode: the console's "Sync with computers" (Deny all / Allow all / Allow Apple Configurator by certificate). */
export const ITUNES_PAIRING_MODES = ['disallow', 'allow', 'requiresCertificate'] as const;
export type ITunesPairingMode = (typeof ITUNES_PAIRING_MODES)[number];

export const PROFILE_LIMITS = {
  // displayName, supportDepartment and supportPhoneNumber go to Apple as profile_name, department
  // and support_phone_number, so they follow Apple's define-profile limits (CONFIG_NAME_INVALID,
  // DEPARTMENT_INVALID, SUPPORT_PHONE_INVALID).
  displayName: 125,
  description: 1500,
  supportDepartment: 125,
  supportPhoneNumber: 50,
  deviceNameTemplate: 63,
  carrierActivationUrl: 2048,
  companyPortalVppTokenId: 200,
  /** Intune allows one enrollment-time group per profile. */
  enrollmentTimeAzureAdGroupIds: 1,
  /** "The limit is 10 certificates." */
  managementCertificates: 10,
  /** Base64 of one certificate. */
  managementCertificateChars: 16_384,
  passcodeLockGracePeriodMax: 14_400,
  /** Inactivity timeouts: 0 = never, otherwise at least 30 seconds. */
  sessionTimeoutMin: 30,
  int32Max: 2_147_483_647,
  accountShortName: 64,
  accountFullName: 256,
  adminPasswordMin: 8,
  adminPasswordMax: 128,
  rotationDaysMin: 1,
  rotationDaysMax: 180,
  rotationDelayHoursMin: 1,
  rotationDelayHoursMax: 24,
} as const;

export interface ManagementCertificate {
  /** Base64 of the DER certificate (normalized: PEM and whitespace removed). */
  certificate: string;
  /** SHA-1 of the DER, upper-case hex. */
  thumbprint: string;
}

export interface DelayAutoRotationSetting {
  onRetrievalAutoRotatePasswordEnabled: boolean;
  onRetrievalDelayAutoRotatePasswordInHours: number | null;
}

export interface AdminAccountPasswordRotationSetting {
  autoRotationPeriodInDays: number | null;
  depProfileDelayAutoRotationSetting: DelayAutoRotationSetting | null;
}

/** enrollmentProfile + depEnrollmentBaseProfile properties, panes aside. */
export interface DepProfileCommonSettings {
  /** User affinity: true = "Enroll with User Affinity". */
  requiresUserAuthentication: boolean;
  /** Authentication method "Company Portal". */
  enableAuthenticationViaCompanyPortal: boolean;
  /** "Install Company Portal" with a Setup Assistant method. */
  requireCompanyPortalOnSetupAssistantEnrolledDevices: boolean;
  /** Authentication method "Setup Assistant with modern authentication" (a Boolean in Graph). */
  configurationWebUrl: boolean;
  /** null = "Apply device name template: No". */
  deviceNameTemplate: string | null;
  enrollmentTimeAzureAdGroupIds: string[];
  isMandatory: boolean;
  /** Locked enrollment. */
  profileRemovalDisabled: boolean;
  supervisedModeEnabled: boolean;
  supportDepartment: string | null;
  supportPhoneNumber: string | null;
  /** Await final configuration (base property). */
  waitForDeviceConfiguredConfirmation: boolean;
}

export interface IosOnlySettings {
  /** Await final configuration (iOS property). */
  awaitDeviceConfiguredConfirmation: boolean;
  /** null = "Activate cellular data plan: No". */
  carrierActivationUrl: string | null;
  /** "Install Company Portal with VPP": the VPP token's id. */
  companyPortalVppTokenId: string | null;
  enableSharedIPad: boolean;
  /** "Run Company Portal in Single App Mode until authentication". */
  enableSingleAppEnrollmentMode: boolean;
  /** "Require Shared iPad temporary session only". */
  forceTemporarySession: boolean;
  /** "Sync with computers". */
  iTunesPairingMode: ITunesPairingMode;
  /** "Apple Configurator Certificates". */
  managementCertificates: ManagementCertificate[];
  /** "Maximum seconds after screen lock before password is required"; null = not configured. */
  passcodeLockGracePeriodInSeconds: number | null;
  /** "Maximum cached users"; 0 = not set. */
  sharedIPadMaximumUserCount: number;
  /** "Maximum seconds of inactivity until temporary session logs out"; 0 = never. */
  temporarySessionTimeoutInSeconds: number;
  /** "Maximum seconds of inactivity until user session logs out"; 0 = never. */
  userSessionTimeoutInSeconds: number;
  /** Microsoft Entra shared device mode (not Shared iPad). */
  userlessSharedAadModeEnabled: boolean;
}

export interface MacOnlySettings {
  adminAccountFullName: string | null;
  /** The local admin account's short name; null = no admin account. Its password lives in the secrets table. */
  adminAccountUserName: string | null;
  autoAdvanceSetupEnabled: boolean;
  depProfileAdminAccountPasswordRotationSetting: AdminAccountPasswordRotationSetting | null;
  dontAutoPopulatePrimaryAccountInfo: boolean;
  /** "Restrict editing" of the prefilled primary account. */
  enableRestrictEditing: boolean;
  hideAdminAccount: boolean;
  primaryAccountFullName: string | null;
  primaryAccountUserName: string | null;
  requestRequiresNetworkTether: boolean;
  setPrimarySetupAccountAsRegularUser: boolean;
  skipPrimarySetupAccountCreation: boolean;
  usePlatformSSODuringSetupAssistant: boolean;
}

export type IosProfileSettings = DepProfileCommonSettings & IosOnlySettings & Record<IosPaneProperty, boolean>;
export type MacProfileSettings = DepProfileCommonSettings & MacOnlySettings & Record<MacPaneProperty, boolean>;
export type DepProfileSettings = IosProfileSettings | MacProfileSettings;

interface ProfileNames {
  displayName: string;
  description: string | null;
}

/** What an admin edits: names plus settings. */
export type DepProfileContent =
  | (ProfileNames & { platform: 'iOS'; settings: IosProfileSettings })
  | (ProfileNames & { platform: 'macOS'; settings: MacProfileSettings });

/**
 * A validated create or update, ready to store. `adminAccountPassword` (macOS): a new password to
 * encrypt; null = delete the stored one; absent = keep it.
 */
export type DepProfileWrite = DepProfileContent & { adminAccountPassword?: string | null };

/** A profile as read back from the store. */
export type StoredDepProfile = DepProfileContent & { id: string; isDefault: boolean };

const COMMON_DEFAULTS: DepProfileCommonSettings = {
  requiresUserAuthentication: false,
  enableAuthenticationViaCompanyPortal: false,
  requireCompanyPortalOnSetupAssistantEnrolledDevices: false,
  configurationWebUrl: false,
  deviceNameTemplate: null,
  enrollmentTimeAzureAdGroupIds: [],
  // ADE profiles are mandatory and supervised unless the admin says otherwise: Apple made every
  // ADE enrollment mandatory and supervised from iOS 13, and deprecated unsupervised ADE in iOS 11.
  isMandatory: true,
  profileRemovalDisabled: false,
  supervisedModeEnabled: true,
  supportDepartment: null,
  supportPhoneNumber: null,
  waitForDeviceConfiguredConfirmation: false,
};

const IOS_ONLY_DEFAULTS: IosOnlySettings = {
  awaitDeviceConfiguredConfirmation: false,
  carrierActivationUrl: null,
  companyPortalVppTokenId: null,
  enableSharedIPad: false,
  enableSingleAppEnrollmentMode: false,
  forceTemporarySession: false,
  // Apple's allow_pairing defaults to true.
  iTunesPairingMode: 'allow',
  managementCertificates: [],
  passcodeLockGracePeriodInSeconds: null,
  sharedIPadMaximumUserCount: 0,
  temporarySessionTimeoutInSeconds: 0,
  userSessionTimeoutInSeconds: 0,
  userlessSharedAadModeEnabled: false,
};

const MAC_ONLY_DEFAULTS: MacOnlySettings = {
  adminAccountFullName: null,
  adminAccountUserName: null,
  autoAdvanceSetupEnabled: false,
  depProfileAdminAccountPasswordRotationSetting: null,
  dontAutoPopulatePrimaryAccountInfo: false,
  enableRestrictEditing: false,
  hideAdminAccount: false,
  primaryAccountFullName: null,
  primaryAccountUserName: null,
  requestRequiresNetworkTether: false,
  setPrimarySetupAccountAsRegularUser: false,
  skipPrimarySetupAccountCreation: false,
  usePlatformSSODuringSetupAssistant: false,
};


/** Every setting at its default: what a create body leaves out. */
export function defaultSettings(platform: 'iOS'): IosProfileSettings;
export function defaultSettings(platform: 'macOS'): MacProfileSettings;
export function defaultSettings(platform: DepProfilePlatform): DepProfileSettings;
export function defaultSettings(platform: DepProfilePlatform): DepProfileSettings {
  const panes = Object.fromEntries(panesFor(platform).map((p) => [p.property, false]));
  const specific = platform === 'iOS' ? IOS_ONLY_DEFAULTS : MAC_ONLY_DEFAULTS;
  return structuredClone({ ...COMMON_DEFAULTS, ...specific, ...panes }) as DepProfileSettings;
}
