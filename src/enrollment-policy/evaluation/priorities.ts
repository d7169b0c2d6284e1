/**
 * Priority algebra for restriction policies of one type (and, for platform restrictions, one platform tab).
 * Pure: the admin API reads the list, asks for the new numbers and writes them in its transaction.
 *
 * Invariants it keeps (-E §6.1, §7.3, §14.5-7): custom policies are numbered 1..n without gaps (1 is the highest
 * priority); the default stays at 0, is always applied last and can't be moved or removed.
 */

export interface PrioritizedPolicy {
  id: string;
  priority: number;
  isDefault: boolean;
}

/**
 * Custom policies per priority list (device limits; platform restrictions per platform tab). The built-in default
 * doesn't count: "you can have up to 25" reads as 25 an admin can create (evaluation/decisions.md).
 */
export const MAX_POLICIES_PER_TYPE = 25;
export const DEFAULT_POLICY_PRIORITY = 0;

export type PriorityErrorCode = 'policyNotFound' | 'defaultPolicyImmutable' | 'priorityOutOfRange';

export class PriorityError extends Error {
  constructor(
    readonly code: PriorityErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'PriorityError';
  }
}

// Current order of the custom policies: by priority, ties (only in damaged data) by id so the result is stable.
function customsInOrder(existing: readonly PrioritizedPolicy[], without?: string): PrioritizedPolicy[] {
  return existing
    .filter((p) => !p.isDefault && p.id !== without)
    .sort((a, b) => a.priority - b.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function numbered(customs: readonly PrioritizedPolicy[], defaults: readonly PrioritizedPolicy[]): Map<string, number> {
  const result = new Map<string, number>();
  customs.forEach((p, i) => result.set(p.id, i + 1));
  for (const d of defaults) result.set(d.id, DEFAULT_POLICY_PRIORITY);
  return result;
}

function find(existing: readonly PrioritizedPolicy[], id: string): PrioritizedPolicy {
  const policy = existing.find((p) => p.id === id);
  if (!policy) throw new PriorityError('policyNotFound', `no restriction policy with id '${id}'`);
  return policy;
}

/** Whether one more custom policy fits under MAX_POLICIES_PER_TYPE. */
export function canAddPolicy(existing: readonly PrioritizedPolicy[]): boolean {
  return existing.filter((p) => !p.isDefault).length < MAX_POLICIES_PER_TYPE;
}

/** A new policy goes just above the default: the lowest-priority custom position (max + 1). */
export function insertPriority(existing: readonly PrioritizedPolicy[]): number {
  return existing.reduce((max, p) => (p.isDefault ? max : Math.max(max, p.priority)), 0) + 1;
}

/**
 * Moves one custom policy to `newPriority` and renumbers the others to stay contiguous.
 * A target past the end clamps to the last custom position (as dragging to the bottom of the list does);
 * below 1 or not an integer is refused, as is moving the default.
 * Returns the priority of every policy in `existing`.
 */
export function setPriority(existing: readonly PrioritizedPolicy[], id: string, newPriority: number): Map<string, number> {
  const policy = find(existing, id);
  if (policy.isDefault) throw new PriorityError('defaultPolicyImmutable', "the default policy's priority can't be changed");
  if (!Number.isInteger(newPriority) || newPriority < 1) {
    throw new PriorityError('priorityOutOfRange', 'priority must be a whole number of at least 1 (0 is reserved for the default policy)');
  }
  const others = customsInOrder(existing, id);
  const index = Math.min(newPriority, others.length + 1) - 1;
  others.splice(index, 0, policy);
  return numbered(
    others,
    existing.filter((p) => p.isDefault),
  );
}

/** Removes a custom policy and closes the gap. Returns the priority of every remaining policy. */
export function removePolicy(existing: readonly PrioritizedPolicy[], id: string): Map<string, number> {
  const policy = find(existing, id);
  if (policy.isDefault) throw new PriorityError('defaultPolicyImmutable', "the default policy can't be deleted");
  return numbered(
    customsInOrder(existing, id),
    existing.filter((p) => p.isDefault),
  );
}

/** Renumbers damaged data (gaps, duplicates) to 1..n in the current order; the default stays 0. */
export function normalizePriorities(existing: readonly PrioritizedPolicy[]): Map<string, number> {
  return numbered(
    customsInOrder(existing),
    existing.filter((p) => p.isDefault),
  );
}
