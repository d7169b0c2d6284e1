import { badRequest, invalidProperty } from '../../graph/errors.js';
import type { AppleEnrollmentTypeProfilesTable } from '../../store/schema.js';

/*
 * Apple enrollment type profiles (requirements -D §6, graph §11), pure: which enrollment type a
 * user gets on a device not enrolled through a corporate Apple method.
 */

export const APPLE_PROFILE_TYPE = 'microsoft.graph.appleUserInitiatedEnrollmentProfile';
export const APPLE_ASSIGNMENT_TYPE = 'microsoft.graph.appleEnrollmentProfileAssignment';
export const OWNER_TYPE_ENROLLMENT_TYPE = 'microsoft.graph.appleOwnerTypeEnrollmentType';
/** object_type for scope tags and assignments. */
export const APPLE_PROFILE_OBJECT = 'appleUserInitiatedEnrollmentProfile';

/** Graph appleUserInitiatedEnrollmentType members an admin may choose (unknown and the sentinel can't be set). */
export const ENROLLMENT_TYPES = ['device', 'user', 'accountDrivenUserEnrollment', 'webDeviceEnrollment'] as const;
export type AppleEnrollmentType = (typeof ENROLLMENT_TYPES)[number];
/** The platforms Apple enrollment types exist for (devicePlatformType members). */
export const PLATFORMS = ['iOS', 'macOS'] as const;
export type ApplePlatform = (typeof PLATFORMS)[number];
export const OWNER_TYPES = ['company', 'personal'] as const;
export type OwnerType = (typeof OWNER_TYPES)[number];

export const PROFILE_LIMITS = { displayName: 256, description: 1024, options: 4 } as const;

/** Device enrollment keeps the whole device managed; user enrollment separates work data (BYOD only). */
export const enrollmentKind = (t: AppleEnrollmentType): 'device' | 'user' => (t === 'user' || t === 'accountDrivenUserEnrollment' ? 'user' : 'device');

export interface EnrollmentTypeOption {
  ownerType: OwnerType;
  enrollmentType: AppleEnrollmentType;
}

/**
 * Pure: validates availableEnrollmentTypeOptions. Empty means the profile's default applies to
 * everyone. Otherwise it is "determine based on user choice": users answer who owns the device,
 * so both owners need an option; a company device always gets device enrollment (user enrollment
 * is for personal devices), and each owner has at most one option of each kind, so every answer
 * leads to exactly one enrollment type.
 */
export function parseOptions(raw: unknown): EnrollmentTypeOption[] {
  const prop = 'availableEnrollmentTypeOptions';
  if (raw === null || raw === undefined) return [];
  if (!Array.isArray(raw)) throw invalidProperty(prop, 'must be an array of appleOwnerTypeEnrollmentType objects.');
  if (raw.length > PROFILE_LIMITS.options) throw invalidProperty(prop, `at most ${PROFILE_LIMITS.options} options.`);
  const out: EnrollmentTypeOption[] = [];
  raw.forEach((o: unknown, i) => {
    const at = `${prop}[${i}]`;
    if (o === null || typeof o !== 'object' || Array.isArray(o)) throw badRequest(`Invalid value for property '${at}': expected an object.`, at);
    const { ownerType, enrollmentType, '@odata.type': odataType, ...rest } = o as Record<string, unknown>;
    const extra = Object.keys(rest)[0];
    if (extra) throw badRequest(`Property '${at}.${extra}' is not a known property of appleOwnerTypeEnrollmentType.`, `${at}.${extra}`);
    if (odataType !== undefined && (typeof odataType !== 'string' || odataType.replace(/^#/, '') !== OWNER_TYPE_ENROLLMENT_TYPE)) {
      throw badRequest(`Invalid value for property '${at}.@odata.type': must be '#${OWNER_TYPE_ENROLLMENT_TYPE}'.`, `${at}.@odata.type`);
    }
    if (typeof ownerType !== 'string' || !(OWNER_TYPES as readonly string[]).includes(ownerType)) {
      throw badRequest(`Invalid value for property '${at}.ownerType': must be 'company' or 'personal'.`, `${at}.ownerType`);
    }
    if (typeof enrollmentType !== 'string' || !(ENROLLMENT_TYPES as readonly string[]).includes(enrollmentType)) {
      throw badRequest(`Invalid value for property '${at}.enrollmentType': must be one of ${ENROLLMENT_TYPES.map((t) => `'${t}'`).join(', ')}.`, `${at}.enrollmentType`);
    }
    const option = { ownerType: ownerType as OwnerType, enrollmentType: enrollmentType as AppleEnrollmentType };
    if (option.ownerType === 'company' && enrollmentKind(option.enrollmentType) === 'user') {
      throw badRequest(`Invalid value for property '${at}': company-owned devices enroll with device enrollment; user enrollment is for personal devices.`, at);
    }
    if (out.some((x) => x.ownerType === option.ownerType && enrollmentKind(x.enrollmentType) === enrollmentKind(option.enrollmentType))) {
      throw badRequest(`Invalid value for property '${at}': ${option.ownerType} devices already have a ${enrollmentKind(option.enrollmentType)} enrollment option.`, at);
    }
    out.push(option);
  });
  for (const owner of OWNER_TYPES) {
    if (out.length > 0 && !out.some((o) => o.ownerType === owner)) {
      throw invalidProperty(prop, `a user's choice needs an option for ${owner}-owned devices too.`);
    }
  }
  return out;
}

/** What the user answered on the enrollment page. */
export interface UserChoice {
  /** "(Company) owns this device" or "I own this device". */
  owner: OwnerType;
  /** Personal devices: "secure the entire device" or "only work-related apps and data". */
  scope?: 'entireDevice' | 'workOnly';
}

export interface ChosenEnrollment {
  enrollmentType: AppleEnrollmentType;
  /** Recorded as the device's ownership (managedDeviceOwnerType). */
  ownerType: OwnerType;
}

/**
 * Pure: the enrollment a user's answers lead to (-D §6, checks 41). "(Company) owns this device"
 * gives device enrollment and corporate ownership; "I own this device" asks whether to secure the
 * entire device (device enrollment) or only work apps and data (user enrollment), personal either
 * way. With one personal option the second question isn't asked. Undefined when the answers don't
 * match an offered option (the page must ask again).
 */
export function chooseEnrollment(options: readonly EnrollmentTypeOption[], choice: UserChoice): ChosenEnrollment | undefined {
  const offered = options.filter((o) => o.ownerType === choice.owner);
  if (offered.length === 0) return undefined;
  if (choice.owner === 'company' || offered.length === 1) {
    const only = offered.find((o) => enrollmentKind(o.enrollmentType) === 'device') ?? offered[0]!;
    return { enrollmentType: only.enrollmentType, ownerType: choice.owner };
  }
  if (!choice.scope) return undefined;
  const wanted = choice.scope === 'workOnly' ? 'user' : 'device';
  const match = offered.find((o) => enrollmentKind(o.enrollmentType) === wanted);
  return match ? { enrollmentType: match.enrollmentType, ownerType: choice.owner } : undefined;
}

/** Pure: the options for "Determine based on user choice" as the console creates them. */
export const USER_CHOICE_OPTIONS: readonly EnrollmentTypeOption[] = [
  { ownerType: 'company', enrollmentType: 'device' },
  { ownerType: 'personal', enrollmentType: 'device' },
  { ownerType: 'personal', enrollmentType: 'user' },
];

export function storedOptions(r: Pick<AppleEnrollmentTypeProfilesTable, 'available_options'>): EnrollmentTypeOption[] {
  return JSON.parse(r.available_options) as EnrollmentTypeOption[];
}

export function toProfileEntity(r: AppleEnrollmentTypeProfilesTable, tags: readonly string[]): Record<string, unknown> {
  return {
    id: r.id,
    displayName: r.display_name,
    description: r.description,
    defaultEnrollmentType: r.default_enrollment_type,
    availableEnrollmentTypeOptions: storedOptions(r).map((o) => ({ '@odata.type': `#${OWNER_TYPE_ENROLLMENT_TYPE}`, ...o })),
    platform: r.platform,
    priority: r.priority,
    createdDateTime: r.created_at,
    lastModifiedDateTime: r.updated_at,
    roleScopeTagIds: [...tags],
  };
}
