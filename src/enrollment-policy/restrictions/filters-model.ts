import { badRequest, invalidProperty } from '../../graph/errors.js';
import type { AssignmentFiltersTable } from '../../store/schema.js';
import { FilterRuleError, parseEnrollmentFilterRule, parseFilterRule } from '../evaluation/filters.js';
import { parseTagIds, type CreatablePlatform } from './model.js';

/**
 * Graph's deviceAndAppManagementAssignmentFilter: a named device rule that narrows (include) or
 * widens out (exclude) an assignment. Pure shapes and validation; rules are parsed by the engine.
 */

export const FILTER_OBJECT = 'assignmentFilter';
export const FILTER_TYPE = 'microsoft.graph.deviceAndAppManagementAssignmentFilter';

/** devicePlatformType values a device filter can be made for (the MAM and retired Windows platforms aren't). */
export const FILTER_PLATFORMS = ['android', 'androidForWork', 'iOS', 'macOS', 'windows10AndLater', 'androidWorkProfile', 'androidAOSP'] as const;
export type FilterPlatform = (typeof FILTER_PLATFORMS)[number];

/** The filter platform each filterable restriction platform takes (Android restrictions take none, -E §6.5). */
export const FILTER_PLATFORM_OF: Readonly<Record<Exclude<CreatablePlatform, 'android' | 'androidForWork'>, FilterPlatform>> = {
  ios: 'iOS',
  mac: 'macOS',
  windows: 'windows10AndLater',
};

const NAME_MAX = 200;
const DESCRIPTION_MAX = 1024;

export interface FilterInput {
  displayName: string;
  description: string | null;
  platform: FilterPlatform;
  rule: string;
  roleScopeTagIds?: string[];
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Pure: throws a 400 naming `rule` and the position of the first problem. */
export function checkFilterRule(rule: string, property = 'rule'): void {
  try {
    parseFilterRule(rule);
  } catch (err) {
    if (err instanceof FilterRuleError) throw invalidProperty(property, `${err.message} (at position ${err.position}).`);
    throw err;
  }
}

/** Pure: why a rule can't be used on an enrollment restriction of `platform`, or undefined. */
export function enrollmentFilterProblem(platform: CreatablePlatform, rule: string): string | undefined {
  try {
    parseEnrollmentFilterRule(rule, platform);
    return undefined;
  } catch (err) {
    if (err instanceof FilterRuleError) return `${err.message} (at position ${err.position}).`;
    throw err;
  }
}

/** The restriction platform a filter platform serves, if any. */
export function restrictionPlatformOf(platform: string): CreatablePlatform | undefined {
  return (Object.keys(FILTER_PLATFORM_OF) as (keyof typeof FILTER_PLATFORM_OF)[]).find((p) => FILTER_PLATFORM_OF[p] === platform);
}

const SERVER_SET = new Set(['id', 'createdDateTime', 'lastModifiedDateTime', 'payloads']);

function fields(body: Record<string, unknown>, partial: boolean): Partial<FilterInput> {
  const out: Partial<FilterInput> = {};
  for (const [k, v] of Object.entries(body)) {
    if (SERVER_SET.has(k)) continue;
    switch (k) {
      case '@odata.type':
        if (typeof v !== 'string' || v.replace(/^#/, '') !== FILTER_TYPE) throw invalidProperty(k, `must be '#${FILTER_TYPE}'.`);
        break;
      case 'displayName':
        if (typeof v !== 'string' || v.trim() === '') throw invalidProperty(k, 'must be a non-empty string.');
        if (v.trim().length > NAME_MAX) throw invalidProperty(k, `must be at most ${NAME_MAX} characters.`);
        out.displayName = v.trim();
        break;
      case 'description':
        if (v !== null && typeof v !== 'string') throw invalidProperty(k, 'must be a string or null.');
        if (typeof v === 'string' && v.length > DESCRIPTION_MAX) throw invalidProperty(k, `must be at most ${DESCRIPTION_MAX} characters.`);
        out.description = v as string | null;
        break;
      case 'platform':
        if (typeof v !== 'string' || !(FILTER_PLATFORMS as readonly string[]).includes(v)) {
          throw invalidProperty(k, `must be one of ${FILTER_PLATFORMS.map((p) => `'${p}'`).join(', ')}.`);
        }
        out.platform = v as FilterPlatform;
        break;
      case 'rule':
        if (typeof v !== 'string') throw invalidProperty(k, 'must be a string.');
        checkFilterRule(v);
        out.rule = v;
        break;
      case 'assignmentFilterManagementType':
        if (v !== 'devices') throw invalidProperty(k, "only 'devices' filters are supported.");
        break;
      // Graph names the tags roleScopeTags on filters; roleScopeTagIds (as on every other object) is accepted too.
      case 'roleScopeTags':
      case 'roleScopeTagIds':
        out.roleScopeTagIds = parseTagIds(v);
        break;
      default:
        throw badRequest(`Property '${k}' is not a known property of '${FILTER_TYPE}'.`, k);
    }
  }
  if (!partial) {
    for (const k of ['displayName', 'platform', 'rule'] as const) {
      if (out[k] === undefined) throw badRequest(`Property '${k}' is required.`, k);
    }
  }
  return out;
}

export function parseFilterCreate(body: unknown): FilterInput {
  if (!isObject(body)) throw badRequest('The request body must be a JSON object.');
  const f = fields(body, false);
  return { displayName: f.displayName!, description: f.description ?? null, platform: f.platform!, rule: f.rule!, ...(f.roleScopeTagIds ? { roleScopeTagIds: f.roleScopeTagIds } : {}) };
}

export function parseFilterPatch(body: unknown, row: AssignmentFiltersTable): Partial<FilterInput> {
  if (!isObject(body)) throw badRequest('The request body must be a JSON object.');
  const f = fields(body, true);
  if (f.platform !== undefined && f.platform !== row.platform) {
    throw badRequest("A filter's platform can't be changed; create a filter for the other platform.", 'platform');
  }
  return f;
}

export function toFilterEntity(row: AssignmentFiltersTable, tags: readonly string[]): Record<string, unknown> {
  return {
    id: row.id,
    createdDateTime: row.created_at,
    lastModifiedDateTime: row.updated_at,
    displayName: row.display_name,
    description: row.description,
    platform: row.platform,
    rule: row.rule,
    assignmentFilterManagementType: 'devices',
    roleScopeTags: [...tags],
  };
}
