/**
 * Entry points that turn Graph bodies into validated profiles: create, PATCH (merged onto the
 * stored profile), and reading settings back from the store.
 */
import { badRequest } from '../../../graph/errors.js';
import type { DepProfilesTable } from '../../../store/schema.js';
import { checkBody } from './body-check.js';
import {
  DEP_IOS_PROFILE_TYPE,
  DEP_MACOS_PROFILE_TYPE,
  defaultSettings,
  PROFILE_TYPE_OF,
  type DepProfileContent,
  type DepProfilePlatform,
  type DepProfileSettings,
  type DepProfileWrite,
  type IosProfileSettings,
  type MacProfileSettings,
  type StoredDepProfile,
} from './model.js';
import { ADMIN_ACCOUNT_SETTINGS, checkFlatProfile, PRIMARY_ACCOUNT_SETTINGS, SHARED_IPAD_SETTINGS, type FlatProfile } from './rules.js';
import { patchBodySchema, READ_ONLY_PROPERTIES, writableProperties } from './schemas.js';

/** The Graph type's platform, from "#microsoft.graph.depIOSEnrollmentProfile" and the like. */
export function platformOfODataType(odataType: unknown): DepProfilePlatform | undefined {
  if (typeof odataType !== 'string') return undefined;
  const name = odataType.replace(/^#/, '');
  return name === DEP_IOS_PROFILE_TYPE ? 'iOS' : name === DEP_MACOS_PROFILE_TYPE ? 'macOS' : undefined;
}

/** Keeps a body's writable properties; null collections become empty ones. */
function writableValues(platform: DepProfilePlatform, body: Record<string, unknown>): FlatProfile {
  const writable = writableProperties(platform);
  const out: FlatProfile = {};
  for (const [k, v] of Object.entries(body)) {
    if (k === '@odata.type' || READ_ONLY_PROPERTIES.includes(k) || !(k in writable)) continue;
    out[k] = v;
  }
  return out;
}

function flatten(content: DepProfileContent): FlatProfile {
  return { displayName: content.displayName, description: content.description, ...structuredClone(content.settings) };
}

/** Splits a checked flat profile into what the store keeps. */
function toWrite(platform: DepProfilePlatform, flat: FlatProfile, adminAccountPassword: string | null | undefined): DepProfileWrite {
  const settings: FlatProfile = {};
  for (const k of Object.keys(defaultSettings(platform))) settings[k] = flat[k];
  const names = { displayName: flat.displayName as string, description: (flat.description as string | null) ?? null };
  if (platform === 'iOS') return { platform, ...names, settings: settings as unknown as IosProfileSettings };
  return {
    platform,
    ...names,
    settings: settings as unknown as MacProfileSettings,
    ...(adminAccountPassword !== undefined ? { adminAccountPassword } : {}),
  };
}

/**
 * Validates a whole profile of `platform` given as Graph properties (a create body without its
 * @odata.type, or any object of Graph properties): types, limits and every dependency rule.
 * Properties left out take their defaults. Throws a 400 GraphError naming the property.
 */
export function validateProfile(platform: 'iOS', input: unknown): Extract<DepProfileWrite, { platform: 'iOS' }>;
export function validateProfile(platform: 'macOS', input: unknown): Extract<DepProfileWrite, { platform: 'macOS' }>;
export function validateProfile(platform: DepProfilePlatform, input: unknown): DepProfileWrite;
export function validateProfile(platform: DepProfilePlatform, input: unknown): DepProfileWrite {
  const typeName = PROFILE_TYPE_OF[platform];
  checkBody(patchBodySchema(platform), input, typeName);
  const values = writableValues(platform, input);
  if (values.displayName === undefined) throw badRequest("Property 'displayName' is required.", 'displayName');
  const flat = checkFlatProfile(platform, { ...defaultSettings(platform), description: null, ...values });
  const password = typeof flat.adminAccountPassword === 'string' ? flat.adminAccountPassword : undefined;
  return toWrite(platform, flat, password);
}

/** POST …/enrollmentProfiles: the body's @odata.type picks the platform. */
export function parseProfileCreate(body: unknown): DepProfileWrite {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('The request body must be a JSON object.');
  const odataType = (body as Record<string, unknown>)['@odata.type'];
  if (odataType === undefined) throw badRequest("Property '@odata.type' is required.", '@odata.type');
  const platform = platformOfODataType(odataType);
  if (!platform) {
    throw badRequest(
      `Invalid value for property '@odata.type': must be '#${DEP_IOS_PROFILE_TYPE}' or '#${DEP_MACOS_PROFILE_TYPE}'.`,
      '@odata.type',
    );
  }
  return validateProfile(platform, body);
}

/**
 * Settings a PATCH resets when it turns their parent off without mentioning them (the console
 * hides them; a client that turns Shared iPad off shouldn't have to zero its sub-settings).
 * Security-relevant dependencies (supervision under locked enrollment, Shared iPad, Company
 * Portal) aren't cascaded: turning supervision off under them is refused.
 */
const CASCADES: readonly { parent: string; off: (v: unknown) => boolean; dependents: readonly string[] }[] = [
  {
    parent: 'requiresUserAuthentication',
    off: (v) => v === false,
    dependents: [
      'enableAuthenticationViaCompanyPortal',
      'configurationWebUrl',
      'requireCompanyPortalOnSetupAssistantEnrolledDevices',
      'companyPortalVppTokenId',
      'enableSingleAppEnrollmentMode',
      'usePlatformSSODuringSetupAssistant',
      ...PRIMARY_ACCOUNT_SETTINGS,
    ],
  },
  { parent: 'enableAuthenticationViaCompanyPortal', off: (v) => v === false, dependents: ['enableSingleAppEnrollmentMode'] },
  { parent: 'companyPortalVppTokenId', off: (v) => v === null || v === '', dependents: ['enableSingleAppEnrollmentMode'] },
  { parent: 'enableSharedIPad', off: (v) => v === false, dependents: SHARED_IPAD_SETTINGS },
  { parent: 'forceTemporarySession', off: (v) => v === false, dependents: ['temporarySessionTimeoutInSeconds'] },
  { parent: 'iTunesPairingMode', off: (v) => v !== 'requiresCertificate', dependents: ['managementCertificates'] },
  { parent: 'adminAccountUserName', off: (v) => v === null || v === '', dependents: ADMIN_ACCOUNT_SETTINGS },
];

/**
 * PATCH …/enrollmentProfiles/{id}: merges the body onto the stored profile and validates the
 * result as a whole. An @odata.type, when sent, must be the profile's own type.
 */
export function parseProfilePatch(current: StoredDepProfile | DepProfileContent, body: unknown): DepProfileWrite {
  const platform = current.platform;
  const typeName = PROFILE_TYPE_OF[platform];
  if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
    const t = (body as Record<string, unknown>)['@odata.type'];
    if (t !== undefined && platformOfODataType(t) !== platform) {
      throw badRequest(`Invalid value for property '@odata.type': this profile is a '#${typeName}'; a profile's type can't be changed.`, '@odata.type');
    }
  }
  checkBody(patchBodySchema(platform), body, typeName);
  const patch = writableValues(platform, body);
  // Graph returns the password as null, so a null sent back means "keep it".
  if (patch.adminAccountPassword === null) delete patch.adminAccountPassword;

  const defaults = defaultSettings(platform) as unknown as FlatProfile;
  const merged: FlatProfile = { ...flatten(current), ...patch };
  for (const c of CASCADES) {
    if (!(c.parent in patch) || !c.off(patch[c.parent])) continue;
    for (const d of c.dependents) {
      if (!(d in patch) && d in defaults) merged[d] = structuredClone(defaults[d]);
    }
  }
  const flat = checkFlatProfile(platform, merged);
  let password: string | null | undefined = typeof flat.adminAccountPassword === 'string' ? flat.adminAccountPassword : undefined;
  if (platform === 'macOS' && flat.adminAccountUserName === null && current.platform === 'macOS' && current.settings.adminAccountUserName !== null) {
    password = null; // the admin account is gone, and its password with it
  }
  return toWrite(platform, flat, password);
}

/**
 * Settings read back from the store's JSON: missing properties (added after the row was written)
 * take their defaults, unknown ones are dropped.
 */
export function readStoredSettings(platform: 'iOS', json: string | object): IosProfileSettings;
export function readStoredSettings(platform: 'macOS', json: string | object): MacProfileSettings;
export function readStoredSettings(platform: DepProfilePlatform, json: string | object): DepProfileSettings;
export function readStoredSettings(platform: DepProfilePlatform, json: string | object): DepProfileSettings {
  const parsed: unknown = typeof json === 'string' ? JSON.parse(json) : json;
  const stored = parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
  const out = defaultSettings(platform) as unknown as Record<string, unknown>;
  for (const k of Object.keys(out)) {
    if (k in stored && stored[k] !== undefined) out[k] = stored[k];
  }
  return out as unknown as DepProfileSettings;
}

/** Only the device name template of a settings column (read at every idle poll; the default is none). */
export function storedDeviceNameTemplate(json: string): string | null {
  const parsed: unknown = JSON.parse(json);
  const template = parsed !== null && typeof parsed === 'object' ? (parsed as { deviceNameTemplate?: unknown }).deviceNameTemplate : undefined;
  return typeof template === 'string' && template.length > 0 ? template : null;
}

/** A dep_profiles row as the profile rules see it; isDefault comes from the token. */
export function storedProfileFromRow(
  row: Pick<DepProfilesTable, 'id' | 'platform' | 'display_name' | 'description' | 'settings'>,
  isDefault: boolean,
): StoredDepProfile {
  const names = { id: row.id, displayName: row.display_name, description: row.description, isDefault };
  if (row.platform === 'iOS') return { platform: 'iOS', ...names, settings: readStoredSettings('iOS', row.settings) };
  if (row.platform === 'macOS') return { platform: 'macOS', ...names, settings: readStoredSettings('macOS', row.settings) };
  throw new Error(`dep_profiles ${row.id}: unknown platform '${row.platform}'`);
}

/** The JSON for the settings column. */
export function settingsJson(settings: DepProfileSettings): string {
  return JSON.stringify(settings);
}
