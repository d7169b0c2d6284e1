/**
 * What a profile means for one device, given its OS version (MachineInfo OS_VERSION) and family
 * (Apple's device_family). Pure; the enrollment service calls these while a device enrolls.
 */
import type { DepProfileContent, DepProfilePlatform } from './model.js';
import { IOS_ADE_PANES, panesFor, type SetupPane } from './setup-panes.js';
import { isAtLeast, parseAppleVersion } from './versions.js';

/** OS versions the rules turn on (004-D §2.2, §2.6, §2.8; 004-E §3.3; Apple). */
export const OS_THRESHOLDS = {
  /** iOS/iPadOS: ADE ignores is_supervised and supervises every device. */
  iosAlwaysSupervised: '13.0',
  /** macOS: Apple supervises every Mac enrolled through ADE from 10.14.4. */
  macosAlwaysSupervised: '10.14.4',
  iosModernAuthentication: '13.0',
  macosModernAuthentication: '10.15',
  /** Platform SSO during Setup Assistant arrived with macOS 26. */
  macosPlatformSSO: '26.0',
  iosSingleAppMode: '11.3.1',
  /** "requires iOS/iPadOS 13.4 or later" (the article's "13.3 and later" contradicts it; 004-D §11). */
  sharedIPad: '13.4',
} as const;

export type AuthenticationMethod = 'none' | 'companyPortal' | 'setupAssistantLegacy' | 'setupAssistantModern' | 'platformSSO';

/** The authentication method the profile asks for, before any OS fallback. */
export function profileAuthenticationMethod(profile: DepProfileContent): AuthenticationMethod {
  const s = profile.settings;
  if (!s.requiresUserAuthentication) return 'none';
  if (s.enableAuthenticationViaCompanyPortal) return 'companyPortal';
  if (s.configurationWebUrl) return 'setupAssistantModern';
  if (profile.platform === 'macOS' && profile.settings.usePlatformSSODuringSetupAssistant) return 'platformSSO';
  return 'setupAssistantLegacy';
}

/**
 * The method a device actually uses: modern authentication on iOS/iPadOS below 13.0 or macOS
 * below 10.15 "falls back to the Setup Assistant (legacy) process", as does Platform SSO below
 * macOS 26. `platform` is the device's platform.
 */
export function resolveAuthenticationMethod(profile: DepProfileContent, platform: DepProfilePlatform, osVersion: string | null | undefined): AuthenticationMethod {
  const method = profileAuthenticationMethod(profile);
  if (method === 'setupAssistantModern') {
    const min = platform === 'iOS' ? OS_THRESHOLDS.iosModernAuthentication : OS_THRESHOLDS.macosModernAuthentication;
    return isAtLeast(osVersion, min) ? method : 'setupAssistantLegacy';
  }
  if (method === 'platformSSO') return isAtLeast(osVersion, OS_THRESHOLDS.macosPlatformSSO) ? method : 'setupAssistantLegacy';
  return method;
}

/** Whether the device ends up supervised: always from iOS 13.0 / macOS 10.14.4, else as the profile says. */
export function effectiveSupervised(profile: DepProfileContent, osVersion: string | null | undefined): boolean {
  const min = profile.platform === 'iOS' ? OS_THRESHOLDS.iosAlwaysSupervised : OS_THRESHOLDS.macosAlwaysSupervised;
  // An unknown version proves nothing about supervision; keep the profile's value.
  if (parseAppleVersion(osVersion) === null) return profile.settings.supervisedModeEnabled;
  return isAtLeast(osVersion, min) || profile.settings.supervisedModeEnabled;
}

/** Whether Company Portal Single App Mode is applied: the profile asks for it and the device runs iOS/iPadOS 11.3.1 or later. */
export function singleAppModeApplies(profile: DepProfileContent, osVersion: string | null | undefined): boolean {
  return profile.platform === 'iOS' && profile.settings.enableSingleAppEnrollmentMode && isAtLeast(osVersion, OS_THRESHOLDS.iosSingleAppMode);
}

export type SharedIPadOutcome = 'applies' | 'wipeRequired' | 'notSharedIPad';

/**
 * Shared iPad on this device: 'applies' on an iPad with iPadOS 13.4 or later; 'wipeRequired' on
 * any iPhone or iPod, or an older iPad ("A device wipe will be required if … sent to an
 * unsupported device"); 'notSharedIPad' when the profile isn't a Shared iPad profile.
 */
export function sharedIPadApplies(profile: DepProfileContent, deviceFamily: string | null | undefined, osVersion: string | null | undefined): SharedIPadOutcome {
  if (profile.platform !== 'iOS' || !profile.settings.enableSharedIPad) return 'notSharedIPad';
  if ((deviceFamily ?? '').toLowerCase() !== 'ipad') return 'wipeRequired';
  return isAtLeast(osVersion, OS_THRESHOLDS.sharedIPad) ? 'applies' : 'wipeRequired';
}

export interface PaneState {
  pane: SetupPane;
  hidden: boolean;
  /** Why it's hidden: the admin's setting, or Shared iPad skipping every pane after activation. */
  reason: 'setting' | 'sharedIPad' | null;
}

/**
 * Hide/Show for each pane of the profile's platform (the 24 iOS ADE panes first, in the article's
 * order). Shared iPad profiles report every pane as skipped: "all Setup Assistant panes after
 * activation are automatically skipped regardless of the configuration".
 */
export function setupAssistantPanes(profile: DepProfileContent): PaneState[] {
  const settings = profile.settings as unknown as Record<string, unknown>;
  const shared = profile.platform === 'iOS' && profile.settings.enableSharedIPad;
  const panes = profile.platform === 'iOS' ? [...IOS_ADE_PANES, ...panesFor('iOS').filter((p) => !p.adePane)] : [...panesFor('macOS')];
  return panes.map((pane) => {
    const bySetting = settings[pane.property] === true;
    return { pane, hidden: bySetting || shared, reason: bySetting ? 'setting' : shared ? 'sharedIPad' : null };
  });
}
