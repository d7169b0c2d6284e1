import { ENROLLMENT_FILTER_PROPERTIES, evaluateFilterRule, parseEnrollmentFilterRule, type FilterDeviceProperties } from './filters.js';
import type {
  AppliedPolicy,
  AssignmentTarget,
  FilterResult,
  PolicyAssignment,
  PlatformRestrictionPolicy,
  RestrictionPlatform,
  RestrictionPolicy,
} from './types.js';

/**
 * Which policy of one type applies (-E §7.3, §9 steps 1-2): the assigned custom policy with the best priority
 * (1 is highest), else the default. Only that one applies; settings are never merged.
 *
 * A custom policy is assigned to this enrollment when it is user-driven, the user isn't in any of its exclusion
 * groups, and one of its include assignments (all users, all devices, or a group the user is in) targets the
 * user and passes that assignment's filter. Not user-driven: only the default applies.
 */
export interface SelectionContext {
  userDriven: boolean;
  hasUser: boolean;
  groupIds: ReadonlySet<string>;
  /** Which platform's filter properties apply; filters are ignored where the platform can't use them (Android). */
  filterPlatform: RestrictionPlatform;
  filterProperties: FilterDeviceProperties;
}

export interface SelectedPolicy<P extends RestrictionPolicy> {
  policy: P;
  target: AppliedPolicy['target'];
  filterResult?: FilterResult;
}

export interface PolicySelection<P extends RestrictionPolicy> {
  chosen?: SelectedPolicy<P>;
  /** Better-priority custom policies that targeted the user but whose filter left the device out. */
  filteredOut: SelectedPolicy<P>[];
}

/** Platform restriction tabs: Android holds device administrator and work profile together. */
export const PLATFORM_TAB: Readonly<Record<RestrictionPlatform, readonly RestrictionPlatform[]>> = {
  ios: ['ios'],
  mac: ['mac'],
  windows: ['windows'],
  windowsPhone: ['windowsPhone'],
  android: ['android', 'androidForWork'],
  androidForWork: ['android', 'androidForWork'],
  linux: ['linux'],
};

function byId(a: { id: string }, b: { id: string }): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Priority order; equal priorities (only in damaged data) fall back to id so the choice is deterministic. */
export function byPriority(a: RestrictionPolicy, b: RestrictionPolicy): number {
  return a.priority - b.priority || byId(a, b);
}

function targetOf(target: AssignmentTarget, ctx: SelectionContext): AppliedPolicy['target'] | undefined {
  switch (target.kind) {
    case 'allUsers':
      return 'allUsers';
    case 'allDevices':
      return 'allDevices';
    case 'group':
      return ctx.groupIds.has(target.groupId) ? { groupId: target.groupId } : undefined;
    case 'exclusionGroup':
      return undefined;
  }
}

function evaluateFilter(filter: NonNullable<PolicyAssignment['filter']>, ctx: SelectionContext): FilterResult {
  try {
    const rule = parseEnrollmentFilterRule(filter.rule, ctx.filterPlatform);
    return { filterId: filter.id, mode: filter.mode, matched: evaluateFilterRule(rule, ctx.filterProperties) };
  } catch (err) {
    return { filterId: filter.id, mode: filter.mode, matched: false, error: err instanceof Error ? err.message : String(err) };
  }
}

type Match =
  | { kind: 'applies'; target: AppliedPolicy['target']; filterResult?: FilterResult }
  | { kind: 'filteredOut'; target: AppliedPolicy['target']; filterResult: FilterResult }
  | { kind: 'notTargeted' };

export function matchPolicy(policy: RestrictionPolicy, ctx: SelectionContext): Match {
  if (!ctx.userDriven || !ctx.hasUser) return { kind: 'notTargeted' };
  // Exclusion wins over every inclusion.
  if (policy.assignments.some((a) => a.target.kind === 'exclusionGroup' && ctx.groupIds.has(a.target.groupId))) return { kind: 'notTargeted' };
  const filtersApply = ENROLLMENT_FILTER_PROPERTIES[ctx.filterPlatform].length > 0;
  let firstFilteredOut: Match | undefined;
  for (const assignment of policy.assignments) {
    const target = targetOf(assignment.target, ctx);
    if (!target) continue;
    if (!assignment.filter || !filtersApply) return { kind: 'applies', target };
    const filterResult = evaluateFilter(assignment.filter, ctx);
    const passes = !filterResult.error && filterResult.matched === (assignment.filter.mode === 'include');
    if (passes) return { kind: 'applies', target, filterResult };
    firstFilteredOut ??= { kind: 'filteredOut', target, filterResult };
  }
  return firstFilteredOut ?? { kind: 'notTargeted' };
}

export function selectPolicy<P extends RestrictionPolicy>(candidates: readonly P[], ctx: SelectionContext): PolicySelection<P> {
  const filteredOut: SelectedPolicy<P>[] = [];
  for (const policy of candidates.filter((p) => !p.isDefault).sort(byPriority)) {
    const match = matchPolicy(policy, ctx);
    if (match.kind === 'applies') return { chosen: { policy, target: match.target, filterResult: match.filterResult }, filteredOut };
    if (match.kind === 'filteredOut') filteredOut.push({ policy, target: match.target, filterResult: match.filterResult });
  }
  const fallback = candidates.filter((p) => p.isDefault).sort(byId)[0];
  return { chosen: fallback ? { policy: fallback, target: 'default' } : undefined, filteredOut };
}

/** Platform restriction policies that belong to the enrolling platform's tab, plus the default(s). */
export function platformCandidates(policies: readonly RestrictionPolicy[], platform: RestrictionPlatform): PlatformRestrictionPolicy[] {
  const tab = PLATFORM_TAB[platform];
  return policies.filter(
    (p): p is PlatformRestrictionPolicy => p.type === 'platformRestriction' && (p.isDefault || tab.some((k) => p.restrictions[k] !== undefined)),
  );
}
