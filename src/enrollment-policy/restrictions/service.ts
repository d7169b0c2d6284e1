import type { AuditLog } from '../../audit/audit-log.js';
import type { Actor } from '../../auth/principal.js';
import {
  assertTagsExist,
  assertWithinScope,
  DEFAULT_SCOPE_TAG_ID,
  deleteObjectTags,
  readObjectTags,
  tagsForNewObject,
  whereVisible,
  writeObjectTags,
} from '../../auth/scope-tags.js';
import { compareTagIds, mergeScopeTags } from '../../devices/model.js';
import { badRequest, conflict, invalidProperty, notFound } from '../../graph/errors.js';
import type { ApiVersion } from '../../graph/http.js';
import type { Clock } from '../../shared/time.js';
import type { Executor, Store, Trx } from '../../store/db.js';
import type { EnrollmentConfigurationAssignmentsTable, EnrollmentConfigurationsTable } from '../../store/schema.js';
import { enrollmentFilterProblem, FILTER_OBJECT, FILTER_PLATFORM_OF } from './filters-model.js';
import {
  assignmentId,
  auditSnapshot,
  CONFIGURATION_OBJECT,
  configurationTypeName,
  defaultConfigurationRows,
  DEFAULT_LIMIT,
  defaultLimitId,
  defaultPlatformId,
  LIMIT_LIST,
  MAX_ASSIGNMENTS,
  newConfigurationId,
  parsePatchConfiguration,
  platformList,
  targetKey,
  toAssignmentEntity,
  toConfigurationEntity,
  type AssignmentInput,
  type CreatablePlatform,
  type CreateConfigurationInput,
} from './model.js';
import {
  canAddPolicy,
  insertPriority,
  MAX_POLICIES_PER_TYPE,
  PriorityError,
  removePolicy,
  setPriority,
  type PrioritizedPolicy,
} from '../evaluation/priorities.js';

const AUDIT = { category: 'Enrollment', componentName: 'Enrollment' } as const;

const LIST_LABEL = (list: string) => (list === LIMIT_LIST ? 'device limit restriction' : `${list.slice('platform:'.length)} platform restriction`);

/** An assignment input with where it came from in the request, for error messages. */
export interface PlacedAssignment {
  input: AssignmentInput;
  path: string;
}

/**
 * Enrollment restrictions: device platform restrictions and device limit restrictions, their
 * priorities, assignments and the tenant defaults. Every change runs in one transaction with its
 * audit event; priority changes lock the tenant's default rows first so concurrent changes on
 * PostgreSQL renumber one after another (SQLite serialises writers anyway).
 * Edits bump `version` and apply to new enrollments only: nothing here re-evaluates devices.
 */
export class RestrictionService {
  /** Tenants whose default policies are known to exist (they can't be deleted, so this never goes stale). */
  private readonly defaultsReady = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  /**
   * Creates the tenant's default policies on first use. Race-safe: concurrent callers insert with
   * ON CONFLICT DO NOTHING, and only the one whose insert landed tags the row.
   */
  async ensureDefaults(tenantId: string): Promise<void> {
    if (this.defaultsReady.has(tenantId)) return;
    const rows = defaultConfigurationRows(tenantId);
    const present = await this.store.db
      .selectFrom('enrollment_configurations')
      .select('id')
      .where('tenant_id', '=', tenantId)
      .where('id', 'in', rows.map((r) => r.id))
      .execute();
    if (present.length < rows.length) {
      await this.store.transaction(async (trx) => {
        for (const row of rows) {
          const inserted = await trx
            .insertInto('enrollment_configurations')
            .values(row)
            .onConflict((oc) => oc.columns(['tenant_id', 'id']).doNothing())
            .returning('id')
            .executeTakeFirst();
          if (inserted) await writeObjectTags(trx, tenantId, CONFIGURATION_OBJECT, row.id, [DEFAULT_SCOPE_TAG_ID]);
        }
      });
    }
    this.defaultsReady.add(tenantId);
  }

  // ---- reads ----

  /** The policies the caller may see (tenant and scope filtered); v1.0 has no single-platform type. */
  base(actor: Actor, version: ApiVersion, db: Executor = this.store.db) {
    let q = db.selectFrom('enrollment_configurations').selectAll().where('enrollment_configurations.tenant_id', '=', actor.tenantId);
    if (version === 'v1.0') q = q.where('configuration_type', '!=', 'singlePlatformRestriction');
    return whereVisible(q, actor.principal, CONFIGURATION_OBJECT, 'enrollment_configurations.id');
  }

  /** One visible policy; `lock` holds its row for the transaction (PostgreSQL) so concurrent edits and assigns queue. */
  private async find(db: Executor, actor: Actor, id: string, version: ApiVersion, lock = false): Promise<EnrollmentConfigurationsTable> {
    const q = this.base(actor, version, db).where('id', '=', id);
    const row = await (lock && this.store.dialect === 'postgres' ? q.forUpdate() : q).executeTakeFirst();
    if (!row) throw notFound(`Device enrollment configuration '${id}' was not found.`);
    return row;
  }

  private async tagsOf(db: Executor, tenantId: string, id: string): Promise<string[]> {
    return ((await readObjectTags(db, tenantId, CONFIGURATION_OBJECT, [id])).get(id) ?? []).sort(compareTagIds);
  }

  private async assignmentRows(db: Executor, tenantId: string, ids: readonly string[]): Promise<EnrollmentConfigurationAssignmentsTable[]> {
    if (ids.length === 0) return [];
    const out: EnrollmentConfigurationAssignmentsTable[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      out.push(
        ...(await db
          .selectFrom('enrollment_configuration_assignments')
          .selectAll()
          .where('tenant_id', '=', tenantId)
          .where('configuration_id', 'in', ids.slice(i, i + 500))
          .orderBy('position')
          .orderBy('id')
          .execute()),
      );
    }
    return out;
  }

  /** Entities for rows, with @odata.type; `expandAssignments` adds the assignments navigation. */
  async toEntities(
    tenantId: string,
    rows: readonly EnrollmentConfigurationsTable[],
    version: ApiVersion,
    expandAssignments: boolean,
    db: Executor = this.store.db,
  ): Promise<Record<string, unknown>[]> {
    const ids = rows.map((r) => r.id);
    const tags = await readObjectTags(db, tenantId, CONFIGURATION_OBJECT, ids);
    const assignments = new Map<string, Record<string, unknown>[]>();
    if (expandAssignments) {
      for (const id of ids) assignments.set(id, []);
      for (const a of await this.assignmentRows(db, tenantId, ids)) assignments.get(a.configuration_id)?.push(toAssignmentEntity(a, version));
    }
    return rows.map((r) => ({
      '@odata.type': `#${configurationTypeName(r)}`,
      ...toConfigurationEntity(r, (tags.get(r.id) ?? []).sort(compareTagIds), version),
      ...(expandAssignments ? { assignments: assignments.get(r.id) ?? [] } : {}),
    }));
  }

  async get(actor: Actor, id: string, version: ApiVersion, expandAssignments = false): Promise<Record<string, unknown>> {
    await this.ensureDefaults(actor.tenantId);
    const row = await this.find(this.store.db, actor, id, version);
    return (await this.toEntities(actor.tenantId, [row], version, expandAssignments))[0]!;
  }

  // ---- priorities ----

  /** Locks the tenant's priority lists for the rest of the transaction (PostgreSQL; SQLite serialises writers). */
  private async lockLists(trx: Trx, tenantId: string): Promise<void> {
    if (this.store.dialect !== 'postgres') return;
    await trx.selectFrom('enrollment_configurations').select('id').where('tenant_id', '=', tenantId).where('is_default', '=', 1).forUpdate().execute();
  }

  /**
   * A priority list as the engine's algebra takes it: every policy of the list, visible to the
   * caller or not (priorities are the true ones), and the type's default at 0.
   */
  private async ranked(trx: Trx, tenantId: string, list: string): Promise<PrioritizedPolicy[]> {
    const rows = await trx
      .selectFrom('enrollment_configurations')
      .select(['id', 'priority'])
      .where('tenant_id', '=', tenantId)
      .where('priority_list', '=', list)
      .where('is_default', '=', 0)
      .orderBy('priority')
      .orderBy('id')
      .execute();
    const defaultId = list === LIMIT_LIST ? defaultLimitId(tenantId) : defaultPlatformId(tenantId);
    return [...rows.map((r) => ({ ...r, isDefault: false })), { id: defaultId, priority: 0, isDefault: true }];
  }

  /** Writes the priorities that changed; returns the list before and after, for the audit record. */
  private async applyPriorities(trx: Trx, tenantId: string, before: readonly PrioritizedPolicy[], after: Map<string, number>) {
    for (const r of before) {
      const p = after.get(r.id);
      if (r.isDefault || p === undefined || p === r.priority) continue;
      await trx.updateTable('enrollment_configurations').set({ priority: p }).where('tenant_id', '=', tenantId).where('id', '=', r.id).execute();
    }
    const customs = (entries: Iterable<[string, number]>) => Object.fromEntries([...entries].filter(([, p]) => p > 0).sort((a, b) => a[1] - b[1]));
    return { before: customs(before.map((r) => [r.id, r.priority] as [string, number])), after: customs(after.entries()) };
  }

  /** The algebra's refusals as Graph errors. */
  private priorityError(err: unknown): unknown {
    if (!(err instanceof PriorityError)) return err;
    switch (err.code) {
      case 'policyNotFound':
        return notFound('The device enrollment configuration was not found.');
      case 'defaultPolicyImmutable':
        return badRequest("The default policy always has priority 0 (it is applied last) and can't be reordered.", 'priority');
      case 'priorityOutOfRange':
        return invalidProperty('priority', `${err.message}.`);
    }
  }

  // ---- writes ----

  async create(actor: Actor, input: CreateConfigurationInput, version: ApiVersion): Promise<Record<string, unknown>> {
    const { tenantId } = actor;
    await this.ensureDefaults(tenantId);
    return this.store.transaction(async (trx) => {
      const tags = tagsForNewObject(actor.principal, input.roleScopeTagIds).sort(compareTagIds);
      await assertTagsExist(trx, tenantId, tags);
      await this.lockLists(trx, tenantId);
      const list = input.kind === 'limit' ? LIMIT_LIST : platformList(input.platformType);
      const ranked = await this.ranked(trx, tenantId, list);
      if (!canAddPolicy(ranked)) {
        throw conflict(`A tenant can have at most ${MAX_POLICIES_PER_TYPE} ${LIST_LABEL(list)} policies besides the default; delete one first.`);
      }
      const id = newConfigurationId(input.kind);
      // Just above the default: no other policy moves.
      const priority = insertPriority(ranked);
      const changes = await this.applyPriorities(trx, tenantId, ranked, new Map([...ranked.map((r): [string, number] => [r.id, r.priority]), [id, priority]]));
      const now = this.clock.now().toISOString();
      const row: EnrollmentConfigurationsTable = {
        tenant_id: tenantId,
        id,
        configuration_type: input.kind,
        is_default: 0,
        priority_list: list,
        platform_type: input.kind === 'limit' ? null : input.platformType,
        display_name: input.displayName,
        description: input.description,
        priority,
        version: 1,
        device_limit: input.kind === 'limit' ? input.limit : null,
        settings: input.kind === 'limit' ? '{}' : JSON.stringify(input.restriction),
        created_at: now,
        updated_at: now,
      };
      await trx.insertInto('enrollment_configurations').values(row).execute();
      await writeObjectTags(trx, tenantId, CONFIGURATION_OBJECT, id, tags);
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Create enrollment restriction',
        operation: 'Create',
        resourceType: configurationTypeName(row),
        resourceId: id,
        resourceDisplayName: row.display_name,
        before: { priorities: changes.before },
        after: { ...auditSnapshot(row, tags), priorities: changes.after },
      });
      return (await this.toEntities(tenantId, [row], version, false, trx))[0]!;
    });
  }

  async update(actor: Actor, id: string, body: unknown, version: ApiVersion): Promise<Record<string, unknown>> {
    const { tenantId } = actor;
    await this.ensureDefaults(tenantId);
    return this.store.transaction(async (trx) => {
      const row = await this.find(trx, actor, id, version, true);
      const patch = parsePatchConfiguration(body, row, version);
      const beforeTags = await this.tagsOf(trx, tenantId, id);
      let tags = beforeTags;
      if (patch.roleScopeTagIds !== undefined) {
        const requested = patch.roleScopeTagIds.length > 0 ? patch.roleScopeTagIds : tagsForNewObject(actor.principal, []);
        assertWithinScope(actor.principal, requested);
        tags = mergeScopeTags(beforeTags, requested, actor.principal.scopeTagIds);
        await assertTagsExist(trx, tenantId, tags);
      }
      const updated: EnrollmentConfigurationsTable = { ...row, ...patch.columns, version: row.version + 1, updated_at: this.clock.now().toISOString() };
      await trx
        .updateTable('enrollment_configurations')
        .set({
          display_name: updated.display_name,
          description: updated.description,
          device_limit: updated.device_limit,
          settings: updated.settings,
          version: updated.version,
          updated_at: updated.updated_at,
        })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .execute();
      if (tags !== beforeTags) await writeObjectTags(trx, tenantId, CONFIGURATION_OBJECT, id, tags);
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Patch enrollment restriction',
        operation: 'Patch',
        resourceType: configurationTypeName(row),
        resourceId: id,
        resourceDisplayName: updated.display_name,
        before: auditSnapshot(row, beforeTags),
        after: auditSnapshot(updated, tags),
      });
      return (await this.toEntities(tenantId, [updated], version, false, trx))[0]!;
    });
  }

  async delete(actor: Actor, id: string, version: ApiVersion): Promise<void> {
    const { tenantId } = actor;
    await this.ensureDefaults(tenantId);
    await this.store.transaction(async (trx) => {
      await this.lockLists(trx, tenantId);
      const row = await this.find(trx, actor, id, version);
      if (row.is_default === 1) {
        throw conflict('The default policy applies to every user with no other policy and can\'t be deleted; edit its settings instead.');
      }
      const tags = await this.tagsOf(trx, tenantId, id);
      const ranked = await this.ranked(trx, tenantId, row.priority_list);
      let after: Map<string, number>;
      try {
        after = removePolicy(ranked, id);
      } catch (err) {
        throw this.priorityError(err);
      }
      const changes = await this.applyPriorities(trx, tenantId, ranked, after);
      await trx.deleteFrom('enrollment_configuration_assignments').where('tenant_id', '=', tenantId).where('configuration_id', '=', id).execute();
      await trx.deleteFrom('enrollment_configurations').where('tenant_id', '=', tenantId).where('id', '=', id).execute();
      await deleteObjectTags(trx, tenantId, CONFIGURATION_OBJECT, id);
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Delete enrollment restriction',
        operation: 'Delete',
        resourceType: configurationTypeName(row),
        resourceId: id,
        resourceDisplayName: row.display_name,
        before: { ...auditSnapshot(row, tags), priorities: changes.before },
        after: { priorities: changes.after },
      });
    });
  }

  /**
   * Moves a policy to `priority` (1 = highest) in its list. Numbers are the true ones, counting
   * policies the caller can't see, so a scoped admin places its policy among all of them.
   */
  async setPriority(actor: Actor, id: string, priority: number, version: ApiVersion): Promise<void> {
    const { tenantId } = actor;
    await this.ensureDefaults(tenantId);
    await this.store.transaction(async (trx) => {
      await this.lockLists(trx, tenantId);
      const row = await this.find(trx, actor, id, version);
      const ranked = await this.ranked(trx, tenantId, row.priority_list);
      let after: Map<string, number>;
      try {
        // Past the end lands last, like dragging to the bottom of the list; below 1 and the default are refused.
        after = setPriority(ranked, id, priority);
      } catch (err) {
        throw this.priorityError(err);
      }
      const changes = await this.applyPriorities(trx, tenantId, ranked, after);
      const priorityAfter = after.get(id)!;
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Set enrollment restriction priority',
        operation: 'Action',
        resourceType: configurationTypeName(row),
        resourceId: id,
        resourceDisplayName: row.display_name,
        before: { priority: row.priority, priorities: changes.before },
        after: { priority: priorityAfter, priorities: changes.after },
      });
    });
  }

  // ---- assignments ----

  private refuseDefault(row: EnrollmentConfigurationsTable, target: string): void {
    if (row.is_default === 1) {
      throw badRequest('The default policy applies to all users with no other policy and can\'t be assigned.', target);
    }
  }

  /** Groups must exist in the tenant; filters must exist, be visible, and suit the policy (-E §6.5). */
  private async checkTargets(trx: Trx, actor: Actor, row: EnrollmentConfigurationsTable, items: readonly PlacedAssignment[]): Promise<void> {
    const groupIds = [...new Set(items.map((i) => i.input.groupId).filter((g): g is string => g !== null))];
    if (groupIds.length > 0) {
      const found = new Set(
        (await trx.selectFrom('groups').select('id').where('tenant_id', '=', actor.tenantId).where('id', 'in', groupIds).execute()).map((g) => g.id.toLowerCase()),
      );
      const missing = items.find((i) => i.input.groupId !== null && !found.has(i.input.groupId));
      if (missing) throw invalidProperty(`${missing.path}.groupId`, `group '${missing.input.groupId}' was not found in the directory.`);
    }
    for (const { input, path } of items) {
      if (input.filterId === null) continue;
      const at = `${path}.deviceAndAppManagementAssignmentFilterId`;
      if (row.configuration_type === 'limit') throw invalidProperty(at, 'assignment filters can only be used with device platform restrictions, not device limit restrictions.');
      const platform = row.platform_type as CreatablePlatform;
      if (platform === 'android' || platform === 'androidForWork') throw invalidProperty(at, "filters can't be used with Android enrollment restrictions.");
      const filter = await whereVisible(
        trx.selectFrom('assignment_filters').selectAll().where('tenant_id', '=', actor.tenantId).where('id', '=', input.filterId),
        actor.principal,
        FILTER_OBJECT,
        'assignment_filters.id',
      ).executeTakeFirst();
      if (!filter) throw invalidProperty(at, `assignment filter '${input.filterId}' was not found.`);
      const expected = FILTER_PLATFORM_OF[platform];
      if (filter.platform !== expected) {
        throw invalidProperty(at, `filter '${filter.display_name}' is for platform '${filter.platform}'; a ${platform} restriction needs a '${expected}' filter.`);
      }
      const problem = enrollmentFilterProblem(platform, filter.rule);
      if (problem) throw invalidProperty(at, `filter '${filter.display_name}' can't be used with enrollment restrictions: ${problem}`);
    }
  }

  private async bumpVersion(trx: Trx, row: EnrollmentConfigurationsTable): Promise<void> {
    await trx
      .updateTable('enrollment_configurations')
      .set({ version: row.version + 1, updated_at: this.clock.now().toISOString() })
      .where('tenant_id', '=', row.tenant_id)
      .where('id', '=', row.id)
      .execute();
  }

  private assignmentRow(row: EnrollmentConfigurationsTable, input: AssignmentInput, position: number, createdAt: string): EnrollmentConfigurationAssignmentsTable {
    return {
      tenant_id: row.tenant_id,
      id: assignmentId(row.id, input),
      configuration_id: row.id,
      target_type: input.targetType,
      group_id: input.groupId,
      filter_id: input.filterId,
      filter_type: input.filterType,
      source: 'direct',
      source_id: null,
      position,
      created_at: createdAt,
    };
  }

  /** The assign action: replaces the whole assignment set. */
  async assign(actor: Actor, id: string, items: readonly PlacedAssignment[], version: ApiVersion): Promise<void> {
    const { tenantId } = actor;
    await this.ensureDefaults(tenantId);
    await this.store.transaction(async (trx) => {
      const row = await this.find(trx, actor, id, version, true);
      this.refuseDefault(row, 'enrollmentConfigurationAssignments');
      if (items.length > MAX_ASSIGNMENTS) throw invalidProperty('enrollmentConfigurationAssignments', `at most ${MAX_ASSIGNMENTS} assignments.`);
      const seen = new Map<string, string>();
      for (const { input, path } of items) {
        const key = targetKey(input);
        const first = seen.get(key);
        if (first) throw invalidProperty(path, `the same target is already assigned at ${first}; a group can be included or excluded once.`);
        seen.set(key, path);
      }
      await this.checkTargets(trx, actor, row, items);
      const before = (await this.assignmentRows(trx, tenantId, [id])).map((a) => toAssignmentEntity(a, 'beta'));
      await trx.deleteFrom('enrollment_configuration_assignments').where('tenant_id', '=', tenantId).where('configuration_id', '=', id).execute();
      const now = this.clock.now().toISOString();
      const rows = items.map(({ input }, i) => this.assignmentRow(row, input, i, now));
      if (rows.length > 0) await trx.insertInto('enrollment_configuration_assignments').values(rows).execute();
      await this.bumpVersion(trx, row);
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Assign enrollment restriction',
        operation: 'Action',
        resourceType: configurationTypeName(row),
        resourceId: id,
        resourceDisplayName: row.display_name,
        before: { assignments: before },
        after: { assignments: rows.map((a) => toAssignmentEntity(a, 'beta')) },
      });
    });
  }

  async listAssignments(actor: Actor, id: string, version: ApiVersion): Promise<Record<string, unknown>[]> {
    await this.ensureDefaults(actor.tenantId);
    const row = await this.find(this.store.db, actor, id, version);
    return (await this.assignmentRows(this.store.db, actor.tenantId, [row.id])).map((a) => toAssignmentEntity(a, version));
  }

  private async findAssignment(db: Executor, actor: Actor, configuration: EnrollmentConfigurationsTable, assignment: string) {
    const a = await db
      .selectFrom('enrollment_configuration_assignments')
      .selectAll()
      .where('tenant_id', '=', actor.tenantId)
      .where('configuration_id', '=', configuration.id)
      .where('id', '=', assignment)
      .executeTakeFirst();
    if (!a) throw notFound(`Assignment '${assignment}' was not found on device enrollment configuration '${configuration.id}'.`);
    return a;
  }

  async getAssignment(actor: Actor, id: string, assignment: string, version: ApiVersion): Promise<Record<string, unknown>> {
    await this.ensureDefaults(actor.tenantId);
    const row = await this.find(this.store.db, actor, id, version);
    return toAssignmentEntity(await this.findAssignment(this.store.db, actor, row, assignment), version);
  }

  async createAssignment(actor: Actor, id: string, input: AssignmentInput, version: ApiVersion): Promise<Record<string, unknown>> {
    const { tenantId } = actor;
    await this.ensureDefaults(tenantId);
    return this.store.transaction(async (trx) => {
      const row = await this.find(trx, actor, id, version, true);
      this.refuseDefault(row, 'target');
      const existing = await this.assignmentRows(trx, tenantId, [id]);
      if (existing.some((a) => targetKey({ groupId: a.group_id }) === targetKey(input))) {
        throw conflict('This target is already assigned to the policy; change that assignment instead.', 'target');
      }
      if (existing.length >= MAX_ASSIGNMENTS) throw conflict(`A policy can have at most ${MAX_ASSIGNMENTS} assignments.`);
      await this.checkTargets(trx, actor, row, [{ input, path: 'target' }]);
      const a = this.assignmentRow(row, input, existing.reduce((max, x) => Math.max(max, x.position + 1), 0), this.clock.now().toISOString());
      await trx.insertInto('enrollment_configuration_assignments').values(a).execute();
      await this.bumpVersion(trx, row);
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Create enrollment restriction assignment',
        operation: 'Create',
        resourceType: configurationTypeName(row),
        resourceId: id,
        resourceDisplayName: row.display_name,
        after: { assignment: toAssignmentEntity(a, 'beta') },
      });
      return toAssignmentEntity(a, version);
    });
  }

  async updateAssignment(actor: Actor, id: string, assignment: string, input: AssignmentInput, version: ApiVersion): Promise<Record<string, unknown>> {
    await this.ensureDefaults(actor.tenantId);
    return this.store.transaction(async (trx) => {
      const row = await this.find(trx, actor, id, version, true);
      const current = await this.findAssignment(trx, actor, row, assignment);
      if (targetKey(input) !== targetKey({ groupId: current.group_id })) {
        throw badRequest("An assignment's group can't be changed; delete it and assign the other group.", input.groupId === null ? 'target' : 'target.groupId');
      }
      await this.checkTargets(trx, actor, row, [{ input, path: 'target' }]);
      const updated = { ...current, target_type: input.targetType, filter_id: input.filterId, filter_type: input.filterType };
      await trx
        .updateTable('enrollment_configuration_assignments')
        .set({ target_type: updated.target_type, filter_id: updated.filter_id, filter_type: updated.filter_type })
        .where('tenant_id', '=', actor.tenantId)
        .where('id', '=', assignment)
        .execute();
      await this.bumpVersion(trx, row);
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Patch enrollment restriction assignment',
        operation: 'Patch',
        resourceType: configurationTypeName(row),
        resourceId: id,
        resourceDisplayName: row.display_name,
        before: { assignment: toAssignmentEntity(current, 'beta') },
        after: { assignment: toAssignmentEntity(updated, 'beta') },
      });
      return toAssignmentEntity(updated, version);
    });
  }

  async deleteAssignment(actor: Actor, id: string, assignment: string, version: ApiVersion): Promise<void> {
    await this.ensureDefaults(actor.tenantId);
    await this.store.transaction(async (trx) => {
      const row = await this.find(trx, actor, id, version, true);
      const current = await this.findAssignment(trx, actor, row, assignment);
      await trx.deleteFrom('enrollment_configuration_assignments').where('tenant_id', '=', actor.tenantId).where('id', '=', assignment).execute();
      await this.bumpVersion(trx, row);
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Delete enrollment restriction assignment',
        operation: 'Delete',
        resourceType: configurationTypeName(row),
        resourceId: id,
        resourceDisplayName: row.display_name,
        before: { assignment: toAssignmentEntity(current, 'beta') },
      });
    });
  }

  // ---- functions ----

  /** Policy sets aren't supported, so no enrollment configuration is ever linked to one. */
  hasPayloadLinks(payloadIds: readonly string[]) {
    return payloadIds.map((payloadId) => ({ payloadId, hasLink: false, error: null, sources: [] as string[] }));
  }

  /** Suggests the tenant's default device limit: what a user gets with no other policy. */
  async suggestedEnrollmentLimit(actor: Actor): Promise<number> {
    await this.ensureDefaults(actor.tenantId);
    const row = await this.store.db
      .selectFrom('enrollment_configurations')
      .select('device_limit')
      .where('tenant_id', '=', actor.tenantId)
      .where('id', '=', defaultLimitId(actor.tenantId))
      .executeTakeFirstOrThrow();
    return row.device_limit ?? DEFAULT_LIMIT;
  }
}

