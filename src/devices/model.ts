import { badRequest, invalidProperty } from '../graph/errors.js';
import type { EntityModel, FilterOperator, PropertyDef } from '../graph/odata/model.js';
import type { ManagedDevicesTable } from '../store/schema.js';
import {
  COMPLIANCE_STATES,
  DEVICE_ENROLLMENT_TYPES,
  DEVICE_REGISTRATION_STATES,
  DEVICE_TYPES,
  JOIN_TYPES,
  MANAGED_DEVICE_OWNER_TYPES,
  MANAGEMENT_AGENT_TYPES,
  MANAGEMENT_STATES,
  SENTINEL,
  type ComplianceState,
  type DeviceEnrollmentType,
  type DeviceRegistrationState,
  type DeviceType,
  type JoinType,
  type ManagedDeviceOwnerType,
  type ManagementAgentType,
  type ManagementState,
} from './enums.js';

/*
 * The managedDevice record: one table of Graph properties, described once here and used for
 * the entity shape, $filter/$orderby, enrollment input validation and PATCH rules. Pure.
 */

export const MANAGED_DEVICE_TYPE = 'microsoft.graph.managedDevice';
/** object_type in object_scope_tags. */
export const MANAGED_DEVICE_OBJECT = 'managedDevice';

type Column = keyof ManagedDevicesTable;
type Kind = 'string' | 'enum' | 'boolean' | 'datetime';

interface Field {
  column: Column;
  kind: Kind;
  enumValues?: readonly string[];
  /** Longest accepted value from enrollment input. */
  maxLength?: number;
  caseInsensitive?: boolean;
  filterOps?: readonly FilterOperator[];
  sortable?: boolean;
}

const EQ: readonly FilterOperator[] = ['eq', 'ne'];
const TEXT_SEARCH: readonly FilterOperator[] = ['eq', 'ne', 'startswith', 'contains', 'endswith'];
const RANGE: readonly FilterOperator[] = ['lt', 'gt', 'le', 'ge'];
const NAME = 256;
const ID = 200;

/** Graph property -> column, for every property the table holds (in Graph's usual order). */
export const DEVICE_FIELDS = {
  userId: { column: 'user_id', kind: 'string', maxLength: ID, filterOps: EQ },
  deviceName: { column: 'device_name', kind: 'string', maxLength: NAME, caseInsensitive: true, filterOps: TEXT_SEARCH },
  managedDeviceOwnerType: { column: 'managed_device_owner_type', kind: 'enum', enumValues: MANAGED_DEVICE_OWNER_TYPES },
  enrolledDateTime: { column: 'enrolled_date_time', kind: 'datetime', filterOps: RANGE },
  lastSyncDateTime: { column: 'last_sync_date_time', kind: 'datetime', filterOps: RANGE },
  operatingSystem: { column: 'operating_system', kind: 'string', maxLength: 64, caseInsensitive: true, filterOps: [...EQ, 'startswith'] },
  complianceState: { column: 'compliance_state', kind: 'enum', enumValues: COMPLIANCE_STATES },
  managementAgent: { column: 'management_agent', kind: 'enum', enumValues: MANAGEMENT_AGENT_TYPES },
  osVersion: { column: 'os_version', kind: 'string', maxLength: 64, filterOps: [...EQ, 'startswith'] },
  deviceEnrollmentType: { column: 'device_enrollment_type', kind: 'enum', enumValues: DEVICE_ENROLLMENT_TYPES },
  emailAddress: { column: 'email_address', kind: 'string', maxLength: NAME, caseInsensitive: true, filterOps: TEXT_SEARCH },
  azureADDeviceId: { column: 'azure_ad_device_id', kind: 'string', maxLength: ID, caseInsensitive: true, filterOps: EQ },
  deviceRegistrationState: { column: 'device_registration_state', kind: 'enum', enumValues: DEVICE_REGISTRATION_STATES },
  deviceCategoryDisplayName: { column: 'device_category_display_name', kind: 'string', maxLength: NAME, caseInsensitive: true, filterOps: EQ },
  isSupervised: { column: 'is_supervised', kind: 'boolean' },
  isEncrypted: { column: 'is_encrypted', kind: 'boolean' },
  userPrincipalName: { column: 'user_principal_name', kind: 'string', maxLength: NAME, caseInsensitive: true, filterOps: TEXT_SEARCH },
  model: { column: 'model', kind: 'string', maxLength: NAME, filterOps: TEXT_SEARCH },
  manufacturer: { column: 'manufacturer', kind: 'string', maxLength: NAME, filterOps: TEXT_SEARCH },
  imei: { column: 'imei', kind: 'string', maxLength: 64, filterOps: [...EQ, 'startswith'] },
  meid: { column: 'meid', kind: 'string', maxLength: 64, filterOps: [...EQ, 'startswith'] },
  udid: { column: 'udid', kind: 'string', maxLength: ID, caseInsensitive: true, filterOps: EQ },
  serialNumber: { column: 'serial_number', kind: 'string', maxLength: 128, caseInsensitive: true, filterOps: TEXT_SEARCH },
  phoneNumber: { column: 'phone_number', kind: 'string', maxLength: 64, filterOps: EQ },
  wiFiMacAddress: { column: 'wifi_mac_address', kind: 'string', maxLength: 64, caseInsensitive: true, filterOps: EQ },
  userDisplayName: { column: 'user_display_name', kind: 'string', maxLength: NAME, caseInsensitive: true, filterOps: TEXT_SEARCH },
  managementCertificateExpirationDate: { column: 'management_certificate_expiration_date', kind: 'datetime', filterOps: RANGE },
  joinType: { column: 'join_type', kind: 'enum', enumValues: JOIN_TYPES },
  managementState: { column: 'management_state', kind: 'enum', enumValues: MANAGEMENT_STATES },
  deviceType: { column: 'device_type', kind: 'enum', enumValues: DEVICE_TYPES },
  enrollmentProfileName: { column: 'enrollment_profile_name', kind: 'string', maxLength: NAME, caseInsensitive: true, filterOps: EQ },
  enrolledByUserPrincipalName: { column: 'enrolled_by_user_principal_name', kind: 'string', maxLength: NAME, caseInsensitive: true, filterOps: EQ },
  autopilotEnrolled: { column: 'autopilot_enrolled', kind: 'boolean' },
  notes: { column: 'notes', kind: 'string', maxLength: 1024, filterOps: [], sortable: false },
  managedDeviceName: { column: 'managed_device_name', kind: 'string', maxLength: NAME, caseInsensitive: true, filterOps: TEXT_SEARCH },
} as const satisfies Record<string, Field>;

type FieldName = keyof typeof DEVICE_FIELDS;
const FIELD_NAMES = Object.keys(DEVICE_FIELDS) as FieldName[];
const field = (name: FieldName): Field => DEVICE_FIELDS[name];

/** Graph's managedDevice as we return it. */
export interface ManagedDevice {
  id: string;
  userId: string | null;
  deviceName: string | null;
  managedDeviceName: string | null;
  managedDeviceOwnerType: string;
  ownerType: string;
  enrolledDateTime: string;
  lastSyncDateTime: string;
  operatingSystem: string | null;
  complianceState: string;
  managementAgent: string;
  osVersion: string | null;
  deviceEnrollmentType: string;
  emailAddress: string | null;
  azureADDeviceId: string | null;
  azureActiveDirectoryDeviceId: string | null;
  deviceRegistrationState: string;
  deviceCategoryDisplayName: string | null;
  isSupervised: boolean;
  isEncrypted: boolean;
  userPrincipalName: string | null;
  model: string | null;
  manufacturer: string | null;
  imei: string | null;
  meid: string | null;
  udid: string | null;
  serialNumber: string | null;
  phoneNumber: string | null;
  wiFiMacAddress: string | null;
  userDisplayName: string | null;
  managementCertificateExpirationDate: string | null;
  joinType: string;
  managementState: string;
  deviceType: string;
  enrollmentProfileName: string | null;
  enrolledByUserPrincipalName: string | null;
  autopilotEnrolled: boolean;
  notes: string | null;
  roleScopeTagIds: string[];
}

export function toManagedDevice(row: ManagedDevicesTable, roleScopeTagIds: readonly string[]): ManagedDevice {
  const out: Record<string, unknown> = { id: row.id };
  for (const name of FIELD_NAMES) {
    const f = field(name);
    const v = row[f.column];
    out[name] = f.kind === 'boolean' ? v === 1 : v;
  }
  out.ownerType = row.managed_device_owner_type === SENTINEL ? 'unknown' : row.managed_device_owner_type;
  out.azureActiveDirectoryDeviceId = row.azure_ad_device_id;
  out.roleScopeTagIds = [...roleScopeTagIds];
  return out as unknown as ManagedDevice;
}

function propertyDef(f: Field): PropertyDef {
  const def: PropertyDef = { type: f.kind === 'enum' ? 'enum' : f.kind, column: f.column };
  if (f.enumValues) def.enumValues = f.enumValues;
  if (f.caseInsensitive) def.caseInsensitive = true;
  if (f.filterOps) def.filterOps = f.filterOps;
  if (f.sortable === false) def.sortable = false;
  return def;
}

export const managedDeviceModel: EntityModel = {
  typeName: MANAGED_DEVICE_TYPE,
  keyColumn: 'managed_devices.id',
  properties: {
    id: { type: 'string', column: 'managed_devices.id', filterOps: EQ },
    ...Object.fromEntries(FIELD_NAMES.map((n) => [n, propertyDef(field(n))])),
    ownerType: { type: 'enum', column: 'managed_device_owner_type', enumValues: ['unknown', 'company', 'personal'] },
    azureActiveDirectoryDeviceId: propertyDef(field('azureADDeviceId')),
    roleScopeTagIds: { type: 'collection' },
  },
  // Intune pages managedDevices by 1000.
  defaultPageSize: 1000,
};

// ---- enrollment input ----

/** What enrollment code knows about a device. Absent properties are left as they are. */
export interface DeviceInput {
  /** Our id; a new GUID when absent. */
  id?: string;
  /** The enrollment's own id (Windows/Apple User Enrollment EnrollmentID); an identity like udid. */
  enrollmentId?: string | null;
  deviceName?: string | null;
  managedDeviceName?: string | null;
  serialNumber?: string | null;
  imei?: string | null;
  meid?: string | null;
  udid?: string | null;
  azureADDeviceId?: string | null;
  operatingSystem?: string | null;
  osVersion?: string | null;
  model?: string | null;
  manufacturer?: string | null;
  deviceType?: DeviceType;
  managedDeviceOwnerType?: ManagedDeviceOwnerType;
  deviceEnrollmentType?: DeviceEnrollmentType;
  deviceRegistrationState?: DeviceRegistrationState;
  managementState?: ManagementState;
  managementAgent?: ManagementAgentType;
  complianceState?: ComplianceState;
  joinType?: JoinType;
  enrollmentProfileName?: string | null;
  deviceCategoryId?: string | null;
  deviceCategoryDisplayName?: string | null;
  userId?: string | null;
  userPrincipalName?: string | null;
  userDisplayName?: string | null;
  emailAddress?: string | null;
  enrolledByUserPrincipalName?: string | null;
  isSupervised?: boolean;
  isEncrypted?: boolean;
  autopilotEnrolled?: boolean;
  wiFiMacAddress?: string | null;
  phoneNumber?: string | null;
  notes?: string | null;
  /** Defaults to now on creation. */
  enrolledDateTime?: string;
  /** Defaults to now on every upsert. */
  lastSyncDateTime?: string;
  managementCertificateExpirationDate?: string | null;
  /** Scope tags (e.g. inherited from an enrollment token); Default on creation when absent. */
  roleScopeTagIds?: readonly string[];
}

/** Identities a device is found by, most specific first. */
export const IDENTITY_COLUMNS = [
  ['enrollmentId', 'enrollment_id'],
  ['udid', 'udid'],
  ['imei', 'imei'],
  ['serialNumber', 'serial_number'],
] as const;

/** Placeholders devices report when they can't or won't tell; matching on them would merge devices. */
const PLACEHOLDER_IDENTITIES = new Set(['', 'unknown', 'null', 'none', '0', '000000000000000', 'default string', 'to be filled by o.e.m.', 'system serial number']);

/** Pure: a usable identity value, or undefined for absent/placeholder values. */
export function identityValue(v: string | null | undefined): string | undefined {
  if (v === undefined || v === null) return undefined;
  const t = v.trim();
  return PLACEHOLDER_IDENTITIES.has(t.toLowerCase()) ? undefined : t;
}

function isoDate(property: string, v: unknown): string {
  if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}T/.test(v) || Number.isNaN(Date.parse(v))) {
    throw invalidProperty(property, 'expected an ISO-8601 date and time.');
  }
  return new Date(v).toISOString();
}

function checkEnum(property: string, values: readonly string[], v: unknown): string {
  if (typeof v !== 'string' || v === SENTINEL || !values.includes(v)) {
    throw invalidProperty(property, `must be one of ${values.filter((m) => m !== SENTINEL).map((m) => `'${m}'`).join(', ')}.`);
  }
  return v;
}

function checkString(property: string, maxLength: number, v: unknown): string | null {
  if (v === null) return null;
  if (typeof v !== 'string') throw invalidProperty(property, 'must be a string.');
  if (v.length > maxLength) throw invalidProperty(property, `must be at most ${maxLength} characters.`);
  return v;
}

/**
 * Pure: validates enrollment input and maps it to column values (only the properties given).
 * Throws a 400 naming the property; enrollment code reports it as its own failure.
 */
export function inputToColumns(input: DeviceInput): Partial<ManagedDevicesTable> {
  const out: Record<string, unknown> = {};
  const src = input as Record<string, unknown>;
  for (const name of FIELD_NAMES) {
    const v = src[name];
    if (v === undefined) continue;
    const f = field(name);
    switch (f.kind) {
      case 'enum':
        out[f.column] = checkEnum(name, f.enumValues ?? [], v);
        break;
      case 'boolean':
        if (typeof v !== 'boolean') throw invalidProperty(name, 'must be true or false.');
        out[f.column] = v ? 1 : 0;
        break;
      case 'datetime':
        if (v === null && name === 'managementCertificateExpirationDate') out[f.column] = null;
        else out[f.column] = isoDate(name, v);
        break;
      case 'string':
        out[f.column] = checkString(name, f.maxLength ?? NAME, v);
        break;
    }
  }
  if (input.enrollmentId !== undefined) out.enrollment_id = checkString('enrollmentId', ID, input.enrollmentId);
  if (input.deviceCategoryId !== undefined) out.device_category_id = checkString('deviceCategoryId', ID, input.deviceCategoryId);
  for (const [, col] of IDENTITY_COLUMNS) {
    // Placeholders are stored as null so they never match another device later.
    if (typeof out[col] === 'string') out[col] = identityValue(out[col] as string) ?? null;
  }
  return out as Partial<ManagedDevicesTable>;
}

/**
 * Pure: Intune keeps only the last four digits of a personal device's phone number.
 * Idempotent: digits already hidden stay '*'.
 */
export function partialPhoneNumber(phone: string | null): string | null {
  if (phone === null) return null;
  const chars = phone.replace(/[^\d*]/g, '');
  let keep = 4;
  let out = '';
  for (let i = chars.length - 1; i >= 0; i--) {
    const c = chars[i]!;
    if (c !== '*' && keep > 0) {
      out = c + out;
      keep--;
    } else {
      out = '*' + out;
    }
  }
  return out;
}

/** Pure: phone numbers of personal devices are kept partial. */
export function applyOwnershipPrivacy<T extends Pick<ManagedDevicesTable, 'managed_device_owner_type' | 'phone_number'>>(row: T): T {
  if (row.managed_device_owner_type !== 'personal' || row.phone_number === null) return row;
  return { ...row, phone_number: partialPhoneNumber(row.phone_number) };
}

/**
 * Pure: the name Intune generates for a new device, `{user}_{deviceType}_{M/D/YYYY}_{h:mm AM}`
 * (user omitted for userless devices), in UTC.
 */
export function generatedManagedDeviceName(row: Pick<ManagedDevicesTable, 'user_principal_name' | 'device_type' | 'enrolled_date_time'>): string {
  const d = new Date(row.enrolled_date_time);
  const h = d.getUTCHours();
  const time = `${h % 12 === 0 ? 12 : h % 12}:${String(d.getUTCMinutes()).padStart(2, '0')} ${h < 12 ? 'AM' : 'PM'}`;
  const date = `${d.getUTCMonth() + 1}/${d.getUTCDate()}/${d.getUTCFullYear()}`;
  const user = row.user_principal_name?.split('@')[0];
  return [user, row.device_type, date, time].filter((s) => s).join('_');
}

// ---- admin PATCH ----

export interface DevicePatch {
  /** null: back to the generated name. */
  managedDeviceName?: string | null;
  notes?: string | null;
  managedDeviceOwnerType?: 'company' | 'personal';
  roleScopeTagIds?: string[];
}

/** Properties an admin may change (plus the alias ownerType). */
export const WRITABLE_PROPERTIES = ['managedDeviceName', 'notes', 'managedDeviceOwnerType', 'roleScopeTagIds'] as const;

const READ_ONLY = new Set<string>([
  ...FIELD_NAMES.filter((n) => !(WRITABLE_PROPERTIES as readonly string[]).includes(n)),
  'azureActiveDirectoryDeviceId',
  // Graph properties we don't hold, named so the message says read-only rather than unknown.
  'jailBroken',
  'aadRegistered',
  'azureADRegistered',
  'skuFamily',
  'requireUserEnrollmentApproval',
  'retireAfterDateTime',
  'deviceCategory',
  'users',
]);

/**
 * Pure: validates a PATCH body. Refuses read-only and unknown properties with a 400 naming them,
 * and an id that isn't the addressed device's.
 */
export function parseDevicePatch(body: unknown, id: string): DevicePatch {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('The request body must be a JSON object.');
  const src = body as Record<string, unknown>;
  const readOnly = Object.keys(src).filter((k) => READ_ONLY.has(k));
  if (readOnly.length > 0) {
    throw badRequest(
      `${readOnly.length === 1 ? 'Property' : 'Properties'} ${readOnly.map((k) => `'${k}'`).join(', ')} ${readOnly.length === 1 ? 'is' : 'are'} read-only and can't be changed.`,
      readOnly[0],
    );
  }
  const out: DevicePatch = {};
  for (const [k, v] of Object.entries(src)) {
    switch (k) {
      case '@odata.type':
        if (typeof v !== 'string' || v.replace(/^#/, '') !== MANAGED_DEVICE_TYPE) throw invalidProperty(k, `must be '#${MANAGED_DEVICE_TYPE}'.`);
        break;
      case 'id':
        if (v !== id) throw badRequest(`Property 'id' is read-only and can't be changed.`, 'id');
        break;
      case 'managedDeviceName': {
        const s = checkString(k, NAME, v);
        if (s !== null && s.trim() === '') throw invalidProperty(k, 'must not be empty.');
        out.managedDeviceName = s === null ? null : s.trim();
        break;
      }
      case 'notes':
        out.notes = checkString(k, field('notes').maxLength!, v);
        break;
      case 'managedDeviceOwnerType':
      case 'ownerType': {
        if (v !== 'company' && v !== 'personal') throw invalidProperty(k, "must be 'company' or 'personal'.");
        if (out.managedDeviceOwnerType !== undefined && out.managedDeviceOwnerType !== v) {
          throw badRequest("'ownerType' and 'managedDeviceOwnerType' disagree.", k);
        }
        out.managedDeviceOwnerType = v;
        break;
      }
      case 'roleScopeTagIds': {
        if (!Array.isArray(v) || v.length > 100 || v.some((t) => typeof t !== 'string' || t.length === 0 || t.length > 64)) {
          throw invalidProperty(k, 'must be an array of at most 100 scope tag ids.');
        }
        out.roleScopeTagIds = [...new Set(v as string[])];
        break;
      }
      default:
        throw badRequest(`Property '${k}' is not a known property of '${MANAGED_DEVICE_TYPE}'.`, k);
    }
  }
  return out;
}

// The scope-tag rules every object type shares live with the mechanism.
export { compareTagIds, mergeScopeTags } from '../auth/scope-tags.js';
