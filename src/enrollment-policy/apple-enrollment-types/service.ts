import crypto from 'node:crypto';
import { sql } from 'kysely';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Actor } from '../../auth/principal.js';
import { assertTagsExist, deleteObjectTags, readObjectTags, tagsForNewObject, whereVisible, writeObjectTags, patchObjectTags } from '../../auth/scope-tags.js';
import { compareTagIds } from '../../devices/model.js';
import { invalidProperty, notFound } from '../../graph/errors.js';
import type { Clock } from '../../shared/time.js';
import type { Executor, Store, Trx } from '../../store/db.js';
import type { AppleEnrollmentTypeProfilesTable, EnrollmentUserAssignmentsTable } from '../../store/schema.js';
import { UserAssignments, parseUserTarget } from '../terms/user-targets.js';
import { planInsert, planMove, planRemove } from './priorities.js';
import {
  APPLE_PROFILE_OBJECT,
  APPLE_PROFILE_TYPE,
  enrollmentKind,
  parseOptions,
  storedOptions,
  toProfileEntity,
  type AppleEnrollmentType,
  type ApplePlatform,
  type EnrollmentTypeOption,
} from './rules.js';

export interface ProfileInput {
  displayName?: string;
  description?: string | null;
  defaultEnrollmentType?: AppleEnrollmentType;
  availableEnrollmentTypeOptions?: unknown;
  platform?: ApplePlatform;
  priority?: number;
  roleScopeTagIds?: string[];
}

/** The enrollment type that applies to a user, for the enrollment gate and the enrollment page. */
export interface ResolvedEnrollmentType {
  profileId: string;
  displayName: string;
  /** 'userChoice' when the user answers who owns the device (see chooseEnrollment). */
  type: 'device' | 'user' | 'userChoice';
  /** The profile's exact default type (device, user, accountDrivenUserEnrollment, webDeviceEnrollment). */
  defaultEnrollmentType: AppleEnrollmentType;
  options: EnrollmentTypeOption[];
  priority: number;
}

const AUDIT = { resourceType: APPLE_PROFILE_TYPE, category: 'Enrollment', componentName: 'Enrollment' } as const;
const LABEL = 'enrollment type profiles';

/** Apple enrollment type profiles ("Enrollment types"), their user-group assignments and priorities. */
export class AppleEnrollmentTypeService {
  readonly assignments = new UserAssignments(APPLE_PROFILE_OBJECT, LABEL);

  constructor(
    private readonly store: Store,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  base(actor: Actor) {
    const q = this.store.db.selectFrom('apple_enrollment_type_profiles').selectAll().where('tenant_id', '=', actor.tenantId);
    return whereVisible(q, actor.principal, APPLE_PROFILE_OBJECT, 'apple_enrollment_type_profiles.id');
  }

  async toEntities(tenantId: string, rows: readonly AppleEnrollmentTypeProfilesTable[], db: Executor = this.store.db): Promise<Record<string, unknown>[]> {
    const tags = await readObjectTags(db, tenantId, APPLE_PROFILE_OBJECT, rows.map((r) => r.id));
    return rows.map((r) => toProfileEntity(r, (tags.get(r.id) ?? []).sort(compareTagIds)));
  }

  async row(actor: Actor, id: string, db: Executor = this.store.db): Promise<AppleEnrollmentTypeProfilesTable> {
    const q = db.selectFrom('apple_enrollment_type_profiles').selectAll().where('tenant_id', '=', actor.tenantId).where('id', '=', id);
    const row = await whereVisible(q, actor.principal, APPLE_PROFILE_OBJECT, 'apple_enrollment_type_profiles.id').executeTakeFirst();
    if (!row) throw notFound(`Enrollment type profile '${id}' was not found.`);
    return row;
  }

  async get(actor: Actor, id: string): Promise<Record<string, unknown>> {
    return (await this.toEntities(actor.tenantId, [await this.row(actor, id)]))[0]!;
  }

  /** Serialises priority changes of a tenant (PostgreSQL row lock; SQLite runs one writer at a time). */
  private async lockTenant(trx: Trx, tenantId: string): Promise<void> {
    if (this.store.dialect === 'postgres') await sql`select id from tenants where id = ${tenantId} for update`.execute(trx);
  }

  private async priorityList(trx: Trx, tenantId: string, platform: string) {
    return trx
      .selectFrom('apple_enrollment_type_profiles')
      .select(['id', 'priority'])
      .where('tenant_id', '=', tenantId)
      .where('platform', '=', platform)
      .orderBy('priority')
      .orderBy('id')
      .execute();
  }

  private async writePriorities(trx: Trx, tenantId: string, planned: Map<string, number>, current: readonly { id: string; priority: number }[], now: string): Promise<void> {
    const before = new Map(current.map((r) => [r.id, r.priority]));
    for (const [id, priority] of planned) {
      if (before.get(id) === priority) continue;
      await trx.updateTable('apple_enrollment_type_profiles').set({ priority, updated_at: now }).where('tenant_id', '=', tenantId).where('id', '=', id).execute();
    }
  }

  async create(actor: Actor, input: ProfileInput & { displayName: string }): Promise<Record<string, unknown>> {
    const now = this.clock.now().toISOString();
    const options = parseOptions(input.availableEnrollmentTypeOptions);
    checkName(input.displayName);
    checkPriority(input.priority);
    const tags = tagsForNewObject(actor.principal, input.roleScopeTagIds).sort(compareTagIds);
    return this.store.transaction(async (trx) => {
      await assertTagsExist(trx, actor.tenantId, tags);
      await this.lockTenant(trx, actor.tenantId);
      const platform = input.platform ?? 'iOS';
      const list = await this.priorityList(trx, actor.tenantId, platform);
      const id = crypto.randomUUID();
      const planned = planInsert(list, id, input.priority);
      const row: AppleEnrollmentTypeProfilesTable = {
        id,
        tenant_id: actor.tenantId,
        display_name: input.displayName,
        description: input.description ?? null,
        platform,
        // The console preselects device enrollment.
        default_enrollment_type: input.defaultEnrollmentType ?? 'device',
        available_options: JSON.stringify(options),
        priority: planned.get(id)!,
        created_at: now,
        updated_at: now,
      };
      await this.writePriorities(trx, actor.tenantId, new Map([...planned].filter(([k]) => k !== id)), list, now);
      await trx.insertInto('apple_enrollment_type_profiles').values(row).execute();
      await writeObjectTags(trx, actor.tenantId, APPLE_PROFILE_OBJECT, id, tags);
      const entity = toProfileEntity(row, tags);
      await this.audit.record(trx, actor, { ...AUDIT, activity: 'Create enrollment type profile', operation: 'Create', resourceId: id, resourceDisplayName: row.display_name, after: entity });
      return entity;
    });
  }

  async update(actor: Actor, id: string, patch: ProfileInput): Promise<Record<string, unknown>> {
    const options = patch.availableEnrollmentTypeOptions === undefined ? undefined : parseOptions(patch.availableEnrollmentTypeOptions);
    if (patch.displayName !== undefined) checkName(patch.displayName);
    return this.store.transaction(async (trx) => {
      const before = await this.row(actor, id, trx);
      if (patch.platform !== undefined && patch.platform !== before.platform) {
        throw invalidProperty('platform', `a profile's platform can't change (it is '${before.platform}'); create a profile for '${patch.platform}' instead.`);
      }
      if (patch.priority !== undefined && patch.priority !== before.priority) {
        throw invalidProperty('priority', `use the setPriority action to change a profile's priority (it is ${before.priority}).`);
      }
      const beforeTags = (await readObjectTags(trx, actor.tenantId, APPLE_PROFILE_OBJECT, [id])).get(id)!.sort(compareTagIds);
      const after: AppleEnrollmentTypeProfilesTable = {
        ...before,
        display_name: patch.displayName ?? before.display_name,
        description: patch.description === undefined ? before.description : patch.description,
        default_enrollment_type: patch.defaultEnrollmentType ?? before.default_enrollment_type,
        available_options: options === undefined ? before.available_options : JSON.stringify(options),
        updated_at: this.clock.now().toISOString(),
      };
      let tags = beforeTags;
      if (patch.roleScopeTagIds !== undefined) {
        tags = await patchObjectTags(trx, actor, { type: APPLE_PROFILE_OBJECT, id, label: 'an object' }, beforeTags, patch.roleScopeTagIds);
      }
      await trx
        .updateTable('apple_enrollment_type_profiles')
        .set({
          display_name: after.display_name,
          description: after.description,
          default_enrollment_type: after.default_enrollment_type,
          available_options: after.available_options,
          updated_at: after.updated_at,
        })
        .where('tenant_id', '=', actor.tenantId)
        .where('id', '=', id)
        .execute();
      const entity = toProfileEntity(after, tags);
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Patch enrollment type profile',
        operation: 'Patch',
        resourceId: id,
        resourceDisplayName: after.display_name,
        before: toProfileEntity(before, beforeTags),
        after: entity,
      });
      return entity;
    });
  }

  async delete(actor: Actor, id: string): Promise<void> {
    await this.store.transaction(async (trx) => {
      const row = await this.row(actor, id, trx);
      await this.lockTenant(trx, actor.tenantId);
      const tags = (await readObjectTags(trx, actor.tenantId, APPLE_PROFILE_OBJECT, [id])).get(id)!.sort(compareTagIds);
      const list = await this.priorityList(trx, actor.tenantId, row.platform);
      await this.assignments.deleteAll(trx, actor.tenantId, id);
      await trx.deleteFrom('apple_enrollment_type_profiles').where('tenant_id', '=', actor.tenantId).where('id', '=', id).execute();
      await deleteObjectTags(trx, actor.tenantId, APPLE_PROFILE_OBJECT, id);
      await this.writePriorities(trx, actor.tenantId, planRemove(list, id), list, this.clock.now().toISOString());
      await this.audit.record(trx, actor, { ...AUDIT, activity: 'Delete enrollment type profile', operation: 'Delete', resourceId: id, resourceDisplayName: row.display_name, before: toProfileEntity(row, tags) });
    });
  }

  /** Moves a profile to `priority` (0 is highest); the others shift to stay contiguous. */
  async setPriority(actor: Actor, id: string, priority: number): Promise<void> {
    checkPriority(priority);
    await this.store.transaction(async (trx) => {
      const row = await this.row(actor, id, trx);
      await this.lockTenant(trx, actor.tenantId);
      const list = await this.priorityList(trx, actor.tenantId, row.platform);
      const planned = planMove(list, id, priority);
      await this.writePriorities(trx, actor.tenantId, planned, list, this.clock.now().toISOString());
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Set enrollment type profile priority',
        operation: 'Action',
        resourceId: id,
        resourceDisplayName: row.display_name,
        before: { priority: row.priority },
        after: { priority: planned.get(id) },
      });
    });
  }

  // ---- assignments ----

  async listAssignments(actor: Actor, profileId: string): Promise<EnrollmentUserAssignmentsTable[]> {
    await this.row(actor, profileId);
    return this.assignments.list(this.store.db, actor.tenantId, profileId);
  }

  async getAssignment(actor: Actor, profileId: string, id: string): Promise<EnrollmentUserAssignmentsTable> {
    await this.row(actor, profileId);
    return this.assignments.get(this.store.db, actor.tenantId, profileId, id);
  }

  async createAssignment(actor: Actor, profileId: string, rawTarget: unknown): Promise<EnrollmentUserAssignmentsTable> {
    const target = parseUserTarget(rawTarget, LABEL);
    return this.store.transaction(async (trx) => {
      const profile = await this.row(actor, profileId, trx);
      const row = await this.assignments.create(trx, actor.tenantId, profileId, target, this.clock.now().toISOString());
      await this.auditAssignment(trx, actor, profile, 'Create enrollment type profile assignment', 'Create', null, row);
      return row;
    });
  }

  async updateAssignment(actor: Actor, profileId: string, id: string, rawTarget: unknown): Promise<EnrollmentUserAssignmentsTable> {
    const target = parseUserTarget(rawTarget, LABEL);
    return this.store.transaction(async (trx) => {
      const profile = await this.row(actor, profileId, trx);
      const { before, after } = await this.assignments.update(trx, actor.tenantId, profileId, id, target);
      await this.auditAssignment(trx, actor, profile, 'Patch enrollment type profile assignment', 'Patch', before, after);
      return after;
    });
  }

  async deleteAssignment(actor: Actor, profileId: string, id: string): Promise<void> {
    await this.store.transaction(async (trx) => {
      const profile = await this.row(actor, profileId, trx);
      const row = await this.assignments.delete(trx, actor.tenantId, profileId, id);
      await this.auditAssignment(trx, actor, profile, 'Delete enrollment type profile assignment', 'Delete', row, null);
    });
  }

  private async auditAssignment(
    trx: Trx,
    actor: Actor,
    profile: AppleEnrollmentTypeProfilesTable,
    activity: string,
    operation: 'Create' | 'Patch' | 'Delete',
    before: EnrollmentUserAssignmentsTable | null,
    after: EnrollmentUserAssignmentsTable | null,
  ): Promise<void> {
    const show = (r: EnrollmentUserAssignmentsTable | null) => (r ? { assignmentId: r.id, targetType: r.target_type, groupId: r.group_id } : null);
    await this.audit.record(trx, actor, { ...AUDIT, activity, operation, resourceId: profile.id, resourceDisplayName: profile.display_name, before: show(before), after: show(after) });
  }

  /**
   * The enrollment type profile that applies to a user (assigned through "all users" or one of
   * their groups, not excluded): the one with the highest priority (lowest number) for the platform.
   * `userId` is part of the contract for per-user rules; membership comes from `userGroupIds`.
   */
  async resolveAppleEnrollmentType(
    db: Executor,
    tenantId: string,
    _userId: string,
    userGroupIds: readonly string[],
    platform: ApplePlatform = 'iOS',
  ): Promise<ResolvedEnrollmentType | undefined> {
    const ids = await this.assignments.objectsForUser(db, tenantId, userGroupIds);
    if (ids.length === 0) return undefined;
    const row = await db
      .selectFrom('apple_enrollment_type_profiles')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('platform', '=', platform)
      .where('id', 'in', ids)
      .orderBy('priority')
      .orderBy('id')
      .limit(1)
      .executeTakeFirst();
    if (!row) return undefined;
    const options = storedOptions(row);
    const defaultType = row.default_enrollment_type as AppleEnrollmentType;
    return {
      profileId: row.id,
      displayName: row.display_name,
      type: options.length > 0 ? 'userChoice' : enrollmentKind(defaultType),
      defaultEnrollmentType: defaultType,
      options,
      priority: row.priority,
    };
  }
}

function checkName(name: string): void {
  if (name.trim() === '') throw invalidProperty('displayName', 'must not be empty.');
}

function checkPriority(priority: number | undefined): void {
  if (priority !== undefined && (!Number.isInteger(priority) || priority < 0)) throw invalidProperty('priority', 'must be a whole number of at least 0 (0 is the highest priority).');
}
