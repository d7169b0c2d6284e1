import type { EnrollmentReasonCode } from './types.js';

/**
 * The enrollment failure catalogue (-E §8.1, §11). Each reason has the row's "reason for failure" (title), the
 * detail pane's explanation, and its recommended steps (remediation). Where the seed gives a sentence it is used
 * verbatim (L7381: "Device platform blocked" / "This device can't be enrolled while the platform is Blocked under
 * Device Type Restrictions."; L989: "Invalid Profile"); the rest is worded in the same voice.
 */
export interface EnrollmentReason {
  title: string;
  explanation: string;
  remediation: string;
}

export const ENROLLMENT_REASONS: Readonly<Record<EnrollmentReasonCode, EnrollmentReason>> = {
  userRequired: {
    title: 'User required',
    explanation: 'This enrollment method requires a signed-in user, and no user was identified.',
    remediation: 'Sign in with a work or school account that is licensed for Intune, then enroll again.',
  },
  missingHardwareIdentity: {
    title: 'Hardware identity missing',
    explanation: "Intune needs the virtual machine's hardware model and serial number to recognize and enroll it as a device.",
    remediation:
      'Give the virtual machine a serial number (any string of alphanumeric characters) and a hardware model, for example serialNumber = "ABC123456789" and hw.model = "MacBookAir10,1" in VMware Fusion, then enroll again.',
  },
  demNotAllowedForMethod: {
    title: 'Device enrollment manager not supported',
    explanation:
      "You can't use a device enrollment manager account with this enrollment method: Automated Device Enrollment, Apple School Manager, Apple Configurator, Android Enterprise fully managed and corporate-owned work profile enrollments don't support device enrollment managers.",
    remediation: 'Enroll the device with a standard user account, or use a method a device enrollment manager can use, such as Company Portal.',
  },
  invalidProfile: {
    title: 'Invalid Profile',
    explanation:
      'Automated enrollment failed because Device Type Restrictions block the iOS/iPadOS platform. The device shows as Invalid Profile, regardless of user attestation.',
    remediation:
      'Allow the iOS/iPadOS platform in Device Type Restrictions. To permit enrollment only by company-managed devices, block only personally owned devices, which will permit corporate devices to enroll.',
  },
  devicePlatformBlocked: {
    title: 'Device platform blocked',
    explanation: "This device can't be enrolled while the platform is Blocked under Device Type Restrictions.",
    remediation: 'Use a device on a different platform, or ask your administrator to allow this platform under Device Type Restrictions.',
  },
  personalDeviceBlocked: {
    title: 'Personally owned device blocked',
    explanation: "This device is classified as personally owned, and Device Type Restrictions block personally owned devices for this platform.",
    remediation:
      "Enroll a corporate-owned device, or ask your administrator to register the device's serial number or IMEI as a corporate device identifier, or to allow personally owned devices.",
  },
  windowsEnrollmentNotAuthorized: {
    title: 'Enrollment not authorized',
    explanation:
      "Personally owned Windows devices are blocked, and this enrollment method isn't authorized for corporate enrollment.",
    remediation:
      'Enroll with Windows Autopilot, a bulk provisioning package, Group Policy, co-management or a device enrollment manager account, or register the device with Windows Autopilot (MDM enrollment only from Windows Settings stays blocked).',
  },
  osVersionBelowMinimum: {
    title: 'OS version too low',
    explanation: "This device's OS version is below the minimum version allowed under Device Type Restrictions.",
    remediation: 'Update the device to a supported OS version and enroll again, or ask your administrator to lower the minimum version.',
  },
  osVersionAboveMaximum: {
    title: 'OS version too high',
    explanation: "This device's OS version is above the maximum version allowed under Device Type Restrictions.",
    remediation: 'Use a device with a supported OS version, or ask your administrator to raise the maximum version.',
  },
  osVersionUnrecognized: {
    title: 'OS version not recognized',
    explanation: "Device Type Restrictions set an OS version range, and this device's OS version couldn't be read.",
    remediation: 'Make sure the device reports its OS version (update the Company Portal app), then enroll again.',
  },
  manufacturerBlocked: {
    title: 'Device manufacturer blocked',
    explanation: "This device can't be enrolled because its manufacturer is blocked under Device Type Restrictions.",
    remediation: 'Use a device from a different manufacturer, or ask your administrator to remove the manufacturer from the block list.',
  },
  demLimitReached: {
    title: 'Device enrollment manager limit reached',
    explanation: 'This device enrollment manager account has already enrolled the maximum of 1,000 devices.',
    remediation: 'Delete devices this account no longer manages, or enroll with another device enrollment manager account.',
  },
  demWorkProfileLimitReached: {
    title: 'Device enrollment manager work profile limit reached',
    explanation: 'A device enrollment manager account can enroll up to 10 personally owned devices with work profiles, and this account has reached that limit.',
    remediation: 'Delete work profile devices this account no longer manages, or enroll with another device enrollment manager account.',
  },
  deviceLimitReached: {
    title: 'Device limit reached',
    explanation: 'You have enrolled the maximum number of devices allowed by your device limit restriction.',
    remediation: 'Unenroll a device you no longer use, then enroll again. An administrator can also increase the device limit.',
  },
  termsNotAccepted: {
    title: 'Terms and conditions not accepted',
    explanation: 'You must accept your organization\'s terms and conditions in Company Portal before you can enroll devices.',
    remediation: 'Open Company Portal, read and accept the terms and conditions, then enroll again.',
  },
};

export const ENROLLMENT_REASON_CODES = Object.keys(ENROLLMENT_REASONS) as EnrollmentReasonCode[];

/**
 * Refusals an enrollment path reaches before the policy decision (the device or the tenant isn't set up for it),
 * filed in the same failures report. Kept apart from the decision's codes, which the engine alone produces.
 */
export type EnrollmentPathReasonCode = 'deviceNotRegistered' | 'missingProfile' | 'pushCertificateNotReady';

export const ENROLLMENT_PATH_REASONS: Readonly<Record<EnrollmentPathReasonCode, EnrollmentReason>> = {
  deviceNotRegistered: {
    title: 'Device not registered for automated enrollment',
    explanation:
      "The device's serial number isn't in any of this organization's enrollment program tokens (it may be assigned to another MDM server, released from Apple Business Manager or Apple School Manager, or not synced yet).",
    remediation:
      'In Apple Business Manager or Apple School Manager, assign the device to the MDM server of one of your tokens, sync the token, then erase the device and start Setup Assistant again.',
  },
  missingProfile: {
    title: 'Missing profile',
    explanation: 'The device is registered for automated enrollment, but no enrollment profile is assigned to it and its token has no default profile for its platform.',
    remediation: 'Assign an enrollment profile to the device, or set a default profile on its token, then erase the device and start Setup Assistant again.',
  },
  pushCertificateNotReady: {
    title: 'Apple MDM push certificate required',
    explanation: 'Apple devices can only enroll while a current Apple MDM push certificate is uploaded; it is missing or has expired.',
    remediation: 'Upload or renew the Apple MDM push certificate, then enroll the device again.',
  },
};

export const ENROLLMENT_PATH_REASON_CODES = Object.keys(ENROLLMENT_PATH_REASONS) as EnrollmentPathReasonCode[];
