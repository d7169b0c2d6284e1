import { chooseEnrollment, enrollmentKind, type ChosenEnrollment, type OwnerType, type UserChoice } from '../../enrollment-policy/apple-enrollment-types/rules.js';
import type { ResolvedEnrollmentType } from '../../enrollment-policy/apple-enrollment-types/service.js';
import type { EnrollmentMethod } from '../../enrollment-policy/evaluation/types.js';

/**
 * User-initiated Apple enrollment (-D §1.2, §6, §7), pure: which device the page serves, which
 * enrollment the user's enrollment-type profile and answers lead to, and what that enrollment is
 * (gate method, intent source, Graph deviceEnrollmentType). No I/O.
 */

export type PagePlatform = 'iOS' | 'macOS';

export interface BrowserDevice {
  /** null: a Mac-like browser, which an iPad also shows in desktop mode (the page asks). */
  platform: PagePlatform | null;
  /** iOS/iPadOS Safari report it; Safari on macOS reports a frozen 10.15.7, so none. */
  osVersion: string | null;
}

/** The device from a browser's User-Agent. */
export function browserDevice(userAgent: string | undefined): BrowserDevice {
  const ua = userAgent ?? '';
  const ios = /\((?:iPhone|iPad|iPod)\b[^)]*?\bOS (\d{1,3}(?:_\d{1,3}){0,2})\b/.exec(ua);
  if (ios) return { platform: 'iOS', osVersion: ios[1]!.replace(/_/g, '.') };
  if (/\b(?:iPhone|iPad|iPod)\b/.test(ua)) return { platform: 'iOS', osVersion: null };
  if (/\bMacintosh\b/.test(ua)) return { platform: null, osVersion: null };
  return { platform: 'iOS', osVersion: null };
}

export function parsePlatform(v: unknown): PagePlatform | undefined {
  return v === 'iOS' || v === 'macOS' ? v : undefined;
}

/** What the user is asked next, or the enrollment the answers lead to. */
export type EnrollmentTypeStep = { kind: 'askOwner' } | { kind: 'askScope' } | { kind: 'chosen'; enrollment: 'device' | 'user'; ownership: OwnerType | null; profileId: string | null };

/**
 * The enrollment a user gets (-D §6, checks 39–41): no profile assigned → device enrollment;
 * "Device enrollment" / "User enrollment" → that; "Determine based on user choice" → the owner
 * question, then for a personal device (when both are offered) whether to secure the whole device
 * or only work apps and data. Ownership is null when the user wasn't asked (the gate decides).
 */
export function enrollmentTypeStep(resolved: ResolvedEnrollmentType | undefined, answers: Partial<UserChoice>): EnrollmentTypeStep {
  if (!resolved) return { kind: 'chosen', enrollment: 'device', ownership: null, profileId: null };
  if (resolved.type !== 'userChoice') return { kind: 'chosen', enrollment: resolved.type, ownership: resolved.type === 'user' ? 'personal' : null, profileId: resolved.profileId };
  if (!answers.owner) return { kind: 'askOwner' };
  const chosen: ChosenEnrollment | undefined = chooseEnrollment(resolved.options, { owner: answers.owner, ...(answers.scope ? { scope: answers.scope } : {}) });
  if (!chosen) return resolved.options.some((o) => o.ownerType === answers.owner) ? { kind: 'askScope' } : { kind: 'askOwner' };
  return { kind: 'chosen', enrollment: enrollmentKind(chosen.enrollmentType), ownership: chosen.ownerType, profileId: resolved.profileId };
}

/** How each kind of user-initiated enrollment is decided and recorded. */
export const USER_INITIATED_KINDS = {
  /** Device enrollment from the web page (Intune's "Company Portal" path). */
  device: { method: 'appleCompanyPortal', source: 'userInitiated', enrollmentType: 'device', deviceEnrollmentType: 'userEnrollment' },
  /** Apple User Enrollment: a managed Apple ID partition, no device identifiers. */
  user: { method: 'appleUserEnrollment', source: 'userEnrollment', enrollmentType: 'user', deviceEnrollmentType: 'appleUserEnrollment' },
} as const satisfies Record<'device' | 'user', { method: EnrollmentMethod; source: string; enrollmentType: string; deviceEnrollmentType: string }>;

/**
 * The Managed Apple ID of a User Enrollment profile: the user's UPN, which is the account Apple
 * Business Manager federates with the organization's directory (mail may be an alias).
 */
export const managedAppleIdOf = (user: { userPrincipalName: string }) => user.userPrincipalName;
