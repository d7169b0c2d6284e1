import crypto from 'node:crypto';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Actor } from '../../auth/principal.js';
import { assertTagsExist, assertWithinScope, deleteObjectTags, readObjectTags, tagsForNewObject, whereVisible, writeObjectTags } from '../../auth/scope-tags.js';
import { compareTagIds, mergeScopeTags } from '../../devices/model.js';
import { conflict, invalidProperty, notFound } from '../../graph/errors.js';
import type { Clock } from '../../shared/time.js';
import type { Executor, Store } from '../../store/db.js';
import type { AssignmentFiltersTable } from '../../store/schema.js';
import { enrollmentFilterProblem, FILTER_OBJECT, FILTER_TYPE, parseFilterCreate, parseFilterPatch, toFilterEntity, type FilterInput } from './filters-model.js';
import type { CreatablePlatform } from './model.js';

const AUDIT = { category: 'Enrollment', componentName: 'Enrollment', resourceType: FILTER_TYPE } as const;

/** Assignment filters (beta `/deviceManagement/assignmentFilters`), scope-tagged like every Intune object. */
export class AssignmentFilterService {
  constructor(
    private readonly store: Store,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  base(actor: Actor, db: Executor = this.store.db) {
    return whereVisible(
      db.selectFrom('assignment_filters').selectAll().where('assignment_filters.tenant_id', '=', actor.tenantId),
      actor.principal,
      FILTER_OBJECT,
      'assignment_filters.id',
    );
  }

  private async find(db: Executor, actor: Actor, id: string): Promise<AssignmentFiltersTable> {
    const row = await this.base(actor, db).where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound(`Assignment filter '${id}' was not found.`);
    return row;
  }

  async toEntities(tenantId: string, rows: readonly AssignmentFiltersTable[], db: Executor = this.store.db): Promise<Record<string, unknown>[]> {
    const tags = await readObjectTags(db, tenantId, FILTER_OBJECT, rows.map((r) => r.id));
    return rows.map((r) => ({ '@odata.type': `#${FILTER_TYPE}`, ...toFilterEntity(r, (tags.get(r.id) ?? []).sort(compareTagIds)) }));
  }

  async get(actor: Actor, id: string): Promise<Record<string, unknown>> {
    return (await this.toEntities(actor.tenantId, [await this.find(this.store.db, actor, id)]))[0]!;
  }

  async create(actor: Actor, body: unknown): Promise<Record<string, unknown>> {
    const input = parseFilterCreate(body);
    return this.store.transaction(async (trx) => {
      const tags = tagsForNewObject(actor.principal, input.roleScopeTagIds).sort(compareTagIds);
      await assertTagsExist(trx, actor.tenantId, tags);
      const now = this.clock.now().toISOString();
      const row: AssignmentFiltersTable = {
        tenant_id: actor.tenantId,
        id: crypto.randomUUID(),
        display_name: input.displayName,
        description: input.description,
        platform: input.platform,
        rule: input.rule,
        created_at: now,
        updated_at: now,
      };
      await trx.insertInto('assignment_filters').values(row).execute();
      await writeObjectTags(trx, actor.tenantId, FILTER_OBJECT, row.id, tags);
      const entity = toFilterEntity(row, tags);
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Create assignment filter',
        operation: 'Create',
        resourceId: row.id,
        resourceDisplayName: row.display_name,
        after: entity,
      });
      return { '@odata.type': `#${FILTER_TYPE}`, ...entity };
    });
  }

  /** Platforms of the restrictions whose assignments use this filter. */
  private async usedBy(db: Executor, tenantId: string, id: string): Promise<{ count: number; platforms: CreatablePlatform[] }> {
    const rows = await db
      .selectFrom('enrollment_configuration_assignments as a')
      .innerJoin('enrollment_configurations as c', (j) => j.onRef('c.tenant_id', '=', 'a.tenant_id').onRef('c.id', '=', 'a.configuration_id'))
      .select(['c.platform_type'])
      .where('a.tenant_id', '=', tenantId)
      .where('a.filter_id', '=', id)
      .execute();
    return { count: rows.length, platforms: [...new Set(rows.map((r) => r.platform_type as CreatablePlatform))] };
  }

  async update(actor: Actor, id: string, body: unknown): Promise<Record<string, unknown>> {
    return this.store.transaction(async (trx) => {
      const row = await this.find(trx, actor, id);
      const patch: Partial<FilterInput> = parseFilterPatch(body, row);
      if (patch.rule !== undefined && patch.rule !== row.rule) {
        // A filter in use on enrollment restrictions keeps to the properties enrollment can evaluate (-E §6.5).
        for (const platform of (await this.usedBy(trx, actor.tenantId, id)).platforms) {
          const problem = enrollmentFilterProblem(platform, patch.rule);
          if (problem) throw invalidProperty('rule', `the filter is used on ${platform} enrollment restrictions: ${problem}`);
        }
      }
      const beforeTags = ((await readObjectTags(trx, actor.tenantId, FILTER_OBJECT, [id])).get(id) ?? []).sort(compareTagIds);
      let tags = beforeTags;
      if (patch.roleScopeTagIds !== undefined) {
        const requested = patch.roleScopeTagIds.length > 0 ? patch.roleScopeTagIds : tagsForNewObject(actor.principal, []);
        assertWithinScope(actor.principal, requested);
        tags = mergeScopeTags(beforeTags, requested, actor.principal.scopeTagIds);
        await assertTagsExist(trx, actor.tenantId, tags);
      }
      const updated: AssignmentFiltersTable = {
        ...row,
        display_name: patch.displayName ?? row.display_name,
        description: patch.description === undefined ? row.description : patch.description,
        rule: patch.rule ?? row.rule,
        updated_at: this.clock.now().toISOString(),
      };
      await trx
        .updateTable('assignment_filters')
        .set({ display_name: updated.display_name, description: updated.description, rule: updated.rule, updated_at: updated.updated_at })
        .where('tenant_id', '=', actor.tenantId)
        .where('id', '=', id)
        .execute();
      if (tags !== beforeTags) await writeObjectTags(trx, actor.tenantId, FILTER_OBJECT, id, tags);
      const after = toFilterEntity(updated, tags);
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Patch assignment filter',
        operation: 'Patch',
        resourceId: id,
        resourceDisplayName: updated.display_name,
        before: toFilterEntity(row, beforeTags),
        after,
      });
      return { '@odata.type': `#${FILTER_TYPE}`, ...after };
    });
  }

  async delete(actor: Actor, id: string): Promise<void> {
    await this.store.transaction(async (trx) => {
      const row = await this.find(trx, actor, id);
      const used = await this.usedBy(trx, actor.tenantId, id);
      if (used.count > 0) {
        throw conflict(`Assignment filter '${row.display_name}' is used by ${used.count} enrollment restriction assignment(s); remove it from them first.`);
      }
      const tags = ((await readObjectTags(trx, actor.tenantId, FILTER_OBJECT, [id])).get(id) ?? []).sort(compareTagIds);
      await trx.deleteFrom('assignment_filters').where('tenant_id', '=', actor.tenantId).where('id', '=', id).execute();
      await deleteObjectTags(trx, actor.tenantId, FILTER_OBJECT, id);
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Delete assignment filter',
        operation: 'Delete',
        resourceId: id,
        resourceDisplayName: row.display_name,
        before: toFilterEntity(row, tags),
      });
    });
  }
}
