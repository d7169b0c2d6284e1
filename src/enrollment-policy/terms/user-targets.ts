import crypto from 'node:crypto';
import { badRequest, conflict, notFound } from '../../graph/errors.js';
import type { Executor, Trx } from '../../store/db.js';
import type { EnrollmentUserAssignmentsTable } from '../../store/schema.js';

/*
 * Assignments of enrollment objects that apply to users (terms and conditions, Apple enrollment
 * type profiles): "all users", user groups, and excluded groups. Device targets are refused:
 * these objects act on the signed-in user, so a device target would silently reach no one.
 * Stored in enrollment_user_assignments, keyed by object type and id.
 */

export type UserTarget = { kind: 'allLicensedUsers' } | { kind: 'group'; groupId: string } | { kind: 'exclusionGroup'; groupId: string };

const GRAPH_TYPE = {
  allLicensedUsers: 'microsoft.graph.allLicensedUsersAssignmentTarget',
  group: 'microsoft.graph.groupAssignmentTarget',
  exclusionGroup: 'microsoft.graph.exclusionGroupAssignmentTarget',
} as const;

const GROUP_ID = /^[A-Za-z0-9._:-]{1,200}$/;

/**
 * Pure: a Graph deviceAndAppManagementAssignmentTarget as a user target. Refuses device targets,
 * Configuration Manager collections and assignment filters with a 400 naming the property.
 */
export function parseUserTarget(raw: unknown, objectLabel: string): UserTarget {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw badRequest("Invalid value for property 'target': expected an assignment target object.", 'target');
  }
  const t = raw as Record<string, unknown>;
  const type = typeof t['@odata.type'] === 'string' ? t['@odata.type'].replace(/^#/, '').replace(/^microsoft\.graph\./, '') : undefined;
  if (type === undefined) throw badRequest("Property 'target.@odata.type' is required (e.g. '#microsoft.graph.groupAssignmentTarget').", 'target.@odata.type');
  const known = new Set(['@odata.type', 'groupId', 'deviceAndAppManagementAssignmentFilterId', 'deviceAndAppManagementAssignmentFilterType', 'collectionId']);
  const unknownProp = Object.keys(t).find((k) => !known.has(k));
  if (unknownProp) throw badRequest(`Property 'target.${unknownProp}' is not a known property of an assignment target.`, `target.${unknownProp}`);
  const filterId = t.deviceAndAppManagementAssignmentFilterId;
  const filterType = t.deviceAndAppManagementAssignmentFilterType;
  if ((filterId !== undefined && filterId !== null) || (filterType !== undefined && filterType !== null && filterType !== 'none')) {
    throw badRequest(`Assignment filters can't be used on ${objectLabel}: they apply to users, and filters evaluate devices.`, 'target.deviceAndAppManagementAssignmentFilterId');
  }
  switch (type) {
    case 'allLicensedUsersAssignmentTarget':
      if (t.groupId !== undefined && t.groupId !== null) throw badRequest("Property 'target.groupId' can't be set on an all-users target.", 'target.groupId');
      return { kind: 'allLicensedUsers' };
    case 'groupAssignmentTarget':
    case 'exclusionGroupAssignmentTarget': {
      const groupId = t.groupId;
      if (typeof groupId !== 'string' || !GROUP_ID.test(groupId)) {
        throw badRequest("Invalid value for property 'target.groupId': expected the id of a group.", 'target.groupId');
      }
      return type === 'groupAssignmentTarget' ? { kind: 'group', groupId } : { kind: 'exclusionGroup', groupId };
    }
    case 'allDevicesAssignmentTarget':
      throw badRequest(`Invalid value for property 'target': ${objectLabel} can be assigned to users only, not to all devices.`, 'target');
    case 'configurationManagerCollectionAssignmentTarget':
      throw badRequest(`Invalid value for property 'target': ${objectLabel} can't be assigned to Configuration Manager collections.`, 'target');
    default:
      throw badRequest(`Invalid value for property 'target.@odata.type': '${String(t['@odata.type'])}' is not an assignment target type.`, 'target.@odata.type');
  }
}

/** Pure: the Graph shape of a stored target. */
export function targetEntity(row: Pick<EnrollmentUserAssignmentsTable, 'target_type' | 'group_id'>): Record<string, unknown> {
  const kind = row.target_type as UserTarget['kind'];
  return {
    '@odata.type': `#${GRAPH_TYPE[kind]}`,
    deviceAndAppManagementAssignmentFilterId: null,
    deviceAndAppManagementAssignmentFilterType: 'none',
    ...(kind === 'allLicensedUsers' ? {} : { groupId: row.group_id }),
  };
}

export function rowTarget(row: Pick<EnrollmentUserAssignmentsTable, 'target_type' | 'group_id'>): UserTarget {
  if (row.target_type === 'allLicensedUsers') return { kind: 'allLicensedUsers' };
  return { kind: row.target_type as 'group' | 'exclusionGroup', groupId: row.group_id ?? '' };
}

/**
 * Pure: does an object with these assignments apply to a user in these groups? An exclusion
 * wins over any inclusion (Intune's rule); an object with no assignments applies to no one.
 */
export function appliesToUser(targets: readonly UserTarget[], userGroupIds: ReadonlySet<string>): boolean {
  let included = false;
  for (const t of targets) {
    if (t.kind === 'exclusionGroup' && userGroupIds.has(t.groupId)) return false;
    if (t.kind === 'allLicensedUsers' || (t.kind === 'group' && userGroupIds.has(t.groupId))) included = true;
  }
  return included;
}

const targetKey = (t: UserTarget) => (t.kind === 'allLicensedUsers' ? 'allLicensedUsers' : t.groupId);

/**
 * A group may be a target only when it holds users: dynamic groups (their rules select devices)
 * and groups with device members are refused with a 400 naming the group.
 */
export async function assertUserGroup(db: Executor, tenantId: string, groupId: string, objectLabel: string): Promise<void> {
  const group = await db.selectFrom('groups').select(['id', 'display_name', 'group_types']).where('tenant_id', '=', tenantId).where('id', '=', groupId).executeTakeFirst();
  if (!group) throw badRequest(`Invalid value for property 'target.groupId': group '${groupId}' was not found.`, 'target.groupId');
  const types = JSON.parse(group.group_types) as string[];
  if (types.includes('DynamicMembership')) {
    throw badRequest(`Invalid value for property 'target': group '${group.display_name}' (${groupId}) is a dynamic device group; ${objectLabel} can be assigned to user groups only.`, 'target');
  }
  const device = await db
    .selectFrom('group_members')
    .select('member_id')
    .where('tenant_id', '=', tenantId)
    .where('group_id', '=', groupId)
    .where('member_type', '=', 'device')
    .limit(1)
    .executeTakeFirst();
  if (device) {
    throw badRequest(`Invalid value for property 'target': group '${group.display_name}' (${groupId}) contains devices; ${objectLabel} can be assigned to user groups only.`, 'target');
  }
}

/** Reads and writes one object type's assignments. Callers check the parent object's existence and scope. */
export class UserAssignments {
  constructor(
    readonly objectType: string,
    private readonly objectLabel: string,
  ) {}

  base(db: Executor, tenantId: string, objectId: string) {
    return db
      .selectFrom('enrollment_user_assignments')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('object_type', '=', this.objectType)
      .where('object_id', '=', objectId);
  }

  async list(db: Executor, tenantId: string, objectId: string): Promise<EnrollmentUserAssignmentsTable[]> {
    return this.base(db, tenantId, objectId).orderBy('created_at').orderBy('id').execute();
  }

  async get(db: Executor, tenantId: string, objectId: string, id: string): Promise<EnrollmentUserAssignmentsTable> {
    const row = await this.base(db, tenantId, objectId).where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound(`Assignment '${id}' was not found.`);
    return row;
  }

  private async checkTarget(trx: Trx, tenantId: string, objectId: string, target: UserTarget, exceptId?: string): Promise<void> {
    if (target.kind !== 'allLicensedUsers') await assertUserGroup(trx, tenantId, target.groupId, this.objectLabel);
    let q = this.base(trx, tenantId, objectId).where('target_key', '=', targetKey(target));
    if (exceptId) q = q.where('id', '<>', exceptId);
    const clash = await q.executeTakeFirst();
    if (clash) {
      const what = target.kind === 'allLicensedUsers' ? 'all users' : `group '${target.groupId}'`;
      throw conflict(`Assignment '${clash.id}' already targets ${what}; a target can be assigned once (included or excluded).`, 'target');
    }
  }

  async create(trx: Trx, tenantId: string, objectId: string, target: UserTarget, now: string): Promise<EnrollmentUserAssignmentsTable> {
    await this.checkTarget(trx, tenantId, objectId, target);
    const row: EnrollmentUserAssignmentsTable = {
      id: crypto.randomUUID(),
      tenant_id: tenantId,
      object_type: this.objectType,
      object_id: objectId,
      target_type: target.kind,
      group_id: target.kind === 'allLicensedUsers' ? null : target.groupId,
      target_key: targetKey(target),
      created_at: now,
    };
    await trx.insertInto('enrollment_user_assignments').values(row).execute();
    return row;
  }

  async update(trx: Trx, tenantId: string, objectId: string, id: string, target: UserTarget): Promise<{ before: EnrollmentUserAssignmentsTable; after: EnrollmentUserAssignmentsTable }> {
    const before = await this.get(trx, tenantId, objectId, id);
    await this.checkTarget(trx, tenantId, objectId, target, id);
    const after = { ...before, target_type: target.kind, group_id: target.kind === 'allLicensedUsers' ? null : target.groupId, target_key: targetKey(target) };
    await trx
      .updateTable('enrollment_user_assignments')
      .set({ target_type: after.target_type, group_id: after.group_id, target_key: after.target_key })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .execute();
    return { before, after };
  }

  async delete(trx: Trx, tenantId: string, objectId: string, id: string): Promise<EnrollmentUserAssignmentsTable> {
    const row = await this.get(trx, tenantId, objectId, id);
    await trx.deleteFrom('enrollment_user_assignments').where('tenant_id', '=', tenantId).where('id', '=', id).execute();
    return row;
  }

  async deleteAll(trx: Trx, tenantId: string, objectId: string): Promise<void> {
    await trx
      .deleteFrom('enrollment_user_assignments')
      .where('tenant_id', '=', tenantId)
      .where('object_type', '=', this.objectType)
      .where('object_id', '=', objectId)
      .execute();
  }

  /** Ids of the objects of this type that apply to a user in these groups. */
  async objectsForUser(db: Executor, tenantId: string, userGroupIds: readonly string[]): Promise<string[]> {
    const groups = [...new Set(userGroupIds)];
    const rows = await db
      .selectFrom('enrollment_user_assignments')
      .select(['object_id', 'target_type', 'group_id'])
      .where('tenant_id', '=', tenantId)
      .where('object_type', '=', this.objectType)
      .where((eb) => (groups.length > 0 ? eb.or([eb('target_type', '=', 'allLicensedUsers'), eb('group_id', 'in', groups)]) : eb('target_type', '=', 'allLicensedUsers')))
      .execute();
    const byObject = new Map<string, UserTarget[]>();
    for (const r of rows) byObject.set(r.object_id, [...(byObject.get(r.object_id) ?? []), rowTarget(r)]);
    const set = new Set(groups);
    return [...byObject].filter(([, targets]) => appliesToUser(targets, set)).map(([id]) => id);
  }
}
