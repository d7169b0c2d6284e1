import crypto from 'node:crypto';
import type { Actor } from '../auth/principal.js';
import type { AuditLog } from '../audit/audit-log.js';
import { badRequest, invalidProperty, notFound } from '../graph/errors.js';
import { idFromODataRef } from '../graph/schemas.js';
import type { Executor, Store, Trx } from '../store/db.js';
import { isUniqueViolation } from '../store/db.js';
import type { GroupsTable, ManagedDevicesTable, UsersTable } from '../store/schema.js';
import type { Clock } from '../shared/time.js';
import { deriveMailNickname, GROUP_LIMITS, groupShapeProblem, isDynamicGroup, mailNicknameProblem, type ProcessingState } from './directory-rules.js';
import type { DynamicMembership } from './dynamic-membership.js';
import { GROUP_TYPE, parseGroupTypes, toGroup } from './entities.js';
import { MembershipRuleError, parseMembershipRule } from './membership-rules.js';
import type { UserService } from './users-service.js';

export interface GroupInput {
  displayName?: string;
  description?: string | null;
  mailNickname?: string;
  mailEnabled?: boolean;
  securityEnabled?: boolean;
  groupTypes?: string[];
  membershipRule?: string | null;
  membershipRuleProcessingState?: ProcessingState | null;
}
export type CreateGroupInput = GroupInput & { displayName: string };

export type MemberRow =
  | { type: 'user'; row: UsersTable }
  | { type: 'device'; row: ManagedDevicesTable };

const AUDIT = { category: 'Directory', componentName: 'Directory', resourceType: GROUP_TYPE } as const;

/** Graph's wording for adding a member twice. */
export const DUPLICATE_MEMBER = "One or more added object references already exist for the following modified properties: 'members'.";

function checkRule(rule: string): void {
  try {
    parseMembershipRule(rule);
  } catch (err) {
    if (err instanceof MembershipRuleError) {
      throw badRequest(`Invalid value for property 'membershipRule': ${err.message} (at position ${err.position}).`, 'membershipRule');
    }
    throw err;
  }
}

function checkShape(g: Pick<GroupsTable, 'membership_rule' | 'membership_rule_processing_state'> & { groupTypes: string[] }): void {
  const p = groupShapeProblem({ groupTypes: g.groupTypes, membershipRule: g.membership_rule, membershipRuleProcessingState: g.membership_rule_processing_state });
  if (p) throw invalidProperty(p.property, p.problem);
  if (g.membership_rule !== null) checkRule(g.membership_rule);
}

/** The kind of object an @odata.id points at: …/directoryObjects/{id}, …/users/{id}, …/devices/{id}. */
function parseMemberRef(ref: string): { kind: 'directoryObjects' | 'users' | 'devices'; id: string } {
  const path = ref.split(/[?#]/)[0]!.replace(/\/+$/, '');
  const id = idFromODataRef(path);
  const m = /\/(?:microsoft\.graph\.)?([A-Za-z]+)(?:\/[^/()]+|\([^)]*\))$/.exec(path);
  const kind = m?.[1]?.toLowerCase();
  if (!id || !kind) {
    throw badRequest("Invalid value for property '@odata.id': expected a reference such as https://graph.microsoft.com/v1.0/directoryObjects/{id}.", '@odata.id');
  }
  if (kind === 'groups') throw badRequest('Groups can\'t be members of other groups in OpenEnroll; add users or devices.', '@odata.id');
  if (kind === 'directoryobjects') return { kind: 'directoryObjects', id };
  if (kind === 'users') return { kind: 'users', id };
  if (kind === 'devices') return { kind: 'devices', id };
  throw badRequest(`Invalid value for property '@odata.id': '${m![1]}' references can't be group members; use directoryObjects, users or devices.`, '@odata.id');
}

/** Groups and their members. Dynamic groups' members come only from their rule. */
export class GroupService {
  constructor(
    private readonly store: Store,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly users: UserService,
    private readonly dynamic: DynamicMembership,
  ) {}

  base(actor: Actor) {
    return this.store.db.selectFrom('groups').selectAll().where('tenant_id', '=', actor.tenantId);
  }

  private async findRow(db: Executor, tenantId: string, id: string): Promise<GroupsTable | undefined> {
    return db.selectFrom('groups').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
  }

  private async mustFind(db: Executor, tenantId: string, id: string): Promise<GroupsTable> {
    const row = await this.findRow(db, tenantId, id);
    if (!row) throw notFound(`Group '${id}' was not found.`);
    return row;
  }

  async get(actor: Actor, id: string): Promise<Record<string, unknown>> {
    return toGroup(await this.mustFind(this.store.db, actor.tenantId, id));
  }

  async create(actor: Actor, input: CreateGroupInput): Promise<Record<string, unknown>> {
    const groupTypes = input.groupTypes ?? [];
    const dynamic = isDynamicGroup({ groupTypes });
    const now = this.clock.now().toISOString();
    const row: GroupsTable = {
      id: crypto.randomUUID(),
      tenant_id: actor.tenantId,
      display_name: input.displayName,
      description: input.description ?? null,
      mail_nickname: input.mailNickname ?? (deriveMailNickname(input.displayName, GROUP_LIMITS.mailNickname) || crypto.randomUUID().slice(0, 8)),
      mail_enabled: input.mailEnabled ? 1 : 0,
      security_enabled: input.securityEnabled === false ? 0 : 1,
      group_types: JSON.stringify(groupTypes),
      membership_rule: input.membershipRule ?? null,
      membership_rule_processing_state: input.membershipRuleProcessingState ?? (dynamic ? 'On' : null),
      created_at: now,
      updated_at: now,
    };
    this.checkNames(input);
    checkShape({ ...row, groupTypes });
    return this.store.transaction(async (trx) => {
      await trx.insertInto('groups').values(row).execute();
      if (row.membership_rule !== null && row.membership_rule_processing_state === 'On') {
        await this.dynamic.evaluateGroup(trx, actor.tenantId, row.id, row.membership_rule);
      }
      const group = toGroup(row);
      await this.audit.record(trx, actor, { ...AUDIT, activity: 'Add group', operation: 'Create', resourceId: row.id, resourceDisplayName: row.display_name, after: group });
      return group;
    });
  }

  private checkNames(input: GroupInput): void {
    if (input.displayName !== undefined && input.displayName.trim() === '') throw invalidProperty('displayName', 'must not be empty');
    if (input.mailNickname !== undefined) {
      const p = mailNicknameProblem(input.mailNickname, GROUP_LIMITS.mailNickname);
      if (p) throw invalidProperty('mailNickname', p);
    }
  }

  async update(actor: Actor, id: string, patch: GroupInput): Promise<Record<string, unknown>> {
    this.checkNames(patch);
    return this.store.transaction(async (trx) => {
      const before = await this.mustFind(trx, actor.tenantId, id);
      const oldTypes = parseGroupTypes(before.group_types);
      const groupTypes = patch.groupTypes ?? oldTypes;
      const wasDynamic = isDynamicGroup({ groupTypes: oldTypes });
      const dynamic = isDynamicGroup({ groupTypes });
      let rule = patch.membershipRule === undefined ? before.membership_rule : patch.membershipRule;
      let state = patch.membershipRuleProcessingState === undefined ? before.membership_rule_processing_state : patch.membershipRuleProcessingState;
      if (wasDynamic && !dynamic) {
        // Turning a dynamic group into an assigned one drops its rule unless the caller sets one (refused below).
        if (patch.membershipRule === undefined) rule = null;
        if (patch.membershipRuleProcessingState === undefined) state = null;
      }
      if (dynamic && state === null) state = 'On';
      const after: GroupsTable = {
        ...before,
        display_name: patch.displayName ?? before.display_name,
        description: patch.description === undefined ? before.description : patch.description,
        mail_nickname: patch.mailNickname ?? before.mail_nickname,
        mail_enabled: patch.mailEnabled === undefined ? before.mail_enabled : patch.mailEnabled ? 1 : 0,
        security_enabled: patch.securityEnabled === undefined ? before.security_enabled : patch.securityEnabled ? 1 : 0,
        group_types: JSON.stringify(groupTypes),
        membership_rule: rule,
        membership_rule_processing_state: state,
        updated_at: this.clock.now().toISOString(),
      };
      checkShape({ ...after, groupTypes });
      const { id: _id, tenant_id: _tenant, created_at: _created, ...changes } = after;
      await trx.updateTable('groups').set(changes).where('tenant_id', '=', actor.tenantId).where('id', '=', id).execute();

      if (!wasDynamic && dynamic) {
        // Entra replaces an assigned group's members with the rule's result.
        await trx.deleteFrom('group_members').where('group_id', '=', id).execute();
      } else if (wasDynamic && !dynamic) {
        // …and keeps a formerly dynamic group's members, now as assigned ones.
        await trx.updateTable('group_members').set({ source: 'assigned' }).where('group_id', '=', id).execute();
      }
      const ruleChanged = after.membership_rule !== before.membership_rule;
      const resumed = before.membership_rule_processing_state !== 'On';
      if (dynamic && after.membership_rule !== null && after.membership_rule_processing_state === 'On' && (ruleChanged || resumed || !wasDynamic)) {
        await this.dynamic.evaluateGroup(trx, actor.tenantId, id, after.membership_rule);
      }
      const group = toGroup(after);
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Update group',
        operation: 'Patch',
        resourceId: id,
        resourceDisplayName: after.display_name,
        before: toGroup(before),
        after: group,
      });
      return group;
    });
  }

  async delete(actor: Actor, id: string): Promise<void> {
    await this.store.transaction(async (trx) => {
      const row = await this.mustFind(trx, actor.tenantId, id);
      await trx.deleteFrom('group_members').where('tenant_id', '=', actor.tenantId).where('group_id', '=', id).execute();
      await trx.deleteFrom('groups').where('tenant_id', '=', actor.tenantId).where('id', '=', id).execute();
      await this.audit.record(trx, actor, { ...AUDIT, activity: 'Delete group', operation: 'Delete', resourceId: id, resourceDisplayName: row.display_name, before: toGroup(row) });
    });
  }

  /** Membership rows of a group the actor can see (404 when the group isn't the tenant's). */
  async membersBase(actor: Actor, groupId: string) {
    await this.mustFind(this.store.db, actor.tenantId, groupId);
    return this.store.db.selectFrom('group_members').selectAll().where('tenant_id', '=', actor.tenantId).where('group_id', '=', groupId);
  }

  /** Loads the users and devices behind membership rows, in the rows' order. */
  async hydrateMembers(tenantId: string, rows: { member_id: string; member_type: string }[]): Promise<MemberRow[]> {
    const userIds = rows.filter((r) => r.member_type === 'user').map((r) => r.member_id);
    const deviceIds = rows.filter((r) => r.member_type === 'device').map((r) => r.member_id);
    const users = userIds.length ? await this.store.db.selectFrom('users').selectAll().where('tenant_id', '=', tenantId).where('id', 'in', userIds).execute() : [];
    const devices = deviceIds.length
      ? await this.store.db.selectFrom('managed_devices').selectAll().where('tenant_id', '=', tenantId).where('id', 'in', deviceIds).execute()
      : [];
    const byId = new Map<string, MemberRow>([
      ...users.map((u) => [u.id, { type: 'user', row: u }] as const),
      ...devices.map((d) => [d.id, { type: 'device', row: d }] as const),
    ]);
    return rows.map((r) => byId.get(r.member_id)).filter((m): m is MemberRow => m !== undefined);
  }

  private async resolveMember(trx: Trx, tenantId: string, ref: { kind: string; id: string }): Promise<{ id: string; type: 'user' | 'device'; displayName: string | null }> {
    if (ref.kind !== 'devices') {
      const user = await this.users.findRow(trx, tenantId, ref.id);
      if (user) return { id: user.id, type: 'user', displayName: user.display_name };
    }
    if (ref.kind !== 'users') {
      const device = await trx.selectFrom('managed_devices').select(['id', 'device_name']).where('tenant_id', '=', tenantId).where('id', '=', ref.id).executeTakeFirst();
      if (device) return { id: device.id, type: 'device', displayName: device.device_name };
    }
    if (ref.kind === 'directoryObjects' && (await this.findRow(trx, tenantId, ref.id))) {
      throw badRequest('Groups can\'t be members of other groups in OpenEnroll; add users or devices.', '@odata.id');
    }
    throw notFound(`Resource '${ref.id}' does not exist or one of its queried reference-property objects are not present.`);
  }

  private refuseIfDynamic(group: GroupsTable): void {
    if (isDynamicGroup({ groupTypes: parseGroupTypes(group.group_types) })) {
      throw badRequest("The members of a dynamic group come from its membershipRule; they can't be added or removed by hand.", 'members');
    }
  }

  async addMember(actor: Actor, groupId: string, odataId: string): Promise<void> {
    const ref = parseMemberRef(odataId);
    try {
      await this.store.transaction(async (trx) => {
        const group = await this.mustFind(trx, actor.tenantId, groupId);
        this.refuseIfDynamic(group);
        const member = await this.resolveMember(trx, actor.tenantId, ref);
        if (member.type === 'device' && parseGroupTypes(group.group_types).includes('Unified')) {
          throw badRequest('Microsoft 365 (Unified) groups can hold only users, not devices.', '@odata.id');
        }
        const existing = await trx.selectFrom('group_members').select('member_id').where('group_id', '=', groupId).where('member_id', '=', member.id).executeTakeFirst();
        if (existing) throw badRequest(DUPLICATE_MEMBER, 'members');
        await trx
          .insertInto('group_members')
          .values({ tenant_id: actor.tenantId, group_id: groupId, member_id: member.id, member_type: member.type, source: 'assigned', created_at: this.clock.now().toISOString() })
          .execute();
        await this.audit.record(trx, actor, {
          ...AUDIT,
          activity: 'Add member to group',
          operation: 'Action',
          resourceId: groupId,
          resourceDisplayName: group.display_name,
          after: { member: { id: member.id, type: member.type, displayName: member.displayName } },
        });
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw badRequest(DUPLICATE_MEMBER, 'members');
      throw err;
    }
  }

  async removeMember(actor: Actor, groupId: string, memberId: string): Promise<void> {
    await this.store.transaction(async (trx) => {
      const group = await this.mustFind(trx, actor.tenantId, groupId);
      this.refuseIfDynamic(group);
      const row = await trx.selectFrom('group_members').selectAll().where('tenant_id', '=', actor.tenantId).where('group_id', '=', groupId).where('member_id', '=', memberId).executeTakeFirst();
      if (!row) throw notFound(`'${memberId}' is not a member of group '${groupId}'.`);
      await trx.deleteFrom('group_members').where('group_id', '=', groupId).where('member_id', '=', memberId).execute();
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Remove member from group',
        operation: 'Action',
        resourceId: groupId,
        resourceDisplayName: group.display_name,
        before: { member: { id: memberId, type: row.member_type } },
      });
    });
  }

  /** Ids of the groups an object (user or device) belongs to: what enrollment targets by. */
  async groupIdsOf(db: Executor, tenantId: string, memberId: string): Promise<string[]> {
    const rows = await db.selectFrom('group_members').select('group_id').where('tenant_id', '=', tenantId).where('member_id', '=', memberId).execute();
    return rows.map((r) => r.group_id);
  }
}
