/**
 * Pure rules for ADE enrollment profiles (Graph depIOSEnrollmentProfile and
 * depMacOSEnrollmentProfile): body schemas, validation, the Graph entity, Apple's profile JSON,
 * OS-version resolution and edit semantics. No I/O.
 */
export * from './model.js';
export * from './setup-panes.js';
export * from './versions.js';
export {
  DepEnrollmentProfileCreateBody,
  DepEnrollmentProfilePatchBody,
  DepIOSEnrollmentProfileCreateBody,
  DepIOSEnrollmentProfilePatchBody,
  DepMacOSEnrollmentProfileCreateBody,
  DepMacOSEnrollmentProfilePatchBody,
  createBodySchema,
  patchBodySchema,
  writableProperties,
  READ_ONLY_PROPERTIES,
  GUID_PATTERN,
} from './schemas.js';
export { checkBody, describeSchema } from './body-check.js';
export {
  DEPENDENCY_RULES,
  SHARED_IPAD_SETTINGS,
  CANCELLED_BY_TEMPORARY_SESSION_ONLY,
  PRIMARY_ACCOUNT_SETTINGS,
  ADMIN_ACCOUNT_SETTINGS,
  checkFlatProfile,
  httpsUrlProblem,
  type DependencyRule,
  type FlatProfile,
  type ProfileProblem,
} from './rules.js';
export {
  validateProfile,
  parseProfileCreate,
  parseProfilePatch,
  platformOfODataType,
  readStoredSettings,
  storedProfileFromRow,
  storedDeviceNameTemplate,
  settingsJson,
} from './validate.js';
export { toGraphEntity } from './entity.js';
export { toAppleProfile, checkAppleProfile, APPLE_LIMITS, type AppleProfileOptions } from './apple-profile.js';
export { APPLE_PROFILE_SCHEMA } from './apple-profile-schema.js';
export {
  OS_THRESHOLDS,
  profileAuthenticationMethod,
  resolveAuthenticationMethod,
  effectiveSupervised,
  singleAppModeApplies,
  sharedIPadApplies,
  setupAssistantPanes,
  type AuthenticationMethod,
  type SharedIPadOutcome,
  type PaneState,
} from './resolve.js';
export { profileChangeImpact, changeTiming, type ProfileChangeImpact, type ChangeTiming } from './change-impact.js';
export { DEVICE_NAME_VARIABLES, deviceNameTemplateProblem, renderDeviceName } from './device-name.js';
export { parseCertificate, certificateThumbprint, isBase64DerCertificate } from './certificates.js';
