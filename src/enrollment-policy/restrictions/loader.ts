import type { Executor } from '../../store/db.js';
import type { EnrollmentConfigurationAssignmentsTable, EnrollmentConfigurationsTable } from '../../store/schema.js';
import type { PlatformRestriction, PolicyAssignment, RestrictionPlatform, RestrictionPolicy } from '../evaluation/types.js';
import {
  DEFAULT_RESTRICTION_PROPERTIES,
  defaultConfigurationRows,
  emptyRestriction,
  type DefaultRestrictions,
  type StoredRestriction,
} from './model.js';

/** '' and null both mean "no bound". */
const bound = (v: string | null) => (v === null || v.trim() === '' ? null : v.trim());

function toRestriction(r: StoredRestriction): PlatformRestriction {
  return {
    platformBlocked: r.platformBlocked,
    personalDeviceEnrollmentBlocked: r.personalDeviceEnrollmentBlocked,
    osMinimumVersion: bound(r.osMinimumVersion),
    osMaximumVersion: bound(r.osMaximumVersion),
    blockedManufacturers: [...r.blockedManufacturers],
  };
}

function toAssignment(a: EnrollmentConfigurationAssignmentsTable, filters: Map<string, { displayName: string; rule: string }>): PolicyAssignment {
  const target: PolicyAssignment['target'] =
    a.target_type === 'allLicensedUsersAssignmentTarget'
      ? { kind: 'allUsers' }
      : a.target_type === 'exclusionGroupAssignmentTarget'
        ? { kind: 'exclusionGroup', groupId: a.group_id! }
        : { kind: 'group', groupId: a.group_id! };
  const filter = a.filter_id ? filters.get(a.filter_id) : undefined;
  if (!filter || (a.filter_type !== 'include' && a.filter_type !== 'exclude')) return { target };
  return { target, filter: { id: a.filter_id!, displayName: filter.displayName, mode: a.filter_type, rule: filter.rule } };
}

function toPolicy(row: EnrollmentConfigurationsTable, assignments: PolicyAssignment[]): RestrictionPolicy {
  const base = { id: row.id, displayName: row.display_name, priority: row.priority, isDefault: row.is_default === 1, assignments };
  if (row.configuration_type === 'limit') return { ...base, type: 'limit', limit: row.device_limit ?? 5 };
  const restrictions: Partial<Record<RestrictionPlatform, PlatformRestriction>> = {};
  if (row.configuration_type === 'singlePlatformRestriction') {
    restrictions[row.platform_type as RestrictionPlatform] = toRestriction(JSON.parse(row.settings) as StoredRestriction);
  } else {
    const stored = JSON.parse(row.settings) as DefaultRestrictions;
    for (const p of DEFAULT_RESTRICTION_PROPERTIES) {
      if (p.platform === null) continue;
      restrictions[p.platform] = toRestriction(stored[p.property] ?? emptyRestriction(p.emptyVersion, p.blockedByDefault));
    }
  }
  return { ...base, type: 'platformRestriction', restrictions };
}

/**
 * Every restriction policy of a tenant for the enrollment engine: the defaults (built in when the
 * tenant has never had them stored), custom policies with their true priorities, assignments and
 * the rule text of their filters. Read-only, so it can run in the enrolling transaction.
 */
export async function loadRestrictionPolicies(db: Executor, tenantId: string): Promise<RestrictionPolicy[]> {
  const rows = await db.selectFrom('enrollment_configurations').selectAll().where('tenant_id', '=', tenantId).orderBy('priority_list').orderBy('priority').orderBy('id').execute();
  const present = new Set(rows.map((r) => r.id));
  const defaults = defaultConfigurationRows(tenantId).filter((d) => !present.has(d.id));
  const assignments = await db
    .selectFrom('enrollment_configuration_assignments')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .orderBy('configuration_id')
    .orderBy('position')
    .orderBy('id')
    .execute();
  const filterIds = [...new Set(assignments.map((a) => a.filter_id).filter((f): f is string => f !== null))];
  const filters = new Map<string, { displayName: string; rule: string }>();
  if (filterIds.length > 0) {
    for (const f of await db.selectFrom('assignment_filters').select(['id', 'display_name', 'rule']).where('tenant_id', '=', tenantId).where('id', 'in', filterIds).execute()) {
      filters.set(f.id, { displayName: f.display_name, rule: f.rule });
    }
  }
  const byPolicy = new Map<string, PolicyAssignment[]>();
  for (const a of assignments) {
    const list = byPolicy.get(a.configuration_id) ?? [];
    list.push(toAssignment(a, filters));
    byPolicy.set(a.configuration_id, list);
  }
  return [...defaults, ...rows].map((r) => toPolicy(r, r.is_default === 1 ? [] : (byPolicy.get(r.id) ?? [])));
}
