/**
 * Graph enumerations used by managedDevice, with members exactly as in
 * graph-enrollment-api.md §14 (member order = SDK order).
 */

export const DEVICE_ENROLLMENT_TYPES = [
  'unknown',
  'userEnrollment',
  'deviceEnrollmentManager',
  'appleBulkWithUser',
  'appleBulkWithoutUser',
  'windowsAzureADJoin',
  'windowsBulkUserless',
  'windowsAutoEnrollment',
  'windowsBulkAzureDomainJoin',
  'windowsCoManagement',
  'windowsAzureADJoinUsingDeviceAuth',
  'appleUserEnrollment',
  'appleUserEnrollmentWithServiceAccount',
  'azureAdJoinUsingAzureVmExtension',
  'androidEnterpriseDedicatedDevice',
  'androidEnterpriseFullyManaged',
  'androidEnterpriseCorporateWorkProfile',
  'androidAOSPUserOwnedDeviceEnrollment',
  'androidAOSPUserlessDeviceEnrollment',
  'appleAccountDrivenUserEnrollment',
  'unknownFutureValue',
] as const;
export type DeviceEnrollmentType = (typeof DEVICE_ENROLLMENT_TYPES)[number];

export const MANAGED_DEVICE_OWNER_TYPES = ['unknown', 'company', 'personal', 'unknownFutureValue'] as const;
export type ManagedDeviceOwnerType = (typeof MANAGED_DEVICE_OWNER_TYPES)[number];

export const DEVICE_REGISTRATION_STATES = [
  'notRegistered',
  'registered',
  'revoked',
  'keyConflict',
  'approvalPending',
  'certificateReset',
  'notRegisteredPendingEnrollment',
  'unknown',
] as const;
export type DeviceRegistrationState = (typeof DEVICE_REGISTRATION_STATES)[number];

export const MANAGEMENT_STATES = [
  'managed',
  'retirePending',
  'retireFailed',
  'wipePending',
  'wipeFailed',
  'unhealthy',
  'deletePending',
  'retireIssued',
  'wipeIssued',
  'wipeCanceled',
  'retireCanceled',
  'discovered',
  'unknownFutureValue',
] as const;
export type ManagementState = (typeof MANAGEMENT_STATES)[number];

export const MANAGEMENT_AGENT_TYPES = [
  'eas',
  'mdm',
  'easMdm',
  'intuneClient',
  'easIntuneClient',
  'configurationManagerClient',
  'configurationManagerClientMdm',
  'configurationManagerClientMdmEas',
  'unknown',
  'jamf',
  'googleCloudDevicePolicyController',
  'microsoft365ManagedMdm',
  'msSense',
  'intuneAosp',
  'google',
  'unknownFutureValue',
] as const;
export type ManagementAgentType = (typeof MANAGEMENT_AGENT_TYPES)[number];

export const COMPLIANCE_STATES = ['unknown', 'compliant', 'noncompliant', 'conflict', 'error', 'inGracePeriod', 'configManager'] as const;
export type ComplianceState = (typeof COMPLIANCE_STATES)[number];

export const JOIN_TYPES = ['unknown', 'azureADJoined', 'azureADRegistered', 'hybridAzureADJoined'] as const;
export type JoinType = (typeof JOIN_TYPES)[number];

export const DEVICE_TYPES = [
  'desktop',
  'windowsRT',
  'winMO6',
  'nokia',
  'windowsPhone',
  'mac',
  'winCE',
  'winEmbedded',
  'iPhone',
  'iPad',
  'iPod',
  'android',
  'iSocConsumer',
  'unix',
  'macMDM',
  'holoLens',
  'surfaceHub',
  'androidForWork',
  'androidEnterprise',
  'windows10x',
  'androidnGMS',
  'chromeOS',
  'linux',
  'visionOS',
  'tvOS',
  'blackberry',
  'palm',
  'unknown',
  'cloudPC',
] as const;
export type DeviceType = (typeof DEVICE_TYPES)[number];

/** The evolvable-enum sentinel is for reading only ("Do not use"); nothing may store it. */
export const SENTINEL = 'unknownFutureValue';
