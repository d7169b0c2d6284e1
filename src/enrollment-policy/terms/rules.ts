import { badRequest, invalidProperty } from '../../graph/errors.js';
import type { ApiVersion } from '../../graph/http.js';
import type { TermsAcceptancesTable, TermsAndConditionsTable } from '../../store/schema.js';

/* Terms and conditions rules (requirements -A §10), pure. */

export const TERMS_TYPE = 'microsoft.graph.termsAndConditions';
export const ACCEPTANCE_STATUS_TYPE = 'microsoft.graph.termsAndConditionsAcceptanceStatus';
export const TERMS_ASSIGNMENT_TYPE = 'microsoft.graph.termsAndConditionsAssignment';
export const TERMS_GROUP_ASSIGNMENT_TYPE = 'microsoft.graph.termsAndConditionsGroupAssignment';
/** object_type for scope tags and assignments. */
export const TERMS_OBJECT = 'termsAndConditions';

export const TERMS_LIMITS = {
  displayName: 256,
  description: 1024,
  title: 256,
  bodyText: 100_000,
  acceptanceStatement: 2048,
} as const;

/** A new policy is version 1 (the console shows "Current Version: 1"). */
export const FIRST_VERSION = 1;

/**
 * Pure: the version after an edit. Graph expresses "require users to re-accept" as a PATCH whose
 * `version` is the current one plus one (what the console's checkbox sends). The same number, or
 * none, keeps the version and every acceptance; lower numbers and jumps are refused.
 */
export function nextVersion(current: number, requested: number | undefined): number {
  if (requested === undefined || requested === current) return current;
  if (requested < current) throw invalidProperty('version', `the version can't go down (it is ${current}); to require users to accept again, set it to ${current + 1}.`);
  if (requested !== current + 1) throw invalidProperty('version', `increment the version by one (to ${current + 1}) to require users to accept again.`);
  return requested;
}

/** Pure: the version a new policy gets; clients restoring a backup may send 1, anything else is refused. */
export function initialVersion(requested: number | undefined): number {
  if (requested !== undefined && requested !== FIRST_VERSION) {
    throw invalidProperty('version', `a new terms and conditions policy starts at version ${FIRST_VERSION}.`);
  }
  return FIRST_VERSION;
}

/** Pure: acceptance counts only for the current version; an acceptance before a bump doesn't. */
export const acceptanceIsCurrent = (acceptedVersion: number | null | undefined, currentVersion: number) =>
  acceptedVersion !== null && acceptedVersion !== undefined && acceptedVersion >= currentVersion;

/** Pure: the text users see must be there: a title and the terms themselves. */
export function checkUserFacingText(t: { title: string | null; bodyText: string | null }): void {
  for (const [prop, v] of [['title', t.title], ['bodyText', t.bodyText]] as const) {
    if (v === null || v.trim() === '') throw badRequest(`Property '${prop}' is required: users see it when they accept the terms.`, prop);
  }
}

export function toTermsEntity(r: TermsAndConditionsTable, tags: readonly string[], version: ApiVersion): Record<string, unknown> {
  return {
    id: r.id,
    createdDateTime: r.created_at,
    lastModifiedDateTime: r.updated_at,
    ...(version === 'beta' ? { modifiedDateTime: r.updated_at } : {}),
    displayName: r.display_name,
    description: r.description,
    title: r.title,
    bodyText: r.body_text,
    acceptanceStatement: r.acceptance_statement,
    version: r.version,
    ...(version === 'beta' ? { roleScopeTagIds: [...tags] } : {}),
  };
}

export function toAcceptanceEntity(r: TermsAcceptancesTable): Record<string, unknown> {
  return {
    id: r.id,
    userDisplayName: r.user_display_name,
    acceptedVersion: r.accepted_version,
    acceptedDateTime: r.accepted_at,
    userPrincipalName: r.user_principal_name,
  };
}

/** Acceptance status ids: one per policy and user. */
export const acceptanceId = (termsId: string, userId: string) => `${termsId}_${userId}`;
