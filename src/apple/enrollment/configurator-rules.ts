import { Type } from 'typebox';
import { invalidProperty } from '../../graph/errors.js';
import { Nullable, ODataType, RoleScopeTagIds } from '../../graph/schemas.js';
import { readCsvRecords, withoutTrailingEmptyCells } from '../../shared/csv.js';
import { DAY, MINUTE } from '../../shared/time.js';
import type { ConfiguratorDevicesTable, ConfiguratorProfilesTable } from '../../store/schema.js';
import { ADE_LIMITS, NEVER, normalizeSerial, serialProblem } from '../ade/admin/model.js';
import { checkBody } from '../ade/profiles/body-check.js';
import { appleDevicePaths } from '../device-urls.js';

/**
 * Apple Configurator (requirements -D §9, -E §4; graph §3.2–3.3), pure: the Graph shapes of its
 * profiles (`enrollmentProfile` under the tenant's pseudo depOnboardingSetting) and serials
 * (`importedAppleDeviceIdentity`), their rules, and the serial CSV. No I/O.
 */

export const CONFIGURATOR_PROFILE_TYPE = 'microsoft.graph.enrollmentProfile';
export { APPLE_DEVICE_TYPE } from '../ade/admin/model.js';
/** object_type of a profile's scope tags; serials are seen through their profile. */
export const CONFIGURATOR_PROFILE_OBJECT = 'appleConfiguratorProfile';

export const CONFIGURATOR_LIMITS = {
  displayName: 256,
  description: 1024,
  /** "max 5,000 rows" per CSV (-D §9.2); also per importAppleDeviceIdentityList call. */
  serialsPerImport: ADE_LIMITS.devicesPerRequest,
  /** Details are the serial's Graph description: the ADE limit of the same property. */
  details: ADE_LIMITS.description,
  csvBytes: 5 * 1024 * 1024,
  /** One CSV row: far above any valid row (serial + details), it stops a file that is one huge line. */
  csvRecordChars: 8192,
} as const;

/** "A downloaded enrollment profile is valid for two weeks after download" (-E §4, -D §9.3). */
export const DIRECT_ENROLLMENT_VALIDITY_MS = 14 * DAY;
/** A Setup Assistant device's one-time profile: its SCEP challenge lives 15 minutes (-D check 36). */
export const SETUP_ASSISTANT_CHALLENGE_MS = 15 * MINUTE;
/** Its intent outlives the challenge (as ADE's does) so the Authenticate after SCEP still finds it. */
export const SETUP_ASSISTANT_INTENT_MS = DAY;

/** The profile URL admins enter as Configurator's enrollment URL (the service's configurationEndpointUrl). */
export function configurationEndpointUrl(publicUrl: string | undefined, tenantId: string, profileId: string): string | null {
  return publicUrl ? `${publicUrl}${appleDevicePaths(tenantId).configurator(profileId)}` : null;
}

// ---- profiles ----------------------------------------------------------------------------

const writable = {
  displayName: Type.String({ maxLength: CONFIGURATOR_LIMITS.displayName }),
  description: Type.Optional(Nullable(Type.String({ maxLength: CONFIGURATOR_LIMITS.description }))),
  requiresUserAuthentication: Type.Optional(Type.Boolean()),
  enableAuthenticationViaCompanyPortal: Type.Optional(Type.Boolean()),
  requireCompanyPortalOnSetupAssistantEnrolledDevices: Type.Optional(Type.Boolean()),
  roleScopeTagIds: Type.Optional(RoleScopeTagIds),
  '@odata.type': ODataType,
};
/** What a GET returns and the service sets: accepted back in a PATCH and ignored. */
const READ_ONLY = ['id', 'configurationEndpointUrl', 'createdDateTime', 'lastModifiedDateTime'] as const;
const ReadOnly = Type.Optional(Type.Unknown());

const ProfileCreateBody = Type.Object(writable, { additionalProperties: false });
const ProfilePatchBody = Type.Object(
  { ...writable, displayName: Type.Optional(writable.displayName), ...Object.fromEntries(READ_ONLY.map((k) => [k, ReadOnly])) },
  { additionalProperties: false },
);

export interface ProfileWrite {
  displayName?: string;
  description?: string | null;
  requiresUserAuthentication?: boolean;
  enableAuthenticationViaCompanyPortal?: boolean;
  requireCompanyPortalOnSetupAssistantEnrolledDevices?: boolean;
  roleScopeTagIds?: string[];
}

/** The settings a profile ends up with, checked as a whole. */
export interface ProfileSettings {
  displayName: string;
  description: string | null;
  requiresUserAuthentication: boolean;
  enableAuthenticationViaCompanyPortal: boolean;
  requireCompanyPortalOnSetupAssistantEnrolledDevices: boolean;
}

/** Validates a create (`patch` false) or PATCH body; 400 naming the property. */
export function parseProfileBody(body: unknown, patch: boolean): ProfileWrite {
  checkBody(patch ? ProfilePatchBody : ProfileCreateBody, body, CONFIGURATOR_PROFILE_TYPE);
  const type = body['@odata.type'];
  if (type !== undefined && String(type).replace(/^#/, '') !== CONFIGURATOR_PROFILE_TYPE) {
    throw invalidProperty(
      '@odata.type',
      `the tenant's Apple Configurator setting holds '#${CONFIGURATOR_PROFILE_TYPE}' profiles; Automated Device Enrollment profiles belong to an enrollment program token.`,
    );
  }
  const out: ProfileWrite = {};
  for (const k of ['displayName', 'description', 'requiresUserAuthentication', 'enableAuthenticationViaCompanyPortal', 'requireCompanyPortalOnSetupAssistantEnrolledDevices', 'roleScopeTagIds'] as const) {
    if (body[k] !== undefined) (out as Record<string, unknown>)[k] = body[k];
  }
  if (out.displayName !== undefined && out.displayName.trim() === '') throw invalidProperty('displayName', 'Name is required.');
  if (out.displayName !== undefined) out.displayName = out.displayName.trim();
  return out;
}

/**
 * The settings' dependencies (-D §9.1, §10 rules 1 and 13): Company Portal authentication and
 * requiring the Company Portal exist only with user affinity. Refused rather than silently cleared.
 */
export function checkProfileSettings(s: ProfileSettings): void {
  if (s.requiresUserAuthentication) return;
  for (const k of ['enableAuthenticationViaCompanyPortal', 'requireCompanyPortalOnSetupAssistantEnrolledDevices'] as const) {
    if (s[k]) throw invalidProperty(k, 'applies only to profiles that enroll with user affinity (requiresUserAuthentication: true).');
  }
}

export function settingsOf(row: ConfiguratorProfilesTable): ProfileSettings {
  return {
    displayName: row.display_name,
    description: row.description,
    requiresUserAuthentication: row.requires_user_authentication === 1,
    enableAuthenticationViaCompanyPortal: row.enable_authentication_via_company_portal === 1,
    requireCompanyPortalOnSetupAssistantEnrolledDevices: row.require_company_portal_on_setup_assistant === 1,
  };
}

/** Graph's enrollmentProfile, plus OpenEnroll's roleScopeTagIds, createdDateTime and lastModifiedDateTime. */
export function toProfileEntity(row: ConfiguratorProfilesTable, tags: readonly string[], publicUrl: string | undefined): Record<string, unknown> {
  const s = settingsOf(row);
  return {
    id: row.id,
    displayName: s.displayName,
    description: s.description,
    requiresUserAuthentication: s.requiresUserAuthentication,
    configurationEndpointUrl: configurationEndpointUrl(publicUrl, row.tenant_id, row.id),
    enableAuthenticationViaCompanyPortal: s.enableAuthenticationViaCompanyPortal,
    requireCompanyPortalOnSetupAssistantEnrolledDevices: s.requireCompanyPortalOnSetupAssistantEnrolledDevices,
    roleScopeTagIds: [...tags],
    createdDateTime: row.created_at,
    lastModifiedDateTime: row.updated_at,
  };
}

/**
 * "Enroll with user affinity is not supported … when using Direct Enrollment" (-E §4, -D §10 rule
 * 13): the reason a profile can't give a direct-enrollment download, or null.
 */
export function directEnrollmentProblem(s: Pick<ProfileSettings, 'requiresUserAuthentication' | 'displayName'>): string | null {
  if (!s.requiresUserAuthentication) return null;
  return (
    `Invalid value for property 'requiresUserAuthentication': Enroll with user affinity is not supported when using Direct Enrollment. ` +
    `'${s.displayName}' enrolls with user affinity, so it works only with Setup Assistant enrollment (its profile URL); ` +
    'use a profile without user affinity for a direct-enrollment .mobileconfig, or Automated Device Enrollment.'
  );
}

// ---- serials ------------------------------------------------------------------------------

export const DEVICE_PLATFORMS = ['unknown', 'ios', 'macOS'] as const;
export const ENROLLMENT_STATES = ['unknown', 'enrolled', 'pendingReset', 'failed', 'notContacted', 'blocked'] as const;

/** Graph's importedAppleDeviceIdentity of a Configurator serial (always an admin import). */
export function toDeviceEntity(row: ConfiguratorDevicesTable): Record<string, unknown> {
  return {
    id: row.id,
    serialNumber: row.serial_number,
    requestedEnrollmentProfileId: row.profile_id,
    requestedEnrollmentProfileAssignmentDateTime: row.profile_assigned_at,
    // Configurator decides supervision while preparing the device; we don't learn it here.
    isSupervised: false,
    platform: row.platform,
    description: row.details,
    discoverySource: 'adminImport',
    createdDateTime: row.created_at,
    lastContactedDateTime: row.last_contacted_at ?? NEVER,
    enrollmentState: row.enrollment_state,
    isDeleted: false,
  };
}

/** Why details can't be stored, or null; counted in characters as people count them. */
export function detailsProblem(details: string | null | undefined): string | null {
  if (details === null || details === undefined) return null;
  const n = [...details].length;
  return n > CONFIGURATOR_LIMITS.details ? `details are ${n} characters; at most ${CONFIGURATOR_LIMITS.details} are allowed` : null;
}

/** Empty details are none. */
export const normalizeDetails = (details: string | null | undefined): string | null => (details?.trim() ? details.trim() : null);

export { normalizeSerial, serialProblem };

/** The whole file is refused (400); row problems are reported per row. */
export class ConfiguratorCsvError extends Error {}

export interface ConfiguratorCsvRow {
  row: number;
  /** As written, for the result. */
  serialNumber: string;
  details: string | null;
  error?: string;
}

const HEADER_WORDS = new Set(['serial', 'serials', 'serialnumber', 'serialnumbers', 'serialno', 'device', 'devices', 'identifier']);
const headerWord = (cell: string | undefined) => (cell ?? '').toLowerCase().replace(/[^a-z]/g, '');

/**
 * The Configurator serial CSV (-D §9.2): no header, two columns (serial, details; details may be
 * empty or left out), at most 5,000 rows. A header-looking first row or a 5,001st row refuses the
 * whole file; a bad row fails alone.
 */
export function parseConfiguratorCsv(text: string): ConfiguratorCsvRow[] {
  const max = CONFIGURATOR_LIMITS.serialsPerImport;
  const records = readCsvRecords(text, {
    maxRecordChars: CONFIGURATOR_LIMITS.csvRecordChars,
    maxRows: max,
    rowTooLong: (row) => `Row ${row} has more than ${CONFIGURATOR_LIMITS.csvRecordChars} characters; a row is serial,details.`,
    tooManyRows: () => `The file has more than ${max.toLocaleString('en-US')} rows (the limit per file); split it into smaller files. Nothing was imported.`,
    fail: (message) => new ConfiguratorCsvError(message),
  });
  const first = records[0];
  if (!first) throw new ConfiguratorCsvError('The file has no serial numbers.');
  if (HEADER_WORDS.has(headerWord(first.cells[0]))) {
    throw new ConfiguratorCsvError(
      `Row ${first.row} looks like a header ('${withoutTrailingEmptyCells(first.cells).join(',')}'). Apple Configurator device files have no header row: every row is serial,details.`,
    );
  }
  return records.map(({ row, cells }) => readRow(row, withoutTrailingEmptyCells(cells)));
}

function readRow(row: number, cells: string[]): ConfiguratorCsvRow {
  const serialNumber = cells[0]!.trim();
  const details = normalizeDetails(cells[1]);
  if (cells.length > 2) {
    return { row, serialNumber, details: null, error: `the row has ${cells.length} columns; expected 2 (serial, details). Quote details that contain commas.` };
  }
  const serial = serialProblem(serialNumber);
  if (serial) return { row, serialNumber, details, error: `serial number '${serialNumber}' ${serial}.` };
  const problem = detailsProblem(details);
  if (problem) return { row, serialNumber, details, error: `${problem}.` };
  return { row, serialNumber, details };
}
