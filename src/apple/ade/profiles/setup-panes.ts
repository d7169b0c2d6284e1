/**
 * The Setup Assistant panes an ADE profile can hide, as one table. It drives the Graph body
 * schemas (one boolean per pane), `enabledSkipKeys`, and Apple's `skip_setup_items`.
 *
 * Sources: names and minimum OS versions from the Intune ADE articles (seed 001, requirements
 * 004-D §2.7 and 004-E §3.3); where Intune gives no version, Apple's skipkeys.yaml
 * (apple-protocol-and-anchors §3.7). Property → key mapping from graph-enrollment-api §3.5.
 */

export type DepProfilePlatform = 'iOS' | 'macOS';

export interface SetupPane {
  /** The pane's name in the Intune console. */
  readonly name: string;
  /** The Graph boolean that hides the pane ("…Disabled", "restoreBlocked"). */
  readonly property: string;
  /** Apple's skip_setup_items key. */
  readonly skipKey: string;
  /** Graph types that carry the property. */
  readonly platforms: readonly DepProfilePlatform[];
  /** First iOS/iPadOS version with the pane; null when not documented or not an iOS pane. */
  readonly iosMinimum: string | null;
  /** First macOS version with the pane; null when not documented or not a macOS pane. */
  readonly macosMinimum: string | null;
  /** One of the 24 iOS/iPadOS ADE panes the Intune article lists (004-D §2.7). */
  readonly adePane: boolean;
}

const both = ['iOS', 'macOS'] as const;
const ios = ['iOS'] as const;
const mac = ['macOS'] as const;

export const SETUP_PANES = [
  { name: 'Passcode', property: 'passCodeDisabled', skipKey: 'Passcode', platforms: both, iosMinimum: '7.0', macosMinimum: null, adePane: true },
  { name: 'Location Services', property: 'locationDisabled', skipKey: 'Location', platforms: both, iosMinimum: '7.0', macosMinimum: '10.11', adePane: true },
  { name: 'Restore', property: 'restoreBlocked', skipKey: 'Restore', platforms: both, iosMinimum: '7.0', macosMinimum: '10.9', adePane: true },
  { name: 'Apple ID', property: 'appleIdDisabled', skipKey: 'AppleID', platforms: both, iosMinimum: '7.0', macosMinimum: '10.9', adePane: true },
  { name: 'Terms and conditions', property: 'termsAndConditionsDisabled', skipKey: 'TOS', platforms: both, iosMinimum: '7.0', macosMinimum: '10.9', adePane: true },
  { name: 'Touch ID and Face ID', property: 'touchIdDisabled', skipKey: 'Biometric', platforms: both, iosMinimum: '8.1', macosMinimum: '10.12.4', adePane: true },
  { name: 'Apple Pay', property: 'applePayDisabled', skipKey: 'Payment', platforms: both, iosMinimum: '7.0', macosMinimum: '10.12.4', adePane: true },
  { name: 'Zoom', property: 'zoomDisabled', skipKey: 'Zoom', platforms: both, iosMinimum: '8.3', macosMinimum: null, adePane: true },
  { name: 'Siri', property: 'siriDisabled', skipKey: 'Siri', platforms: both, iosMinimum: '7.0', macosMinimum: '10.12', adePane: true },
  { name: 'Diagnostics Data', property: 'diagnosticsDisabled', skipKey: 'Diagnostics', platforms: both, iosMinimum: '7.0', macosMinimum: '10.9', adePane: true },
  { name: 'Display Tone', property: 'displayToneSetupDisabled', skipKey: 'DisplayTone', platforms: both, iosMinimum: '9.3.2', macosMinimum: '10.13.6', adePane: true },
  { name: 'Privacy', property: 'privacyPaneDisabled', skipKey: 'Privacy', platforms: both, iosMinimum: '11.3', macosMinimum: '10.13.4', adePane: true },
  { name: 'Android Migration', property: 'restoreFromAndroidDisabled', skipKey: 'Android', platforms: ios, iosMinimum: '9.0', macosMinimum: null, adePane: true },
  { name: 'iMessage & FaceTime', property: 'iMessageAndFaceTimeScreenDisabled', skipKey: 'iMessageAndFaceTime', platforms: ios, iosMinimum: '9.0', macosMinimum: null, adePane: true },
  { name: 'Onboarding', property: 'onBoardingScreenDisabled', skipKey: 'OnBoarding', platforms: ios, iosMinimum: '11.0', macosMinimum: null, adePane: true },
  { name: 'Screen Time', property: 'screenTimeScreenDisabled', skipKey: 'ScreenTime', platforms: both, iosMinimum: '12.0', macosMinimum: '10.15', adePane: true },
  { name: 'SIM Setup', property: 'simSetupScreenDisabled', skipKey: 'SIMSetup', platforms: ios, iosMinimum: '12.0', macosMinimum: null, adePane: true },
  { name: 'Software Update', property: 'softwareUpdateScreenDisabled', skipKey: 'SoftwareUpdate', platforms: ios, iosMinimum: '12.0', macosMinimum: null, adePane: true },
  { name: 'Watch Migration', property: 'watchMigrationScreenDisabled', skipKey: 'WatchMigration', platforms: ios, iosMinimum: '11.0', macosMinimum: null, adePane: true },
  // Apple also has an Appearance pane on macOS 10.14+, but Graph's macOS type has no property for it.
  { name: 'Appearance', property: 'appearanceScreenDisabled', skipKey: 'Appearance', platforms: ios, iosMinimum: '13.0', macosMinimum: null, adePane: true },
  { name: 'Device to Device Migration', property: 'deviceToDeviceMigrationDisabled', skipKey: 'DeviceToDeviceMigration', platforms: ios, iosMinimum: '13.0', macosMinimum: null, adePane: true },
  { name: 'Restore Completed', property: 'restoreCompletedScreenDisabled', skipKey: 'RestoreCompleted', platforms: ios, iosMinimum: '14.0', macosMinimum: null, adePane: true },
  { name: 'Software Update Completed', property: 'updateCompleteScreenDisabled', skipKey: 'UpdateCompleted', platforms: ios, iosMinimum: '14.0', macosMinimum: null, adePane: true },
  { name: 'Get Started', property: 'welcomeScreenDisabled', skipKey: 'Welcome', platforms: ios, iosMinimum: '13.0', macosMinimum: null, adePane: true },
  // iOS panes outside the 24: Apple School Manager's "Home Button", and two language panes the
  // older console offered. Apple's current skip key list has no ExpressLanguage/PreferredLanguage.
  { name: 'Home Button', property: 'homeButtonScreenDisabled', skipKey: 'HomeButtonSensitivity', platforms: ios, iosMinimum: '10.0', macosMinimum: null, adePane: false },
  { name: 'Express Language', property: 'expressLanguageScreenDisabled', skipKey: 'ExpressLanguage', platforms: ios, iosMinimum: null, macosMinimum: null, adePane: false },
  { name: 'Preferred Language', property: 'preferredLanguageScreenDisabled', skipKey: 'PreferredLanguage', platforms: ios, iosMinimum: null, macosMinimum: null, adePane: false },
  // macOS only. Apple dropped the Registration key from its current list; Intune still offers it.
  { name: 'Registration', property: 'registrationDisabled', skipKey: 'Registration', platforms: mac, iosMinimum: null, macosMinimum: '10.9', adePane: false },
  { name: 'FileVault', property: 'fileVaultDisabled', skipKey: 'FileVault', platforms: mac, iosMinimum: null, macosMinimum: '10.10', adePane: false },
  { name: 'iCloud Diagnostics', property: 'iCloudDiagnosticsDisabled', skipKey: 'iCloudDiagnostics', platforms: mac, iosMinimum: null, macosMinimum: '10.12.4', adePane: false },
  { name: 'iCloud Storage', property: 'iCloudStorageDisabled', skipKey: 'iCloudStorage', platforms: mac, iosMinimum: null, macosMinimum: '10.13.4', adePane: false },
  { name: 'Accessibility', property: 'accessibilityScreenDisabled', skipKey: 'Accessibility', platforms: mac, iosMinimum: null, macosMinimum: '11.0', adePane: false },
  { name: 'Auto unlock with Apple Watch', property: 'autoUnlockWithWatchDisabled', skipKey: 'UnlockWithWatch', platforms: mac, iosMinimum: null, macosMinimum: '12.0', adePane: false },
  // Graph's "chooseYourLockScreenDisabled" is the console's Wallpaper pane (macOS 14.1).
  { name: 'Wallpaper', property: 'chooseYourLockScreenDisabled', skipKey: 'Wallpaper', platforms: mac, iosMinimum: null, macosMinimum: '14.1', adePane: false },
] as const satisfies readonly SetupPane[];

type Pane = (typeof SETUP_PANES)[number];
export type SetupPaneProperty = Pane['property'];
export type IosPaneProperty = Extract<Pane, { platforms: typeof ios | typeof both }>['property'];
export type MacPaneProperty = Extract<Pane, { platforms: typeof mac | typeof both }>['property'];

/** The panes a platform's Graph type carries, in table order. */
export function panesFor(platform: DepProfilePlatform): readonly SetupPane[] {
  return SETUP_PANES.filter((p) => (p.platforms as readonly DepProfilePlatform[]).includes(platform));
}

/** The 24 iOS/iPadOS ADE panes of 004-D §2.7. */
export const IOS_ADE_PANES: readonly SetupPane[] = SETUP_PANES.filter((p) => p.adePane);

/**
 * Apple's skip_setup_items keys (apple/device-management other/skipkeys.yaml, 52 keys). Keys
 * outside this list are never sent to Apple.
 */
export const APPLE_SKIP_KEYS: ReadonlySet<string> = new Set([
  'Accessibility', 'ActionButton', 'AdditionalPrivacySettings', 'Android', 'Appearance', 'AppleID', 'AppStore', 'Biometric',
  'CameraButton', 'DeviceToDeviceMigration', 'Diagnostics', 'DisplayTone', 'EnableLockdownMode', 'FileVault',
  'HomeButtonSensitivity', 'iCloudDiagnostics', 'iCloudStorage', 'iMessageAndFaceTime', 'Intelligence', 'Keyboard', 'Location',
  'MessagingActivationUsingPhoneNumber', 'Multitasking', 'OnBoarding', 'OSShowcase', 'Passcode', 'Payment', 'Privacy', 'Restore',
  'RestoreCompleted', 'ScreenSaver', 'Safety', 'SafetyAndHandling', 'ScreenTime', 'SIMSetup', 'Siri', 'SoftwareUpdate',
  'SpokenLanguage', 'TapToSetup', 'TermsOfAddress', 'Tips', 'TOS', 'TVHomeScreenSync', 'TVProviderSignIn', 'TVRoom',
  'UnlockWithWatch', 'UpdateCompleted', 'Wallpaper', 'WatchMigration', 'WebContentFiltering', 'Welcome', 'Zoom',
]);

/** Graph's enabledSkipKeys: the skip key of every pane the settings hide, in table order. */
export function enabledSkipKeys(platform: DepProfilePlatform, settings: Readonly<Record<string, unknown>>): string[] {
  return panesFor(platform)
    .filter((p) => settings[p.property] === true)
    .map((p) => p.skipKey);
}
