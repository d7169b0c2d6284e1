import crypto from 'node:crypto';
import { badRequest, invalidProperty } from '../../graph/errors.js';
import type { ApiVersion } from '../../graph/http.js';
import type { EnrollmentConfigurationAssignmentsTable, EnrollmentConfigurationsTable } from '../../store/schema.js';
import type { RestrictionPlatform } from '../evaluation/types.js';
import { compareVersions, parseRestrictionVersion, type OsVersion } from '../evaluation/versions.js';

/**
 * Graph shapes of enrollment restrictions (deviceEnrollmentConfiguration subtypes) and their
 * assignments, the tenant defaults, and the pure validation of what admins send. No I/O.
 */

export const CONFIGURATION_OBJECT = 'deviceEnrollmentConfiguration';
export const CONFIGURATION_BASE_TYPE = 'microsoft.graph.deviceEnrollmentConfiguration';
export const ASSIGNMENT_TYPE = 'microsoft.graph.enrollmentConfigurationAssignment';

export const CONFIGURATION_TYPES = {
  limit: 'microsoft.graph.deviceEnrollmentLimitConfiguration',
  platformRestrictions: 'microsoft.graph.deviceEnrollmentPlatformRestrictionsConfiguration',
  singlePlatformRestriction: 'microsoft.graph.deviceEnrollmentPlatformRestrictionConfiguration',
} as const;
export type ConfigurationKind = keyof typeof CONFIGURATION_TYPES;

/** Graph deviceEnrollmentConfigurationType (§14), for $filter. */
export const CONFIGURATION_TYPE_VALUES = [
  'unknown',
  'limit',
  'platformRestrictions',
  'windowsHelloForBusiness',
  'defaultLimit',
  'defaultPlatformRestrictions',
  'defaultWindowsHelloForBusiness',
  'defaultWindows10EnrollmentCompletionPageConfiguration',
  'windows10EnrollmentCompletionPageConfiguration',
  'deviceComanagementAuthorityConfiguration',
  'singlePlatformRestriction',
  'unknownFutureValue',
  'enrollmentNotificationsConfiguration',
  'windowsRestore',
] as const;

/** Graph enrollmentRestrictionPlatformType (§14). */
export const PLATFORM_TYPE_VALUES = ['allPlatforms', 'ios', 'windows', 'windowsPhone', 'android', 'androidForWork', 'mac', 'linux', 'unknownFutureValue'] as const;

/** Platforms a single-platform restriction can be created for: the admin centre's tabs. */
export const CREATABLE_PLATFORMS = ['ios', 'mac', 'windows', 'android', 'androidForWork'] as const;
export type CreatablePlatform = (typeof CREATABLE_PLATFORMS)[number];

export const MAX_LIMIT = 15;
export const MIN_LIMIT = 1;
export const DEFAULT_LIMIT = 5;
export const DEFAULT_DISPLAY_NAME = 'All users and all devices';
/** Intune's default objects carry this creation time. */
export const DEFAULT_CREATED = '0001-01-01T00:00:00.000Z';
export const MAX_ASSIGNMENTS = 100;
const NAME_MAX = 256;
const DESCRIPTION_MAX = 1024;
const MANUFACTURERS_MAX = 100;
const MANUFACTURER_MAX = 128;

/** Entra's well-known virtual group ids, which Intune uses in assignment ids. */
export const ALL_USERS_VIRTUAL_GROUP = 'acacacac-9df4-4c7d-9d50-4ef0226f57a9';

export const DEFAULT_DESCRIPTIONS: Readonly<Record<'limit' | 'platformRestrictions', string>> = {
  limit: 'This is the default Device Limit Restriction applied with the lowest priority to all users regardless of group membership.',
  platformRestrictions: 'This is the default Device Type Restriction applied with the lowest priority to all users regardless of group membership.',
};

export const defaultLimitId = (tenantId: string) => `${tenantId}_DefaultLimit`;
export const defaultPlatformId = (tenantId: string) => `${tenantId}_DefaultPlatformRestrictions`;
export const newConfigurationId = (kind: 'limit' | 'singlePlatformRestriction') =>
  `${crypto.randomUUID()}_${kind === 'limit' ? 'Limit' : 'SinglePlatformRestriction'}`;

/** The priority list a policy is ordered in. Platform restrictions are ordered per platform, like the admin centre's tabs. */
export const LIMIT_LIST = 'limit';
export const DEFAULT_PLATFORM_LIST = 'platform:*';
export const platformList = (platform: string) => `platform:${platform}`;

// ---- platform restrictions ----

export interface StoredRestriction {
  platformBlocked: boolean;
  personalDeviceEnrollmentBlocked: boolean;
  /** '' or null: no bound (Intune returns '' on older platforms and null on newer ones). */
  osMinimumVersion: string | null;
  osMaximumVersion: string | null;
  blockedManufacturers: string[];
  blockedSkus: string[];
}

interface RestrictionSpec {
  label: string;
  /** The platform whose version format OS bounds use; null when bounds don't apply (macOS, -E §5.1) or aren't enforced. */
  versions: RestrictionPlatform | null;
  /** Segments a bound must have (Windows bounds are full build strings). */
  exactSegments?: number;
  /** The manufacturer block list is Android only. */
  manufacturers: boolean;
}

export const PLATFORM_SPECS: Readonly<Record<CreatablePlatform, RestrictionSpec>> = {
  ios: { label: 'iOS/iPadOS', versions: 'ios', manufacturers: false },
  mac: { label: 'macOS', versions: null, manufacturers: false },
  // A partial Windows bound ("10.0") would match every build; admins mean a build string.
  windows: { label: 'Windows', versions: 'windows', exactSegments: 4, manufacturers: false },
  android: { label: 'Android device administrator', versions: 'android', manufacturers: true },
  androidForWork: { label: 'Android Enterprise work profile', versions: 'android', manufacturers: true },
};

const LEGACY_ONLY: RestrictionSpec = { label: '', versions: null, manufacturers: false };

export interface DefaultRestrictionProperty {
  property: string;
  /** The engine's platform this entry governs; null for entries kept only for Graph compatibility. */
  platform: 'ios' | 'mac' | 'windows' | 'windowsPhone' | 'android' | 'androidForWork' | null;
  spec: RestrictionSpec;
  /** How "no bound" looks on a fresh default (Intune: '' on older platforms, null on newer). */
  emptyVersion: '' | null;
  blockedByDefault: boolean;
  inV1: boolean;
}

/** The legacy all-platform default's properties, in the order Graph returns them. */
export const DEFAULT_RESTRICTION_PROPERTIES: readonly DefaultRestrictionProperty[] = [
  { property: 'iosRestriction', platform: 'ios', spec: PLATFORM_SPECS.ios, emptyVersion: '', blockedByDefault: false, inV1: true },
  { property: 'windowsRestriction', platform: 'windows', spec: PLATFORM_SPECS.windows, emptyVersion: '', blockedByDefault: false, inV1: true },
  { property: 'windowsHomeSkuRestriction', platform: null, spec: { ...LEGACY_ONLY, label: 'Windows Home SKU' }, emptyVersion: null, blockedByDefault: false, inV1: false },
  // Windows Mobile is retired: blocked by default, as in Intune.
  { property: 'windowsMobileRestriction', platform: 'windowsPhone', spec: { ...LEGACY_ONLY, label: 'Windows Mobile' }, emptyVersion: '', blockedByDefault: true, inV1: true },
  { property: 'androidRestriction', platform: 'android', spec: PLATFORM_SPECS.android, emptyVersion: '', blockedByDefault: false, inV1: true },
  { property: 'androidForWorkRestriction', platform: 'androidForWork', spec: PLATFORM_SPECS.androidForWork, emptyVersion: '', blockedByDefault: false, inV1: false },
  // macRestriction and macOSRestriction both name macOS; they are kept equal (see parseDefaultRestrictions).
  { property: 'macRestriction', platform: null, spec: PLATFORM_SPECS.mac, emptyVersion: '', blockedByDefault: false, inV1: false },
  { property: 'macOSRestriction', platform: 'mac', spec: PLATFORM_SPECS.mac, emptyVersion: null, blockedByDefault: false, inV1: true },
  { property: 'tvosRestriction', platform: null, spec: { ...LEGACY_ONLY, label: 'tvOS' }, emptyVersion: null, blockedByDefault: false, inV1: false },
  { property: 'visionOSRestriction', platform: null, spec: { ...LEGACY_ONLY, label: 'visionOS' }, emptyVersion: null, blockedByDefault: false, inV1: false },
];
const DEFAULT_PROPERTY = new Map(DEFAULT_RESTRICTION_PROPERTIES.map((p) => [p.property, p]));
const MAC_ALIASES = ['macRestriction', 'macOSRestriction'] as const;

export function emptyRestriction(emptyVersion: '' | null = null, blocked = false): StoredRestriction {
  return {
    platformBlocked: blocked,
    personalDeviceEnrollmentBlocked: false,
    osMinimumVersion: emptyVersion,
    osMaximumVersion: emptyVersion,
    blockedManufacturers: [],
    blockedSkus: [],
  };
}

export type DefaultRestrictions = Record<string, StoredRestriction>;

export function defaultRestrictions(): DefaultRestrictions {
  return Object.fromEntries(DEFAULT_RESTRICTION_PROPERTIES.map((p) => [p.property, emptyRestriction(p.emptyVersion, p.blockedByDefault)]));
}

/** The tenant's two default policies, as rows (priority 0, tag Default). */
export function defaultConfigurationRows(tenantId: string): EnrollmentConfigurationsTable[] {
  const common = { tenant_id: tenantId, is_default: 1, display_name: DEFAULT_DISPLAY_NAME, priority: 0, version: 0, created_at: DEFAULT_CREATED, updated_at: DEFAULT_CREATED };
  return [
    {
      ...common,
      id: defaultPlatformId(tenantId),
      configuration_type: 'platformRestrictions',
      priority_list: DEFAULT_PLATFORM_LIST,
      platform_type: null,
      description: DEFAULT_DESCRIPTIONS.platformRestrictions,
      device_limit: null,
      settings: JSON.stringify(defaultRestrictions()),
    },
    {
      ...common,
      id: defaultLimitId(tenantId),
      configuration_type: 'limit',
      priority_list: LIMIT_LIST,
      platform_type: null,
      description: DEFAULT_DESCRIPTIONS.limit,
      device_limit: DEFAULT_LIMIT,
      settings: '{}',
    },
  ];
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function checkODataType(property: string, v: unknown, typeName: string): void {
  if (typeof v !== 'string' || v.replace(/^#/, '') !== typeName) throw invalidProperty(property, `must be '#${typeName}'.`);
}

function parseBound(spec: RestrictionSpec, text: string): { version: OsVersion } | { error: string } {
  if (spec.versions === null) return { error: `OS version bounds don't apply to ${spec.label} enrollment restrictions; leave it empty` };
  const parsed = parseRestrictionVersion(text, spec.versions);
  if ('version' in parsed && spec.exactSegments !== undefined && parsed.version.length !== spec.exactSegments) {
    return { error: `'${text}' is not a full ${spec.label} build; use major.minor.build.rev, e.g. 10.0.19045.0` };
  }
  return parsed;
}

function versionBound(path: string, name: 'osMinimumVersion' | 'osMaximumVersion', v: unknown, spec: RestrictionSpec): string | null {
  if (v === null) return null;
  if (typeof v !== 'string') throw invalidProperty(`${path}.${name}`, 'must be a string or null.');
  const t = v.trim();
  if (t === '') return '';
  const parsed = parseBound(spec, t);
  if ('error' in parsed) throw invalidProperty(`${path}.${name}`, `${parsed.error}.`);
  return t;
}

function manufacturers(path: string, v: unknown, spec: RestrictionSpec): string[] {
  if (v === null) return [];
  if (!Array.isArray(v) || v.some((m) => typeof m !== 'string')) throw invalidProperty(`${path}.blockedManufacturers`, 'must be an array of strings.');
  // The admin centre takes a comma-separated list; split, trim, and keep each name once (ignoring case).
  const seen = new Set<string>();
  const out: string[] = [];
  for (const name of (v as string[]).flatMap((m) => m.split(','))) {
    const t = name.trim();
    if (t === '' || seen.has(t.toLowerCase())) continue;
    if (t.length > MANUFACTURER_MAX) throw invalidProperty(`${path}.blockedManufacturers`, `manufacturer names are at most ${MANUFACTURER_MAX} characters.`);
    seen.add(t.toLowerCase());
    out.push(t);
  }
  if (out.length > MANUFACTURERS_MAX) throw invalidProperty(`${path}.blockedManufacturers`, `at most ${MANUFACTURERS_MAX} manufacturers.`);
  if (out.length > 0 && !spec.manufacturers) {
    throw invalidProperty(`${path}.blockedManufacturers`, `the manufacturer block list applies to Android restrictions only, not ${spec.label}.`);
  }
  return out;
}

/**
 * Pure: a deviceEnrollmentPlatformRestriction from a request, merged over `base` (properties left
 * out keep their value). Refuses what doesn't apply to the platform, naming the property.
 */
export function parseRestriction(path: string, v: unknown, spec: RestrictionSpec, base: StoredRestriction): StoredRestriction {
  if (!isObject(v)) throw invalidProperty(path, 'must be a deviceEnrollmentPlatformRestriction object.');
  const out: StoredRestriction = { ...base, blockedManufacturers: [...base.blockedManufacturers], blockedSkus: [...base.blockedSkus] };
  for (const [k, value] of Object.entries(v)) {
    switch (k) {
      case '@odata.type':
        checkODataType(`${path}.@odata.type`, value, 'microsoft.graph.deviceEnrollmentPlatformRestriction');
        break;
      case 'platformBlocked':
      case 'personalDeviceEnrollmentBlocked':
        if (typeof value !== 'boolean') throw invalidProperty(`${path}.${k}`, 'must be true or false.');
        out[k] = value;
        break;
      case 'osMinimumVersion':
      case 'osMaximumVersion':
        out[k] = versionBound(path, k, value, spec);
        break;
      case 'blockedManufacturers':
        out.blockedManufacturers = manufacturers(path, value, spec);
        break;
      case 'blockedSkus':
        if (value !== null && (!Array.isArray(value) || value.length > 0)) {
          throw invalidProperty(`${path}.blockedSkus`, 'SKU block lists are not supported; use an assignment filter on operatingSystemSKU.');
        }
        out.blockedSkus = [];
        break;
      default:
        throw badRequest(`Property '${path}.${k}' is not a known property of 'microsoft.graph.deviceEnrollmentPlatformRestriction'.`, `${path}.${k}`);
    }
  }
  if (out.osMinimumVersion && out.osMaximumVersion) {
    const min = parseBound(spec, out.osMinimumVersion);
    const max = parseBound(spec, out.osMaximumVersion);
    if ('version' in min && 'version' in max && compareVersions(min.version, max.version) > 0) {
      throw invalidProperty(`${path}.osMaximumVersion`, `'${out.osMaximumVersion}' is lower than osMinimumVersion '${out.osMinimumVersion}'.`);
    }
  }
  return out;
}

/** Pure: applies the default policy's per-platform properties from a PATCH body. */
export function parseDefaultRestrictions(src: Record<string, unknown>, current: DefaultRestrictions, version: ApiVersion): DefaultRestrictions {
  const out: DefaultRestrictions = { ...current };
  for (const p of DEFAULT_RESTRICTION_PROPERTIES) {
    if (src[p.property] === undefined) continue;
    if (version === 'v1.0' && !p.inV1) continue; // refused by the caller as unknown
    out[p.property] = parseRestriction(p.property, src[p.property], p.spec, current[p.property] ?? emptyRestriction(p.emptyVersion));
  }
  // Both properties name macOS; keep them equal so the one the engine reads is the one the admin set.
  const given = MAC_ALIASES.filter((a) => src[a] !== undefined);
  if (given.length === 2) {
    const [a, b] = [out.macRestriction!, out.macOSRestriction!];
    if (a.platformBlocked !== b.platformBlocked || a.personalDeviceEnrollmentBlocked !== b.personalDeviceEnrollmentBlocked) {
      throw badRequest("'macRestriction' and 'macOSRestriction' both describe macOS and disagree.", 'macOSRestriction');
    }
  } else if (given.length === 1) {
    const from = out[given[0]!]!;
    const other = given[0] === 'macRestriction' ? 'macOSRestriction' : 'macRestriction';
    out[other] = { ...out[other]!, platformBlocked: from.platformBlocked, personalDeviceEnrollmentBlocked: from.personalDeviceEnrollmentBlocked };
  }
  return out;
}

// ---- create and patch bodies ----

export type CreateConfigurationInput =
  | { kind: 'limit'; displayName: string; description: string | null; roleScopeTagIds?: string[]; limit: number }
  | {
      kind: 'singlePlatformRestriction';
      displayName: string;
      description: string | null;
      roleScopeTagIds?: string[];
      platformType: CreatablePlatform;
      restriction: StoredRestriction;
    };

/** Properties the service sets; a request may repeat them (backup tools send whole objects) but can't set them. */
const SERVER_SET = new Set(['id', 'createdDateTime', 'lastModifiedDateTime', 'version', 'priority']);

function displayName(v: unknown): string {
  if (typeof v !== 'string' || v.trim() === '') throw invalidProperty('displayName', 'must be a non-empty string.');
  if (v.trim().length > NAME_MAX) throw invalidProperty('displayName', `must be at most ${NAME_MAX} characters.`);
  return v.trim();
}

function description(v: unknown): string | null {
  if (v === null) return null;
  if (typeof v !== 'string') throw invalidProperty('description', 'must be a string or null.');
  if (v.length > DESCRIPTION_MAX) throw invalidProperty('description', `must be at most ${DESCRIPTION_MAX} characters.`);
  return v;
}

export function parseTagIds(v: unknown): string[] {
  if (!Array.isArray(v) || v.length > 100 || v.some((t) => typeof t !== 'string' || t.length === 0 || t.length > 64)) {
    throw invalidProperty('roleScopeTagIds', 'must be an array of at most 100 scope tag ids.');
  }
  return [...new Set(v as string[])];
}

function limitValue(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < MIN_LIMIT || v > MAX_LIMIT) {
    throw invalidProperty('limit', `must be a whole number from ${MIN_LIMIT} to ${MAX_LIMIT}.`);
  }
  return v;
}

function kindOfType(v: unknown): ConfigurationKind | undefined {
  if (typeof v !== 'string') return undefined;
  const name = v.replace(/^#/, '');
  return (Object.keys(CONFIGURATION_TYPES) as ConfigurationKind[]).find((k) => CONFIGURATION_TYPES[k] === name);
}

const unknownProperty = (k: string, typeName: string) => badRequest(`Property '${k}' is not a known property of '${typeName}'.`, k);

/** Pure: validates a POST body. The @odata.type picks the subtype. */
export function parseCreateConfiguration(body: unknown, version: ApiVersion): CreateConfigurationInput {
  if (!isObject(body)) throw badRequest('The request body must be a JSON object.');
  const typeRaw = body['@odata.type'];
  if (typeRaw === undefined) {
    throw badRequest(
      `Property '@odata.type' is required: '#${CONFIGURATION_TYPES.singlePlatformRestriction}' or '#${CONFIGURATION_TYPES.limit}'.`,
      '@odata.type',
    );
  }
  const kind = kindOfType(typeRaw);
  if (kind === 'platformRestrictions') {
    throw badRequest(
      `New '${CONFIGURATION_TYPES.platformRestrictions}' policies can't be created; only the tenant default is of that type. Create a '#${CONFIGURATION_TYPES.singlePlatformRestriction}' per platform instead.`,
      '@odata.type',
    );
  }
  if (kind === undefined) {
    throw invalidProperty('@odata.type', `'${String(typeRaw)}' can't be created here; use '#${CONFIGURATION_TYPES.singlePlatformRestriction}' or '#${CONFIGURATION_TYPES.limit}'.`);
  }
  if (kind === 'singlePlatformRestriction' && version === 'v1.0') {
    throw invalidProperty('@odata.type', `'${CONFIGURATION_TYPES.singlePlatformRestriction}' is not part of Graph v1.0; use /beta.`);
  }
  const typeName = CONFIGURATION_TYPES[kind];
  let name: string | undefined;
  let desc: string | null = null;
  let tags: string[] | undefined;
  let limit: number | undefined;
  let platformType: CreatablePlatform | undefined;
  let restrictionRaw: unknown;
  for (const [k, v] of Object.entries(body)) {
    if (k === '@odata.type' || SERVER_SET.has(k)) continue;
    switch (k) {
      case 'displayName':
        name = displayName(v);
        break;
      case 'description':
        desc = description(v);
        break;
      case 'roleScopeTagIds':
        if (version === 'v1.0') throw unknownProperty(k, typeName);
        tags = parseTagIds(v);
        break;
      case 'deviceEnrollmentConfigurationType':
        if (version === 'v1.0') throw unknownProperty(k, typeName);
        if (v !== kind) throw invalidProperty(k, `must be '${kind}' for '${typeName}'.`);
        break;
      case 'limit':
        if (kind !== 'limit') throw unknownProperty(k, typeName);
        limit = limitValue(v);
        break;
      case 'platformType':
        if (kind !== 'singlePlatformRestriction') throw unknownProperty(k, typeName);
        if (typeof v !== 'string' || !(CREATABLE_PLATFORMS as readonly string[]).includes(v)) {
          throw invalidProperty(k, `must be one of ${CREATABLE_PLATFORMS.map((p) => `'${p}'`).join(', ')}.`);
        }
        platformType = v as CreatablePlatform;
        break;
      case 'platformRestriction':
        if (kind !== 'singlePlatformRestriction') throw unknownProperty(k, typeName);
        restrictionRaw = v;
        break;
      case 'assignments':
        throw badRequest("Property 'assignments' can't be set on creation; use the assign action.", k);
      default:
        throw unknownProperty(k, typeName);
    }
  }
  if (name === undefined) throw badRequest("Property 'displayName' is required.", 'displayName');
  const common = { displayName: name, description: desc, ...(tags ? { roleScopeTagIds: tags } : {}) };
  if (kind === 'limit') {
    if (limit === undefined) throw badRequest(`Property 'limit' is required (${MIN_LIMIT} to ${MAX_LIMIT}).`, 'limit');
    return { kind, ...common, limit };
  }
  if (platformType === undefined) throw badRequest("Property 'platformType' is required.", 'platformType');
  const spec = PLATFORM_SPECS[platformType];
  const restriction =
    restrictionRaw === undefined || restrictionRaw === null
      ? emptyRestriction(null)
      : parseRestriction('platformRestriction', restrictionRaw, spec, emptyRestriction(null));
  return { kind, ...common, platformType, restriction };
}

export interface ConfigurationPatch {
  columns: Partial<Pick<EnrollmentConfigurationsTable, 'display_name' | 'description' | 'device_limit' | 'settings'>>;
  roleScopeTagIds?: string[];
}

/**
 * Pure: validates a PATCH body against the stored row. Read-only properties may be repeated with
 * their current value (clients PATCH whole objects) but not changed.
 */
export function parsePatchConfiguration(body: unknown, row: EnrollmentConfigurationsTable, version: ApiVersion): ConfigurationPatch {
  if (!isObject(body)) throw badRequest('The request body must be a JSON object.');
  const kind = row.configuration_type as ConfigurationKind;
  const typeName = CONFIGURATION_TYPES[kind];
  const isDefault = row.is_default === 1;
  const out: ConfigurationPatch = { columns: {} };
  const readOnly = (k: string, current: unknown, v: unknown) => {
    if (v !== current) throw badRequest(`Property '${k}' is read-only and can't be changed${k === 'priority' ? '; use the setPriority action' : ''}.`, k);
  };
  const defaultTouched = Object.keys(body).some((k) => DEFAULT_PROPERTY.has(k));
  for (const [k, v] of Object.entries(body)) {
    switch (k) {
      case '@odata.type':
        checkODataType(k, v, typeName);
        break;
      case 'id':
        readOnly(k, row.id, v);
        break;
      case 'priority':
        readOnly(k, row.priority, v);
        break;
      case 'version':
        readOnly(k, row.version, v);
        break;
      case 'createdDateTime':
      case 'lastModifiedDateTime': {
        const current = k === 'createdDateTime' ? row.created_at : row.updated_at;
        if (typeof v !== 'string' || Date.parse(v) !== Date.parse(current)) readOnly(k, current, v);
        break;
      }
      case 'deviceEnrollmentConfigurationType':
        if (version === 'v1.0') throw unknownProperty(k, typeName);
        readOnly(k, row.configuration_type, v);
        break;
      case 'platformType':
        if (kind !== 'singlePlatformRestriction') throw unknownProperty(k, typeName);
        if (v !== row.platform_type) throw badRequest("Property 'platformType' can't be changed; create a restriction for the other platform.", k);
        break;
      case 'displayName': {
        const name = displayName(v);
        if (isDefault && name !== row.display_name) throw badRequest("The default policy's name can't be changed.", k);
        out.columns.display_name = name;
        break;
      }
      case 'description': {
        const d = description(v);
        if (isDefault && d !== row.description) throw badRequest("The default policy's description can't be changed.", k);
        out.columns.description = d;
        break;
      }
      case 'roleScopeTagIds':
        if (version === 'v1.0') throw unknownProperty(k, typeName);
        out.roleScopeTagIds = parseTagIds(v);
        break;
      case 'limit':
        if (kind !== 'limit') throw unknownProperty(k, typeName);
        out.columns.device_limit = limitValue(v);
        break;
      case 'platformRestriction': {
        if (kind !== 'singlePlatformRestriction') throw unknownProperty(k, typeName);
        const spec = PLATFORM_SPECS[row.platform_type as CreatablePlatform];
        out.columns.settings = JSON.stringify(parseRestriction(k, v, spec, JSON.parse(row.settings) as StoredRestriction));
        break;
      }
      case 'assignments':
        throw badRequest("Property 'assignments' can't be changed with PATCH; use the assign action.", k);
      default: {
        const p = DEFAULT_PROPERTY.get(k);
        if (!p || kind !== 'platformRestrictions' || (version === 'v1.0' && !p.inV1)) throw unknownProperty(k, typeName);
      }
    }
  }
  if (defaultTouched && kind === 'platformRestrictions') {
    out.columns.settings = JSON.stringify(parseDefaultRestrictions(body, JSON.parse(row.settings) as DefaultRestrictions, version));
  }
  return out;
}

// ---- responses ----

function restrictionEntity(r: StoredRestriction): Record<string, unknown> {
  return {
    platformBlocked: r.platformBlocked,
    personalDeviceEnrollmentBlocked: r.personalDeviceEnrollmentBlocked,
    osMinimumVersion: r.osMinimumVersion,
    osMaximumVersion: r.osMaximumVersion,
    blockedManufacturers: [...r.blockedManufacturers],
    blockedSkus: [...r.blockedSkus],
  };
}

export const configurationTypeName = (row: Pick<EnrollmentConfigurationsTable, 'configuration_type'>) =>
  CONFIGURATION_TYPES[row.configuration_type as ConfigurationKind];

/** Graph's entity for a stored policy, without @odata.type/context (the routes add them). */
export function toConfigurationEntity(row: EnrollmentConfigurationsTable, tags: readonly string[], version: ApiVersion): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: row.id,
    displayName: row.display_name,
    description: row.description,
    priority: row.priority,
    createdDateTime: row.created_at,
    lastModifiedDateTime: row.updated_at,
    version: row.version,
  };
  if (version === 'beta') {
    out.roleScopeTagIds = [...tags];
    out.deviceEnrollmentConfigurationType = row.configuration_type;
  }
  switch (row.configuration_type as ConfigurationKind) {
    case 'limit':
      out.limit = row.device_limit;
      break;
    case 'singlePlatformRestriction':
      out.platformType = row.platform_type;
      out.platformRestriction = restrictionEntity(JSON.parse(row.settings) as StoredRestriction);
      break;
    case 'platformRestrictions': {
      const stored = JSON.parse(row.settings) as DefaultRestrictions;
      for (const p of DEFAULT_RESTRICTION_PROPERTIES) {
        if (version === 'v1.0' && !p.inV1) continue;
        out[p.property] = restrictionEntity(stored[p.property] ?? emptyRestriction(p.emptyVersion, p.blockedByDefault));
      }
      break;
    }
  }
  return out;
}

/** A snapshot for audit records. */
export const auditSnapshot = (row: EnrollmentConfigurationsTable, tags: readonly string[]) => toConfigurationEntity(row, tags, 'beta');

// ---- assignments ----

export const TARGET_TYPES = ['groupAssignmentTarget', 'exclusionGroupAssignmentTarget', 'allLicensedUsersAssignmentTarget'] as const;
export type TargetType = (typeof TARGET_TYPES)[number];
export type FilterMode = 'none' | 'include' | 'exclude';

export interface AssignmentInput {
  targetType: TargetType;
  groupId: string | null;
  filterId: string | null;
  filterType: FilterMode;
}

const TARGET_PROPS = new Set(['@odata.type', 'groupId', 'deviceAndAppManagementAssignmentFilterId', 'deviceAndAppManagementAssignmentFilterType', 'collectionId']);
const GUIDISH = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Pure: one deviceAndAppManagementAssignmentTarget. `path` names it in errors (e.g. enrollmentConfigurationAssignments[0].target). */
export function parseTarget(path: string, v: unknown): AssignmentInput {
  if (!isObject(v)) throw invalidProperty(path, 'must be a deviceAndAppManagementAssignmentTarget object.');
  const typeRaw = v['@odata.type'];
  if (typeof typeRaw !== 'string') throw badRequest(`Property '${path}.@odata.type' is required.`, `${path}.@odata.type`);
  const typeName = typeRaw.replace(/^#/, '').replace(/^microsoft\.graph\./, '');
  if (typeName === 'allDevicesAssignmentTarget') {
    throw invalidProperty(`${path}.@odata.type`, "enrollment restrictions apply to users: assign them to groups or to all users ('#microsoft.graph.allLicensedUsersAssignmentTarget').");
  }
  if (!(TARGET_TYPES as readonly string[]).includes(typeName)) {
    throw invalidProperty(`${path}.@odata.type`, `must be one of ${TARGET_TYPES.map((t) => `'#microsoft.graph.${t}'`).join(', ')}.`);
  }
  const targetType = typeName as TargetType;
  for (const k of Object.keys(v)) {
    if (!TARGET_PROPS.has(k) || k === 'collectionId' || (k === 'groupId' && targetType === 'allLicensedUsersAssignmentTarget' && v[k] !== null)) {
      throw badRequest(`Property '${path}.${k}' is not a known property of 'microsoft.graph.${targetType}'.`, `${path}.${k}`);
    }
  }
  let groupId: string | null = null;
  if (targetType !== 'allLicensedUsersAssignmentTarget') {
    const g = v.groupId;
    if (typeof g !== 'string' || !GUIDISH.test(g)) throw invalidProperty(`${path}.groupId`, 'must be the id of a group.');
    groupId = g.toLowerCase();
  }
  const fid = v.deviceAndAppManagementAssignmentFilterId;
  const ftype = v.deviceAndAppManagementAssignmentFilterType;
  let filterId: string | null = null;
  if (fid !== undefined && fid !== null && fid !== '') {
    if (typeof fid !== 'string' || fid.length > 200) throw invalidProperty(`${path}.deviceAndAppManagementAssignmentFilterId`, 'must be the id of an assignment filter.');
    filterId = fid;
  }
  let filterType: FilterMode = 'none';
  if (ftype !== undefined && ftype !== null) {
    if (ftype !== 'none' && ftype !== 'include' && ftype !== 'exclude') {
      throw invalidProperty(`${path}.deviceAndAppManagementAssignmentFilterType`, "must be 'none', 'include' or 'exclude'.");
    }
    filterType = ftype;
  }
  if (filterId !== null && filterType === 'none') {
    throw invalidProperty(`${path}.deviceAndAppManagementAssignmentFilterType`, "must be 'include' or 'exclude' when a filter is given.");
  }
  if (filterId === null && filterType !== 'none') {
    throw invalidProperty(`${path}.deviceAndAppManagementAssignmentFilterId`, `is required with filter type '${filterType}'.`);
  }
  if (filterId !== null && targetType === 'exclusionGroupAssignmentTarget') {
    throw invalidProperty(`${path}.deviceAndAppManagementAssignmentFilterId`, 'filters can only be used on included groups and all users, not on excluded groups.');
  }
  return { targetType, groupId, filterId, filterType };
}

/** Pure: one enrollmentConfigurationAssignment body (POST/PATCH …/assignments, or an assign entry). */
export function parseAssignment(path: string, v: unknown): AssignmentInput & { id?: string } {
  if (!isObject(v)) throw invalidProperty(path || 'body', 'must be an enrollmentConfigurationAssignment object.');
  const at = (k: string) => (path ? `${path}.${k}` : k);
  let target: AssignmentInput | undefined;
  let id: string | undefined;
  for (const [k, value] of Object.entries(v)) {
    switch (k) {
      case '@odata.type':
        checkODataType(at(k), value, ASSIGNMENT_TYPE);
        break;
      case 'id':
        if (typeof value !== 'string') throw invalidProperty(at(k), 'must be a string.');
        id = value;
        break;
      case 'source':
        if (value !== 'direct') throw invalidProperty(at(k), "only 'direct' assignments can be made here (policy sets are not supported).");
        break;
      case 'sourceId':
        if (value !== null && typeof value !== 'string') throw invalidProperty(at(k), 'must be a string or null.');
        break;
      case 'target':
        target = parseTarget(at('target'), value);
        break;
      default:
        throw badRequest(`Property '${at(k)}' is not a known property of '${ASSIGNMENT_TYPE}'.`, at(k));
    }
  }
  if (!target) throw badRequest(`Property '${at('target')}' is required.`, at('target'));
  return { ...target, ...(id !== undefined ? { id } : {}) };
}

/** What makes two assignments the same target: one group (included or excluded), or all users. */
export const targetKey = (a: Pick<AssignmentInput, 'groupId'>) => a.groupId ?? ALL_USERS_VIRTUAL_GROUP;

/** Intune's assignment ids: the policy id and the target group (all users' virtual group id). */
export const assignmentId = (configurationId: string, a: Pick<AssignmentInput, 'groupId'>) => `${configurationId}_${targetKey(a)}`;

export function toAssignmentEntity(row: EnrollmentConfigurationAssignmentsTable, version: ApiVersion): Record<string, unknown> {
  const target: Record<string, unknown> = {
    '@odata.type': `#microsoft.graph.${row.target_type}`,
    deviceAndAppManagementAssignmentFilterId: row.filter_id,
    deviceAndAppManagementAssignmentFilterType: row.filter_type,
  };
  if (row.target_type !== 'allLicensedUsersAssignmentTarget') target.groupId = row.group_id;
  const out: Record<string, unknown> = { '@odata.type': `#${ASSIGNMENT_TYPE}`, id: row.id };
  if (version === 'beta') {
    out.source = row.source;
    out.sourceId = row.source_id;
  }
  out.target = target;
  return out;
}
