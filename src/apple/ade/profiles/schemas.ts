/**
 * TypeBox schemas for POST and PATCH bodies of depIOSEnrollmentProfile and
 * depMacOSEnrollmentProfile: every Graph property of the type and its bases, with Graph's types
 * (configurationWebUrl is a Boolean), unknown properties refused. They check types and plain
 * limits; dependencies between properties are rules.ts's job.
 *
 * Read-only properties (id, isDefault, enabledSkipKeys, configurationEndpointUrl) are accepted and
 * ignored, so a client can send back what it read.
 */
import { Type, type TSchema } from 'typebox';
import { Nullable } from '../../../graph/schemas.js';
import {
  DELAY_ROTATION_SETTING_TYPE,
  DEP_IOS_PROFILE_TYPE,
  DEP_MACOS_PROFILE_TYPE,
  ITUNES_PAIRING_MODES,
  MANAGEMENT_CERTIFICATE_TYPE,
  PROFILE_LIMITS as L,
  ROTATION_SETTING_TYPE,
  type DepProfilePlatform,
  type IosProfileSettings,
  type MacProfileSettings,
} from './model.js';
import { panesFor, type IosPaneProperty, type MacPaneProperty } from './setup-panes.js';

export const GUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

/** "#microsoft.graph.x" or "microsoft.graph.x": clients send both (graph-enrollment-api §1.3). */
export const odataTypeOf = (name: string) => Type.Enum([`#${name}`, name]);

const text = (maxLength: number, minLength = 0) => Nullable(Type.String({ minLength, maxLength }));
const int = (minimum: number, maximum: number) => Type.Integer({ minimum, maximum });

const ManagementCertificate = Type.Object(
  {
    certificate: Type.Optional(text(L.managementCertificateChars)),
    thumbprint: Type.Optional(text(128)),
    '@odata.type': Type.Optional(odataTypeOf(MANAGEMENT_CERTIFICATE_TYPE)),
  },
  { additionalProperties: false },
);

const DelayAutoRotationSetting = Type.Object(
  {
    onRetrievalAutoRotatePasswordEnabled: Type.Optional(Type.Boolean()),
    onRetrievalDelayAutoRotatePasswordInHours: Type.Optional(Nullable(int(L.rotationDelayHoursMin, L.rotationDelayHoursMax))),
    '@odata.type': Type.Optional(odataTypeOf(DELAY_ROTATION_SETTING_TYPE)),
  },
  { additionalProperties: false },
);

const AdminAccountPasswordRotationSetting = Type.Object(
  {
    autoRotationPeriodInDays: Type.Optional(Nullable(int(L.rotationDaysMin, L.rotationDaysMax))),
    depProfileDelayAutoRotationSetting: Type.Optional(Nullable(DelayAutoRotationSetting)),
    '@odata.type': Type.Optional(odataTypeOf(ROTATION_SETTING_TYPE)),
  },
  { additionalProperties: false },
);

/** Writable properties every ADE profile has (enrollmentProfile + depEnrollmentBaseProfile), panes aside. */
const namesProps = {
  displayName: Type.String({ minLength: 1, maxLength: L.displayName }),
  description: text(L.description),
};

const commonProps = {
  requiresUserAuthentication: Type.Boolean(),
  enableAuthenticationViaCompanyPortal: Type.Boolean(),
  requireCompanyPortalOnSetupAssistantEnrolledDevices: Type.Boolean(),
  configurationWebUrl: Type.Boolean({ description: 'true = Setup Assistant with modern authentication (a Boolean despite its name)' }),
  deviceNameTemplate: text(L.deviceNameTemplate),
  enrollmentTimeAzureAdGroupIds: Nullable(Type.Array(Type.String({ pattern: GUID_PATTERN }), { maxItems: L.enrollmentTimeAzureAdGroupIds })),
  isMandatory: Type.Boolean(),
  profileRemovalDisabled: Type.Boolean(),
  supervisedModeEnabled: Type.Boolean(),
  supportDepartment: text(L.supportDepartment),
  supportPhoneNumber: text(L.supportPhoneNumber),
  waitForDeviceConfiguredConfirmation: Type.Boolean(),
};

const iosOnlyProps = {
  awaitDeviceConfiguredConfirmation: Type.Boolean(),
  carrierActivationUrl: text(L.carrierActivationUrl),
  companyPortalVppTokenId: text(L.companyPortalVppTokenId),
  enableSharedIPad: Type.Boolean(),
  enableSingleAppEnrollmentMode: Type.Boolean(),
  forceTemporarySession: Type.Boolean(),
  iTunesPairingMode: Type.Enum(ITUNES_PAIRING_MODES),
  managementCertificates: Nullable(Type.Array(ManagementCertificate, { maxItems: L.managementCertificates })),
  passcodeLockGracePeriodInSeconds: Nullable(int(0, L.passcodeLockGracePeriodMax)),
  sharedIPadMaximumUserCount: int(0, L.int32Max),
  // Non-null Int32 in Graph; null is taken as the console's "blank" (= 0, never).
  temporarySessionTimeoutInSeconds: Nullable(int(0, L.int32Max)),
  userSessionTimeoutInSeconds: Nullable(int(0, L.int32Max)),
  userlessSharedAadModeEnabled: Type.Boolean(),
};

const macOnlyProps = {
  adminAccountFullName: text(L.accountFullName),
  adminAccountUserName: text(L.accountShortName),
  autoAdvanceSetupEnabled: Type.Boolean(),
  depProfileAdminAccountPasswordRotationSetting: Nullable(AdminAccountPasswordRotationSetting),
  dontAutoPopulatePrimaryAccountInfo: Type.Boolean(),
  enableRestrictEditing: Type.Boolean(),
  hideAdminAccount: Type.Boolean(),
  primaryAccountFullName: text(L.accountFullName),
  primaryAccountUserName: text(L.accountShortName),
  requestRequiresNetworkTether: Type.Boolean(),
  setPrimarySetupAccountAsRegularUser: Type.Boolean(),
  skipPrimarySetupAccountCreation: Type.Boolean(),
  usePlatformSSODuringSetupAssistant: Type.Boolean(),
};

/** Write-only: Graph returns it as null. Null or absent on PATCH keeps the stored password. */
const macWriteOnlyProps = {
  adminAccountPassword: text(L.adminPasswordMax, L.adminPasswordMin),
};

const readOnlyProps = {
  id: Type.String({ maxLength: 200 }),
  isDefault: Type.Boolean(),
  enabledSkipKeys: Nullable(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 100 })),
  configurationEndpointUrl: text(2048),
};

function paneProps(platform: DepProfilePlatform): Record<string, TSchema> {
  return Object.fromEntries(panesFor(platform).map((p) => [p.property, Type.Boolean({ description: `Hide the ${p.name} pane (${p.skipKey})` })]));
}

// Compile-time check that the schemas and the model name the same properties.
type SameKeys<A, B> = [Exclude<keyof A, keyof B>] extends [never] ? ([Exclude<keyof B, keyof A>] extends [never] ? true : false) : false;
const _iosSchemaMatchesModel: SameKeys<typeof commonProps & typeof iosOnlyProps & Record<IosPaneProperty, TSchema>, IosProfileSettings> = true;
const _macSchemaMatchesModel: SameKeys<typeof commonProps & typeof macOnlyProps & Record<MacPaneProperty, TSchema>, MacProfileSettings> = true;

/** The writable Graph properties of a platform's type and their schemas. */
export function writableProperties(platform: DepProfilePlatform): Record<string, TSchema> {
  return platform === 'iOS'
    ? { ...namesProps, ...commonProps, ...iosOnlyProps, ...paneProps('iOS') }
    : { ...namesProps, ...commonProps, ...macOnlyProps, ...macWriteOnlyProps, ...paneProps('macOS') };
}

export const READ_ONLY_PROPERTIES: readonly string[] = Object.keys(readOnlyProps);

function optional(props: Record<string, TSchema>): Record<string, TSchema> {
  return Object.fromEntries(Object.entries(props).map(([k, v]) => [k, Type.Optional(v)]));
}

function body(platform: DepProfilePlatform, mode: 'create' | 'patch') {
  const typeName = platform === 'iOS' ? DEP_IOS_PROFILE_TYPE : DEP_MACOS_PROFILE_TYPE;
  const props = optional(writableProperties(platform));
  const odataType = odataTypeOf(typeName);
  return Type.Object(
    {
      ...props,
      ...(mode === 'create' ? { displayName: namesProps.displayName } : {}),
      ...optional(readOnlyProps),
      '@odata.type': mode === 'create' ? odataType : Type.Optional(odataType),
    },
    { additionalProperties: false, description: `${mode === 'create' ? 'Create' : 'Update'} a #${typeName}` },
  );
}

export const DepIOSEnrollmentProfileCreateBody = body('iOS', 'create');
export const DepIOSEnrollmentProfilePatchBody = body('iOS', 'patch');
export const DepMacOSEnrollmentProfileCreateBody = body('macOS', 'create');
export const DepMacOSEnrollmentProfilePatchBody = body('macOS', 'patch');

/**
 * Either create body, for OpenAPI. Validate with parseProfileCreate rather than with this union:
 * Ajv's anyOf errors don't say which property is wrong.
 */
export const DepEnrollmentProfileCreateBody = Type.Union([DepIOSEnrollmentProfileCreateBody, DepMacOSEnrollmentProfileCreateBody]);
export const DepEnrollmentProfilePatchBody = Type.Union([DepIOSEnrollmentProfilePatchBody, DepMacOSEnrollmentProfilePatchBody]);

export function createBodySchema(platform: DepProfilePlatform) {
  return platform === 'iOS' ? DepIOSEnrollmentProfileCreateBody : DepMacOSEnrollmentProfileCreateBody;
}

export function patchBodySchema(platform: DepProfilePlatform) {
  return platform === 'iOS' ? DepIOSEnrollmentProfilePatchBody : DepMacOSEnrollmentProfilePatchBody;
}
