/**
 * Pure rules for directory objects, shared by the JSON API and the CSV import so both refuse
 * the same things with the same words. Limits follow Entra ID.
 */

export const USER_LIMITS = {
  userPrincipalName: 113,
  upnLocalPart: 64,
  displayName: 256,
  givenName: 64,
  surname: 64,
  mail: 256,
  mailNickname: 64,
  jobTitle: 128,
  department: 64,
  officeLocation: 128,
  mobilePhone: 64,
  employeeId: 16,
  passwordMin: 8,
  passwordMax: 256,
  deviceEnrollmentLimitMin: 1,
  deviceEnrollmentLimitMax: 1000,
} as const;

export const GROUP_LIMITS = { displayName: 256, description: 1024, mailNickname: 64 } as const;

export const USER_TYPES = ['Member', 'Guest'] as const;
export type UserType = (typeof USER_TYPES)[number];

export const GROUP_TYPES = ['Unified', 'DynamicMembership'] as const;
export const PROCESSING_STATES = ['On', 'Paused'] as const;
export type ProcessingState = (typeof PROCESSING_STATES)[number];

/** A problem with one property of an input. */
export interface FieldProblem {
  property: string;
  problem: string;
}

const UPN_LOCAL = /^[A-Za-z0-9'._!#^~-]+$/;
const DOMAIN_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** Why a userPrincipalName is unacceptable, or null. Entra's form: alias@domain. */
export function userPrincipalNameProblem(upn: string): string | null {
  if (upn.length === 0) return 'must not be empty';
  if (upn.length > USER_LIMITS.userPrincipalName) return `must be at most ${USER_LIMITS.userPrincipalName} characters`;
  const at = upn.indexOf('@');
  if (at <= 0 || at !== upn.lastIndexOf('@') || at === upn.length - 1) return "must have the form alias@domain, with exactly one '@'";
  const local = upn.slice(0, at);
  const domain = upn.slice(at + 1);
  if (local.length > USER_LIMITS.upnLocalPart) return `the part before '@' must be at most ${USER_LIMITS.upnLocalPart} characters`;
  if (!UPN_LOCAL.test(local)) return "the part before '@' may contain only letters, digits and ' . - _ ! # ^ ~";
  if (local.startsWith('.') || local.endsWith('.') || local.includes('..')) return "the part before '@' can't start or end with a period or contain two periods in a row";
  const labels = domain.split('.');
  if (labels.length < 2 || !labels.every((l) => DOMAIN_LABEL.test(l))) return "the part after '@' must be a domain name such as contoso.com";
  return null;
}

export function mailProblem(mail: string): string | null {
  if (mail.length > USER_LIMITS.mail) return `must be at most ${USER_LIMITS.mail} characters`;
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(mail)) return 'must be an email address such as alias@contoso.com';
  return null;
}

/** Entra refuses these in mailNickname: @ ( ) \ [ ] " ; : < > , and space; and non-ASCII. */
export function mailNicknameProblem(nick: string, max: number): string | null {
  if (nick.length === 0) return 'must not be empty';
  if (nick.length > max) return `must be at most ${max} characters`;
  if (/[@()\\[\]";:<>,\s]/.test(nick) || /[^\x21-\x7e]/.test(nick)) return 'may not contain spaces, non-ASCII characters or any of @ ( ) \\ [ ] " ; : < > ,';
  return null;
}

/** A mailNickname made from a name: the allowed characters, at most `max`. */
export function deriveMailNickname(from: string, max: number): string {
  return from.replace(/[@()\\[\]";:<>,\s]/g, '').replace(/[^\x21-\x7e]/g, '').slice(0, max);
}

export function usageLocationProblem(v: string): string | null {
  return /^[A-Za-z]{2}$/.test(v) ? null : 'must be a two-letter country code (ISO 3166-1 alpha-2) such as US';
}

/**
 * Entra's password policy: 8-256 characters of printable ASCII, with at least three of
 * lower case, upper case, digits and symbols.
 */
export function passwordProblem(password: string): string | null {
  if (password.length < USER_LIMITS.passwordMin || password.length > USER_LIMITS.passwordMax) {
    return `must be between ${USER_LIMITS.passwordMin} and ${USER_LIMITS.passwordMax} characters`;
  }
  if (/[^\x20-\x7e]/.test(password)) return 'may contain only letters, digits, spaces and ASCII symbols';
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((r) => r.test(password)).length;
  if (classes < 3) return 'must contain at least three of: lower-case letters, upper-case letters, digits, symbols';
  return null;
}

/** The writable user properties (what POST, PATCH and the CSV import can set). */
export interface UserFields {
  userPrincipalName?: string;
  displayName?: string;
  givenName?: string | null;
  surname?: string | null;
  mail?: string | null;
  mailNickname?: string;
  accountEnabled?: boolean;
  jobTitle?: string | null;
  department?: string | null;
  officeLocation?: string | null;
  mobilePhone?: string | null;
  usageLocation?: string | null;
  userType?: UserType;
  employeeId?: string | null;
  deviceEnrollmentLimit?: number | null;
  passwordProfile?: { password: string; forceChangePasswordNextSignIn?: boolean };
}

const STRING_MAX: Partial<Record<keyof UserFields, number>> = {
  displayName: USER_LIMITS.displayName,
  givenName: USER_LIMITS.givenName,
  surname: USER_LIMITS.surname,
  jobTitle: USER_LIMITS.jobTitle,
  department: USER_LIMITS.department,
  officeLocation: USER_LIMITS.officeLocation,
  mobilePhone: USER_LIMITS.mobilePhone,
  employeeId: USER_LIMITS.employeeId,
};

/** The first problem with a user's fields (only those present), or null. */
export function userFieldsProblem(f: UserFields): FieldProblem | null {
  if (f.userPrincipalName !== undefined) {
    const p = userPrincipalNameProblem(f.userPrincipalName);
    if (p) return { property: 'userPrincipalName', problem: p };
  }
  if (f.displayName !== undefined && f.displayName.trim() === '') return { property: 'displayName', problem: 'must not be empty' };
  for (const [k, max] of Object.entries(STRING_MAX) as [keyof UserFields, number][]) {
    const v = f[k];
    if (typeof v === 'string' && v.length > max) return { property: k, problem: `must be at most ${max} characters` };
  }
  if (typeof f.mail === 'string') {
    const p = mailProblem(f.mail);
    if (p) return { property: 'mail', problem: p };
  }
  if (f.mailNickname !== undefined) {
    const p = mailNicknameProblem(f.mailNickname, USER_LIMITS.mailNickname);
    if (p) return { property: 'mailNickname', problem: p };
  }
  if (typeof f.usageLocation === 'string') {
    const p = usageLocationProblem(f.usageLocation);
    if (p) return { property: 'usageLocation', problem: p };
  }
  if (f.userType !== undefined && !USER_TYPES.includes(f.userType)) return { property: 'userType', problem: `must be one of ${USER_TYPES.join(', ')}` };
  if (typeof f.deviceEnrollmentLimit === 'number') {
    const n = f.deviceEnrollmentLimit;
    if (!Number.isInteger(n) || n < USER_LIMITS.deviceEnrollmentLimitMin || n > USER_LIMITS.deviceEnrollmentLimitMax) {
      return { property: 'deviceEnrollmentLimit', problem: `must be an integer from ${USER_LIMITS.deviceEnrollmentLimitMin} to ${USER_LIMITS.deviceEnrollmentLimitMax}` };
    }
  }
  if (f.passwordProfile !== undefined) {
    const p = passwordProblem(f.passwordProfile.password);
    if (p) return { property: 'passwordProfile.password', problem: p };
  }
  return null;
}

/** Group shape as far as the cross-property rules care. */
export interface GroupShape {
  groupTypes: readonly string[];
  membershipRule: string | null;
  membershipRuleProcessingState: string | null;
}

export const isDynamicGroup = (g: Pick<GroupShape, 'groupTypes'>) => g.groupTypes.includes('DynamicMembership');

/** The first cross-property problem of a group, or null (the rule's syntax is checked apart). */
export function groupShapeProblem(g: GroupShape): FieldProblem | null {
  if (new Set(g.groupTypes).size !== g.groupTypes.length) return { property: 'groupTypes', problem: 'must not repeat a value' };
  if (isDynamicGroup(g)) {
    if (g.groupTypes.includes('Unified')) {
      return { property: 'groupTypes', problem: 'a Microsoft 365 (Unified) group holds only users, and OpenEnroll membership rules select devices, so it can\'t be dynamic' };
    }
    if (g.membershipRule === null || g.membershipRule.trim() === '') {
      return { property: 'membershipRule', problem: "is required when groupTypes contains 'DynamicMembership'" };
    }
    return null;
  }
  if (g.membershipRule !== null) return { property: 'membershipRule', problem: "can only be set when groupTypes contains 'DynamicMembership'" };
  if (g.membershipRuleProcessingState !== null) {
    return { property: 'membershipRuleProcessingState', problem: "can only be set when groupTypes contains 'DynamicMembership'" };
  }
  return null;
}
