/**
 * A stored profile as Graph returns it: every property of the type and its bases, nulls as null,
 * collections as [], the admin password as null, enabledSkipKeys derived from the pane booleans.
 */
import {
  DELAY_ROTATION_SETTING_TYPE,
  MANAGEMENT_CERTIFICATE_TYPE,
  PROFILE_TYPE_OF,
  ROTATION_SETTING_TYPE,
  type StoredDepProfile,
} from './model.js';
import { enabledSkipKeys, panesFor } from './setup-panes.js';

/** The profile's Graph entity, starting with its @odata.type and id. */
export function toGraphEntity(profile: StoredDepProfile): Record<string, unknown> {
  const s = profile.settings;
  const panes = Object.fromEntries(panesFor(profile.platform).map((p) => [p.property, (s as Record<string, unknown>)[p.property] === true]));
  const entity: Record<string, unknown> = {
    '@odata.type': `#${PROFILE_TYPE_OF[profile.platform]}`,
    id: profile.id,
    // enrollmentProfile
    displayName: profile.displayName,
    description: profile.description,
    requiresUserAuthentication: s.requiresUserAuthentication,
    // Filled for Apple Configurator profiles only.
    configurationEndpointUrl: null,
    enableAuthenticationViaCompanyPortal: s.enableAuthenticationViaCompanyPortal,
    requireCompanyPortalOnSetupAssistantEnrolledDevices: s.requireCompanyPortalOnSetupAssistantEnrolledDevices,
    // depEnrollmentBaseProfile
    configurationWebUrl: s.configurationWebUrl,
    deviceNameTemplate: s.deviceNameTemplate,
    enabledSkipKeys: enabledSkipKeys(profile.platform, s as unknown as Record<string, unknown>),
    enrollmentTimeAzureAdGroupIds: [...s.enrollmentTimeAzureAdGroupIds],
    isDefault: profile.isDefault,
    isMandatory: s.isMandatory,
    profileRemovalDisabled: s.profileRemovalDisabled,
    supervisedModeEnabled: s.supervisedModeEnabled,
    supportDepartment: s.supportDepartment,
    supportPhoneNumber: s.supportPhoneNumber,
    waitForDeviceConfiguredConfirmation: s.waitForDeviceConfiguredConfirmation,
  };
  if (profile.platform === 'iOS') {
    const i = profile.settings;
    Object.assign(entity, {
      awaitDeviceConfiguredConfirmation: i.awaitDeviceConfiguredConfirmation,
      carrierActivationUrl: i.carrierActivationUrl,
      companyPortalVppTokenId: i.companyPortalVppTokenId,
      enableSharedIPad: i.enableSharedIPad,
      enableSingleAppEnrollmentMode: i.enableSingleAppEnrollmentMode,
      forceTemporarySession: i.forceTemporarySession,
      iTunesPairingMode: i.iTunesPairingMode,
      managementCertificates: i.managementCertificates.map((c) => ({ '@odata.type': `#${MANAGEMENT_CERTIFICATE_TYPE}`, certificate: c.certificate, thumbprint: c.thumbprint })),
      passcodeLockGracePeriodInSeconds: i.passcodeLockGracePeriodInSeconds,
      sharedIPadMaximumUserCount: i.sharedIPadMaximumUserCount,
      temporarySessionTimeoutInSeconds: i.temporarySessionTimeoutInSeconds,
      userSessionTimeoutInSeconds: i.userSessionTimeoutInSeconds,
      userlessSharedAadModeEnabled: i.userlessSharedAadModeEnabled,
    });
  } else {
    const m = profile.settings;
    const r = m.depProfileAdminAccountPasswordRotationSetting;
    Object.assign(entity, {
      adminAccountFullName: m.adminAccountFullName,
      // Secrets come back null (graph-enrollment-api §1.3).
      adminAccountPassword: null,
      adminAccountUserName: m.adminAccountUserName,
      autoAdvanceSetupEnabled: m.autoAdvanceSetupEnabled,
      depProfileAdminAccountPasswordRotationSetting: r
        ? {
            '@odata.type': `#${ROTATION_SETTING_TYPE}`,
            autoRotationPeriodInDays: r.autoRotationPeriodInDays,
            depProfileDelayAutoRotationSetting: r.depProfileDelayAutoRotationSetting
              ? { '@odata.type': `#${DELAY_ROTATION_SETTING_TYPE}`, ...r.depProfileDelayAutoRotationSetting }
              : null,
          }
        : null,
      dontAutoPopulatePrimaryAccountInfo: m.dontAutoPopulatePrimaryAccountInfo,
      enableRestrictEditing: m.enableRestrictEditing,
      hideAdminAccount: m.hideAdminAccount,
      primaryAccountFullName: m.primaryAccountFullName,
      primaryAccountUserName: m.primaryAccountUserName,
      requestRequiresNetworkTether: m.requestRequiresNetworkTether,
      setPrimarySetupAccountAsRegularUser: m.setPrimarySetupAccountAsRegularUser,
      skipPrimarySetupAccountCreation: m.skipPrimarySetupAccountCreation,
      usePlatformSSODuringSetupAssistant: m.usePlatformSSODuringSetupAssistant,
    });
  }
  Object.assign(entity, panes);
  return entity;
}

