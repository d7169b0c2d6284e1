/**
 * The dependency rules of an ADE enrollment profile (requirements 004-D §2.6 and §10, 004-E §3.3,
 * the current Intune ADE articles, and the Graph property descriptions), on the flat Graph shape:
 * every writable property present. Pure: no I/O. A broken rule is a 400 naming the property.
 *
 * How the console's toggles appear in Graph:
 * - User affinity = requiresUserAuthentication.
 * - Authentication method: Company Portal = enableAuthenticationViaCompanyPortal; Setup Assistant
 *   with modern authentication = configurationWebUrl; Setup Assistant (legacy) = neither;
 *   macOS Platform SSO = usePlatformSSODuringSetupAssistant.
 * - Install Company Portal = requireCompanyPortalOnSetupAssistantEnrolledDevices; Install Company
 *   Portal with VPP = companyPortalVppTokenId; Single App Mode = enableSingleAppEnrollmentMode.
 * - Locked enrollment = profileRemovalDisabled; Sync with computers = iTunesPairingMode.
 * - "Apply device name template: Yes" = a non-null deviceNameTemplate; "Activate cellular data
 *   plan: Yes" = a non-null carrierActivationUrl; empty strings mean No.
 */
import { GraphError } from '../../../graph/errors.js';
import { parseCertificate, normalizeThumbprint, toManagementCertificate } from './certificates.js';
import { deviceNameTemplateProblem, hasControlCharacters } from './device-name.js';
import type { AdminAccountPasswordRotationSetting, DepProfilePlatform, ManagementCertificate } from './model.js';
import { PROFILE_LIMITS as L } from './model.js';

/** A profile as one object of Graph properties (names, settings, and macOS's write-only password). */
export type FlatProfile = Record<string, unknown>;

export interface ProfileProblem {
  property: string;
  message: string;
}

export interface DependencyRule {
  /** Stable id, for tests and docs. */
  id: string;
  /** Where the rule comes from. */
  source: string;
  platforms: readonly DepProfilePlatform[];
  /** The property the error names. */
  property: string;
  violated(p: FlatProfile): boolean;
  message: string;
}

const on = (p: FlatProfile, k: string) => p[k] === true;
/** A property that holds a value other than its "off" default. */
export const isSet = (v: unknown) =>
  v !== null && v !== undefined && v !== false && v !== 0 && v !== '' && !(Array.isArray(v) && v.length === 0);
const set = (p: FlatProfile, k: string) => isSet(p[k]);

const BOTH = ['iOS', 'macOS'] as const;
const IOS = ['iOS'] as const;
const MAC = ['macOS'] as const;

const AFFINITY = 'requiresUserAuthentication';
const CP = 'enableAuthenticationViaCompanyPortal';
const MODERN = 'configurationWebUrl';
const VPP = 'companyPortalVppTokenId';
const SAM = 'enableSingleAppEnrollmentMode';
const SUPERVISED = 'supervisedModeEnabled';
const SHARED = 'enableSharedIPad';
const TEMP_ONLY = 'forceTemporarySession';

/** Shared iPad sub-settings: exist only when Shared iPad is on (004-D §10.6). */
export const SHARED_IPAD_SETTINGS = [
  'sharedIPadMaximumUserCount',
  'passcodeLockGracePeriodInSeconds',
  'userSessionTimeoutInSeconds',
  'temporarySessionTimeoutInSeconds',
  TEMP_ONLY,
] as const;

/** Cancelled by "Require Shared iPad temporary session only = Yes" (ignored and cleared, not refused). */
export const CANCELLED_BY_TEMPORARY_SESSION_ONLY = ['sharedIPadMaximumUserCount', 'passcodeLockGracePeriodInSeconds', 'userSessionTimeoutInSeconds'] as const;

/** macOS primary-account settings, which prefill the account from the signed-in user. */
export const PRIMARY_ACCOUNT_SETTINGS = ['primaryAccountUserName', 'primaryAccountFullName', 'dontAutoPopulatePrimaryAccountInfo', 'enableRestrictEditing'] as const;

/** macOS settings that need the local admin account (adminAccountUserName). */
export const ADMIN_ACCOUNT_SETTINGS = [
  'adminAccountFullName',
  'adminAccountPassword',
  'hideAdminAccount',
  'depProfileAdminAccountPasswordRotationSetting',
  'setPrimarySetupAccountAsRegularUser',
  'skipPrimarySetupAccountCreation',
] as const;

/** Every setting that makes Setup Assistant run AccountConfiguration, which needs Await final configuration. */
const ACCOUNT_SETTINGS = ['adminAccountUserName', ...ADMIN_ACCOUNT_SETTINGS, ...PRIMARY_ACCOUNT_SETTINGS] as const;

const needsAffinity = (property: string, what: string, platforms: readonly DepProfilePlatform[] = BOTH, id = property): DependencyRule => ({
  id: `affinity.${id}`,
  source: '004-D §10.1',
  platforms,
  property,
  violated: (p) => !on(p, AFFINITY) && set(p, property),
  message: `${what} needs user affinity: set requiresUserAuthentication to true.`,
});

/** The "off" value of each Shared iPad sub-setting (0 is a real grace period, null is none). */
const SHARED_IPAD_OFF: Record<(typeof SHARED_IPAD_SETTINGS)[number], unknown> = {
  sharedIPadMaximumUserCount: 0,
  passcodeLockGracePeriodInSeconds: null,
  userSessionTimeoutInSeconds: 0,
  temporarySessionTimeoutInSeconds: 0,
  forceTemporarySession: false,
};

const onlyWithSharedIPad = (property: (typeof SHARED_IPAD_SETTINGS)[number]): DependencyRule => ({
  id: `sharedIPad.only.${property}`,
  source: '004-D §10.6',
  platforms: IOS,
  property,
  violated: (p) => !on(p, SHARED) && p[property] !== SHARED_IPAD_OFF[property],
  message: 'applies only to Shared iPad: set enableSharedIPad to true, or leave it at its default.',
});

const sessionTimeout = (property: string, what: string): DependencyRule => ({
  id: `timeout.${property}`,
  source: '004-D §10.7',
  platforms: IOS,
  property,
  violated: (p) => {
    const v = p[property];
    return typeof v === 'number' && v > 0 && v < L.sessionTimeoutMin;
  },
  message: `${what} must be 0 (never) or at least ${L.sessionTimeoutMin} seconds.`,
});

const needsAdminAccount = (property: string): DependencyRule => ({
  id: `adminAccount.${property}`,
  source: 'Apple AccountConfiguration',
  platforms: MAC,
  property,
  violated: (p) => !set(p, 'adminAccountUserName') && set(p, property),
  message: 'needs a local admin account: set adminAccountUserName.',
});

export const DEPENDENCY_RULES: readonly DependencyRule[] = [
  // User affinity (004-D §10.1; 004-E §3.3).
  needsAffinity(CP, 'Authentication with Company Portal', IOS),
  needsAffinity(MODERN, 'Setup Assistant with modern authentication'),
  needsAffinity('requireCompanyPortalOnSetupAssistantEnrolledDevices', 'Installing Company Portal'),
  needsAffinity(VPP, 'Installing Company Portal with VPP', IOS),
  needsAffinity(SAM, 'Single App Mode until authentication', IOS),
  needsAffinity('usePlatformSSODuringSetupAssistant', 'Platform SSO during Setup Assistant', MAC),
  ...PRIMARY_ACCOUNT_SETTINGS.map((k) => needsAffinity(k, 'The primary account prefill', MAC)),
  {
    id: 'auth.oneMethod',
    source: 'enrollmentProfile (one authentication method)',
    platforms: BOTH,
    property: MODERN,
    violated: (p) => on(p, CP) && on(p, MODERN),
    message: "can't be true together with enableAuthenticationViaCompanyPortal: a profile has one authentication method.",
  },
  {
    id: 'macos.companyPortal',
    source: '004-E §3.3',
    platforms: MAC,
    property: CP,
    violated: (p) => on(p, CP),
    message: 'must be false: macOS profiles authenticate in Setup Assistant (legacy or modern authentication).',
  },
  {
    id: 'platformSSO.notModern',
    source: 'depMacOSEnrollmentProfile.usePlatformSSODuringSetupAssistant',
    platforms: MAC,
    property: 'usePlatformSSODuringSetupAssistant',
    violated: (p) => on(p, 'usePlatformSSODuringSetupAssistant') && on(p, MODERN),
    message: "can't be true when configurationWebUrl is true.",
  },
  // Supervision (004-D §10.3, §10.4).
  {
    id: 'companyPortal.supervised',
    source: '004-D §10.3',
    platforms: IOS,
    property: CP,
    violated: (p) => on(p, CP) && !on(p, SUPERVISED),
    message: 'Authentication with Company Portal requires supervision: set supervisedModeEnabled to true.',
  },
  {
    id: 'locked.supervised',
    source: '004-D §10.4; Apple is_mdm_removable',
    platforms: BOTH,
    property: 'profileRemovalDisabled',
    violated: (p) => on(p, 'profileRemovalDisabled') && !on(p, SUPERVISED),
    message: 'Locked enrollment requires supervision: set supervisedModeEnabled to true.',
  },
  // Company Portal with VPP and Single App Mode (004-D §10.2; Graph property descriptions).
  {
    id: 'vpp.installsCompanyPortal',
    source: '004-D §2.6 (Install Company Portal with VPP)',
    platforms: IOS,
    property: VPP,
    violated: (p) => on(p, AFFINITY) && set(p, VPP) && !on(p, CP) && !on(p, MODERN) && !on(p, 'requireCompanyPortalOnSetupAssistantEnrolledDevices'),
    message:
      'is used only when Company Portal is installed: authenticate with Company Portal or modern authentication, or set requireCompanyPortalOnSetupAssistantEnrolledDevices to true.',
  },
  {
    id: 'singleAppMode.vpp',
    source: '004-D §10.2',
    platforms: IOS,
    property: SAM,
    violated: (p) => on(p, SAM) && !set(p, VPP),
    message: 'Single App Mode requires installing Company Portal with VPP: set companyPortalVppTokenId.',
  },
  {
    id: 'singleAppMode.companyPortal',
    source: 'depIOSEnrollmentProfile.enableSingleAppEnrollmentMode',
    platforms: IOS,
    property: SAM,
    violated: (p) => on(p, SAM) && on(p, AFFINITY) && !on(p, CP),
    message: 'Single App Mode requires authentication with Company Portal: set enableAuthenticationViaCompanyPortal to true.',
  },
  // Shared iPad (004-D §10.5–10.7).
  {
    id: 'sharedIPad.noAffinity',
    source: '004-D §10.5',
    platforms: IOS,
    property: SHARED,
    violated: (p) => on(p, SHARED) && on(p, AFFINITY),
    message: 'Shared iPad requires enrolling without user affinity: set requiresUserAuthentication to false.',
  },
  {
    id: 'sharedIPad.supervised',
    source: '004-D §10.5',
    platforms: IOS,
    property: SHARED,
    violated: (p) => on(p, SHARED) && !on(p, SUPERVISED),
    message: 'Shared iPad requires supervision: set supervisedModeEnabled to true.',
  },
  ...SHARED_IPAD_SETTINGS.map(onlyWithSharedIPad),
  {
    id: 'sharedIPad.maximumUsers',
    source: '004-D §2.6 (Maximum cached users)',
    platforms: IOS,
    property: 'sharedIPadMaximumUserCount',
    violated: (p) => on(p, SHARED) && !on(p, TEMP_ONLY) && !(typeof p.sharedIPadMaximumUserCount === 'number' && p.sharedIPadMaximumUserCount >= 1),
    message: 'Shared iPad needs the maximum number of cached users (at least 1), unless forceTemporarySession is true.',
  },
  {
    id: 'temporarySession.timeoutNeedsTemporaryOnly',
    source: '004-D §12 check 21',
    platforms: IOS,
    property: 'temporarySessionTimeoutInSeconds',
    violated: (p) => on(p, SHARED) && !on(p, TEMP_ONLY) && set(p, 'temporarySessionTimeoutInSeconds'),
    message: 'applies only when forceTemporarySession (temporary session only) is true.',
  },
  sessionTimeout('userSessionTimeoutInSeconds', 'The user session inactivity timeout'),
  sessionTimeout('temporarySessionTimeoutInSeconds', 'The temporary session inactivity timeout'),
  {
    id: 'sharedIPad.noAwait',
    source: 'Intune ADE article (Await final configuration)',
    platforms: IOS,
    property: 'awaitDeviceConfiguredConfirmation',
    violated: (p) => on(p, SHARED) && on(p, 'awaitDeviceConfiguredConfirmation'),
    message: "Await final configuration isn't available with Shared iPad.",
  },
  {
    id: 'sharedIPad.noWait',
    source: 'Intune ADE article (Await final configuration)',
    platforms: IOS,
    property: 'waitForDeviceConfiguredConfirmation',
    violated: (p) => on(p, SHARED) && on(p, 'waitForDeviceConfiguredConfirmation'),
    message: "Await final configuration isn't available with Shared iPad.",
  },
  // Microsoft Entra shared device mode: userless, and not a Shared iPad.
  {
    id: 'sharedDeviceMode.noAffinity',
    source: 'Shared device mode article (ADE without user affinity)',
    platforms: IOS,
    property: 'userlessSharedAadModeEnabled',
    violated: (p) => on(p, 'userlessSharedAadModeEnabled') && on(p, AFFINITY),
    message: 'Shared device mode requires enrolling without user affinity: set requiresUserAuthentication to false.',
  },
  {
    id: 'sharedDeviceMode.notSharedIPad',
    source: '004-D §3',
    platforms: IOS,
    property: 'userlessSharedAadModeEnabled',
    violated: (p) => on(p, 'userlessSharedAadModeEnabled') && on(p, SHARED),
    message: "Shared device mode and Shared iPad can't both be on.",
  },
  // Sync with computers (004-D §10.8).
  {
    id: 'pairing.certificateRequired',
    source: '004-D §10.8',
    platforms: IOS,
    property: 'managementCertificates',
    violated: (p) => p.iTunesPairingMode === 'requiresCertificate' && !set(p, 'managementCertificates'),
    message: "iTunesPairingMode 'requiresCertificate' (Allow Apple Configurator by certificate) needs at least one certificate.",
  },
  {
    id: 'pairing.certificatesUnused',
    source: '004-D §10.8',
    platforms: IOS,
    property: 'managementCertificates',
    violated: (p) => p.iTunesPairingMode !== 'requiresCertificate' && set(p, 'managementCertificates'),
    message: "is used only when iTunesPairingMode is 'requiresCertificate'.",
  },
  // macOS.
  {
    id: 'autoAdvance.noAffinity',
    source: 'Apple auto_advance_setup (no user input)',
    platforms: MAC,
    property: 'autoAdvanceSetupEnabled',
    violated: (p) => on(p, 'autoAdvanceSetupEnabled') && on(p, AFFINITY),
    message: "Auto Advance can't wait for a user to sign in: set requiresUserAuthentication to false.",
  },
  ...ADMIN_ACCOUNT_SETTINGS.map(needsAdminAccount),
  {
    id: 'primaryAccount.skipped',
    source: 'Apple AccountConfiguration (SkipPrimarySetupAccountCreation)',
    platforms: MAC,
    property: 'skipPrimarySetupAccountCreation',
    violated: (p) =>
      on(p, 'skipPrimarySetupAccountCreation') &&
      (set(p, 'primaryAccountUserName') || set(p, 'primaryAccountFullName') || on(p, 'setPrimarySetupAccountAsRegularUser')),
    message: "can't be true while the primary account is configured (primaryAccountUserName, primaryAccountFullName, setPrimarySetupAccountAsRegularUser).",
  },
  {
    id: 'accounts.distinct',
    source: 'macOS local accounts',
    platforms: MAC,
    property: 'primaryAccountUserName',
    violated: (p) =>
      typeof p.primaryAccountUserName === 'string' &&
      typeof p.adminAccountUserName === 'string' &&
      p.primaryAccountUserName.toLowerCase() === p.adminAccountUserName.toLowerCase(),
    message: 'must differ from adminAccountUserName.',
  },
  {
    id: 'rotation.period',
    source: 'depProfileAdminAccountPasswordRotationSetting',
    platforms: MAC,
    property: 'depProfileAdminAccountPasswordRotationSetting.autoRotationPeriodInDays',
    violated: (p) => {
      const r = p.depProfileAdminAccountPasswordRotationSetting as AdminAccountPasswordRotationSetting | null;
      return r !== null && r !== undefined && r.autoRotationPeriodInDays === null;
    },
    message: `is required (${L.rotationDaysMin} to ${L.rotationDaysMax} days) when password rotation is configured.`,
  },
  {
    id: 'rotation.delay',
    source: 'depProfileDelayAutoRotationSetting',
    platforms: MAC,
    property: 'depProfileAdminAccountPasswordRotationSetting.depProfileDelayAutoRotationSetting.onRetrievalDelayAutoRotatePasswordInHours',
    violated: (p) => {
      const d = (p.depProfileAdminAccountPasswordRotationSetting as AdminAccountPasswordRotationSetting | null)?.depProfileDelayAutoRotationSetting;
      return !!d && d.onRetrievalDelayAutoRotatePasswordInHours !== null && !d.onRetrievalAutoRotatePasswordEnabled;
    },
    message: 'applies only when onRetrievalAutoRotatePasswordEnabled is true.',
  },
];

function rulesFor(platform: DepProfilePlatform): DependencyRule[] {
  return DEPENDENCY_RULES.filter((r) => r.platforms.includes(platform));
}

const emptyToNull = (v: unknown) => (v === '' ? null : v);
const SHORT_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** Strings whose empty value means "off" (the console's No), trimmed where whitespace can't matter. */
const NULL_WHEN_EMPTY = [
  'deviceNameTemplate',
  'carrierActivationUrl',
  'companyPortalVppTokenId',
  'supportDepartment',
  'supportPhoneNumber',
  'adminAccountUserName',
  'adminAccountFullName',
  'primaryAccountUserName',
  'primaryAccountFullName',
] as const;
const TRIMMED = ['supportDepartment', 'supportPhoneNumber', 'companyPortalVppTokenId', 'carrierActivationUrl', 'adminAccountUserName', 'primaryAccountUserName'];

/**
 * Normalizes a complete flat profile in place: empty strings that mean "off" become null,
 * "temporary session only" clears what it cancels, account settings turn on Await final
 * configuration, certificates become base64 DER with their thumbprint.
 */
function normalize(platform: DepProfilePlatform, p: FlatProfile, problems: ProfileProblem[]): void {
  if (typeof p.displayName === 'string') p.displayName = p.displayName.trim();
  for (const k of NULL_WHEN_EMPTY) {
    if (!(k in p)) continue;
    const v = p[k];
    p[k] = emptyToNull(typeof v === 'string' && TRIMMED.includes(k) ? v.trim() : v);
  }
  const groups = p.enrollmentTimeAzureAdGroupIds;
  p.enrollmentTimeAzureAdGroupIds = Array.isArray(groups) ? [...new Set(groups.map((g) => String(g).toLowerCase()))] : [];

  if (platform === 'iOS') {
    if (p.userSessionTimeoutInSeconds === null) p.userSessionTimeoutInSeconds = 0;
    if (p.temporarySessionTimeoutInSeconds === null) p.temporarySessionTimeoutInSeconds = 0;
    // "When set to Yes, this setting cancels out" these: not applicable to temporary sessions.
    if (on(p, SHARED) && on(p, TEMP_ONLY)) for (const k of CANCELLED_BY_TEMPORARY_SESSION_ONLY) p[k] = SHARED_IPAD_OFF[k];
    p.managementCertificates = normalizeCertificates(p.managementCertificates, problems);
  } else {
    p.depProfileAdminAccountPasswordRotationSetting = normalizeRotation(p.depProfileAdminAccountPasswordRotationSetting);
    // Local accounts are created during Await final configuration, so Intune turns it on for them.
    if (ACCOUNT_SETTINGS.some((k) => set(p, k))) p.waitForDeviceConfiguredConfirmation = true;
  }
}

function normalizeCertificates(value: unknown, problems: ProfileProblem[]): ManagementCertificate[] {
  if (!Array.isArray(value)) return [];
  const out: ManagementCertificate[] = [];
  value.forEach((entry: { certificate?: string | null; thumbprint?: string | null }, i) => {
    const where = `managementCertificates[${i}]`;
    if (typeof entry.certificate !== 'string' || entry.certificate.trim() === '') {
      problems.push({ property: `${where}.certificate`, message: 'is required: the base64-encoded certificate.' });
      return;
    }
    const parsed = parseCertificate(entry.certificate);
    if (!parsed.ok) {
      problems.push({ property: `${where}.certificate`, message: `${parsed.problem}.` });
      return;
    }
    const cert = toManagementCertificate(parsed.der);
    if (typeof entry.thumbprint === 'string' && entry.thumbprint.trim() !== '' && normalizeThumbprint(entry.thumbprint) !== cert.thumbprint) {
      problems.push({ property: `${where}.thumbprint`, message: `doesn't match the certificate (its SHA-1 thumbprint is ${cert.thumbprint}).` });
      return;
    }
    if (out.some((c) => c.thumbprint === cert.thumbprint)) {
      problems.push({ property: `${where}.certificate`, message: 'is listed twice.' });
      return;
    }
    out.push(cert);
  });
  return out;
}

function normalizeRotation(value: unknown): AdminAccountPasswordRotationSetting | null {
  if (value === null || typeof value !== 'object') return null;
  const r = value as { autoRotationPeriodInDays?: number | null; depProfileDelayAutoRotationSetting?: Record<string, unknown> | null };
  const d = r.depProfileDelayAutoRotationSetting;
  return {
    autoRotationPeriodInDays: r.autoRotationPeriodInDays ?? null,
    depProfileDelayAutoRotationSetting:
      d === null || d === undefined
        ? null
        : {
            onRetrievalAutoRotatePasswordEnabled: d.onRetrievalAutoRotatePasswordEnabled === true,
            onRetrievalDelayAutoRotatePasswordInHours: typeof d.onRetrievalDelayAutoRotatePasswordInHours === 'number' ? d.onRetrievalDelayAutoRotatePasswordInHours : null,
          },
  };
}

/** Checks of single values that the schema can't express. */
function valueProblems(platform: DepProfilePlatform, p: FlatProfile): ProfileProblem[] {
  const out: ProfileProblem[] = [];
  const add = (property: string, message: string) => out.push({ property, message });

  if (typeof p.displayName !== 'string' || p.displayName === '') add('displayName', 'must not be blank.');
  if (typeof p.deviceNameTemplate === 'string') {
    const problem = deviceNameTemplateProblem(p.deviceNameTemplate);
    if (problem) add('deviceNameTemplate', `${problem}.`);
  }
  for (const k of ['supportDepartment', 'supportPhoneNumber'] as const) {
    if (typeof p[k] === 'string' && hasControlCharacters(p[k])) add(k, 'must not contain control characters or line breaks.');
  }
  if (platform === 'iOS') {
    if (typeof p.carrierActivationUrl === 'string') {
      const problem = httpsUrlProblem(p.carrierActivationUrl);
      if (problem) add('carrierActivationUrl', `${problem}.`);
    }
    if (typeof p.companyPortalVppTokenId === 'string' && (/\s/.test(p.companyPortalVppTokenId) || hasControlCharacters(p.companyPortalVppTokenId))) {
      add('companyPortalVppTokenId', 'must be the id of a VPP token (no spaces or control characters).');
    }
  } else {
    accountName(p, 'adminAccountUserName', null, add);
    accountName(p, 'primaryAccountUserName', 'partialupn', add);
    fullName(p, 'adminAccountFullName', null, add);
    fullName(p, 'primaryAccountFullName', 'username', add);
    if (typeof p.adminAccountPassword === 'string' && hasControlCharacters(p.adminAccountPassword)) {
      add('adminAccountPassword', 'must not contain control characters.');
    }
  }
  return out;
}

const TOKEN = /\{\{([^{}]*)\}\}/g;

function tokensProblem(value: string, allowed: string | null): string | null {
  for (const m of value.matchAll(TOKEN)) {
    if (allowed === null || (m[1] ?? '').trim().toLowerCase() !== allowed) {
      return allowed === null ? `can't contain variables such as '${m[0]}'` : `has an unknown variable '${m[0]}': the only variable is {{${allowed}}}`;
    }
  }
  const rest = value.replace(TOKEN, '');
  return rest.includes('{{') || rest.includes('}}') ? "has an unbalanced '{{' or '}}'" : null;
}

function accountName(p: FlatProfile, k: string, token: string | null, add: (k: string, m: string) => void): void {
  const v = p[k];
  if (typeof v !== 'string') return;
  const tokens = tokensProblem(v, token);
  if (tokens) return add(k, `${tokens}.`);
  const literal = v.replace(TOKEN, 'x');
  if (!SHORT_NAME.test(literal)) {
    add(k, "must be a macOS account name: letters, digits, '.', '-' and '_', not starting with '.' or '-'.");
  }
}

function fullName(p: FlatProfile, k: string, token: string | null, add: (k: string, m: string) => void): void {
  const v = p[k];
  if (typeof v !== 'string') return;
  if (v.trim() === '') return add(k, 'must not be blank; use null for none.');
  if (hasControlCharacters(v)) return add(k, 'must not contain control characters or line breaks.');
  const tokens = tokensProblem(v, token);
  if (tokens) add(k, `${tokens}.`);
}

/** Why a URL isn't an absolute https URL a device can reach, or null. */
export function httpsUrlProblem(value: string): string | null {
  if (/\s/.test(value)) return 'must be an https URL without spaces';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute https URL, such as https://carrier.example.com/activate';
  }
  if (url.protocol !== 'https:') return 'must use https';
  if (!url.hostname) return 'must name a host';
  if (url.username || url.password) return "must not contain a user name or password";
  return null;
}

export function problemsError(problems: ProfileProblem[]): GraphError {
  const first = problems[0] ?? { property: 'body', message: 'is invalid.' };
  const message = (p: ProfileProblem) => `Invalid value for property '${p.property}': ${p.message}`;
  return new GraphError(400, 'BadRequest', message(first), {
    target: first.property,
    ...(problems.length > 1 ? { details: problems.map((p) => ({ code: 'BadRequest', message: message(p), target: p.property })) } : {}),
  });
}

/**
 * Normalizes and checks a complete flat profile of the platform (every writable property
 * present and well-typed). Returns the normalized copy; throws a 400 GraphError listing every
 * broken rule, the first in the message.
 */
export function checkFlatProfile(platform: DepProfilePlatform, profile: FlatProfile): FlatProfile {
  const p: FlatProfile = { ...profile };
  const problems: ProfileProblem[] = [];
  normalize(platform, p, problems);
  problems.push(...valueProblems(platform, p));
  for (const rule of rulesFor(platform)) {
    if (rule.violated(p)) problems.push({ property: rule.property, message: rule.message });
  }
  if (problems.length > 0) throw problemsError(problems);
  return p;
}
