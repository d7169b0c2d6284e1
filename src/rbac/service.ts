import type { Actor } from '../auth/principal.js';
import { conflict, notFound } from '../graph/errors.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Store } from '../store/db.js';
import { isUniqueViolation } from '../store/db.js';
import type { RoleScopeTagsTable } from '../store/schema.js';
import type { Clock } from '../shared/time.js';

export const ROLE_SCOPE_TAG_TYPE = 'microsoft.graph.roleScopeTag';

export interface RoleScopeTag {
  id: string;
  displayName: string;
  description: string | null;
  isBuiltIn: boolean;
}

export const toRoleScopeTag = (r: RoleScopeTagsTable): RoleScopeTag => ({
  id: r.id,
  displayName: r.display_name,
  description: r.description,
  isBuiltIn: r.is_built_in === 1,
});

/** Role scope tags: the tenant's catalogue of tags that objects and principals carry. */
export class RoleScopeTagService {
  constructor(
    private readonly store: Store,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  base(actor: Actor) {
    return this.store.db.selectFrom('role_scope_tags').selectAll().where('tenant_id', '=', actor.tenantId);
  }

  async get(actor: Actor, id: string): Promise<RoleScopeTag> {
    const row = await this.base(actor).where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound(`Role scope tag '${id}' was not found.`);
    return toRoleScopeTag(row);
  }

  async create(actor: Actor, input: { displayName: string; description?: string | null }): Promise<RoleScopeTag> {
    const now = this.clock.now().toISOString();
    try {
      return await this.store.transaction(async (trx) => {
        // Intune numbers tags. The per-tenant counter is bumped in this transaction (a row lock on
        // PostgreSQL), so concurrent creates get distinct ids and a deleted tag's id is never reused.
        const counter = await trx
          .updateTable('tenants')
          .set((eb) => ({ next_scope_tag_id: eb('next_scope_tag_id', '+', 1) }))
          .where('id', '=', actor.tenantId)
          .returning('next_scope_tag_id')
          .executeTakeFirstOrThrow();
        const next = String(Number(counter.next_scope_tag_id) - 1);
        const row: RoleScopeTagsTable = {
          tenant_id: actor.tenantId,
          id: next,
          display_name: input.displayName,
          display_name_lower: input.displayName.toLowerCase(),
          description: input.description ?? null,
          is_built_in: 0,
          created_at: now,
          updated_at: now,
        };
        await trx.insertInto('role_scope_tags').values(row).execute();
        const tag = toRoleScopeTag(row);
        await this.audit.record(trx, actor, {
          activity: 'Create role scope tag',
          operation: 'Create',
          resourceType: ROLE_SCOPE_TAG_TYPE,
          resourceId: tag.id,
          resourceDisplayName: tag.displayName,
          category: 'Role',
          componentName: 'RoleBasedAccessControl',
          after: { ...tag },
        });
        return tag;
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict(`A role scope tag named '${input.displayName}' already exists.`, 'displayName');
      throw err;
    }
  }

  async update(actor: Actor, id: string, patch: { displayName?: string; description?: string | null }): Promise<RoleScopeTag> {
    try {
      return await this.store.transaction(async (trx) => {
        const row = await trx.selectFrom('role_scope_tags').selectAll().where('tenant_id', '=', actor.tenantId).where('id', '=', id).executeTakeFirst();
        if (!row) throw notFound(`Role scope tag '${id}' was not found.`);
        if (row.is_built_in === 1 && patch.displayName !== undefined && patch.displayName !== row.display_name) {
          throw conflict('The built-in Default scope tag can not be renamed.', 'displayName');
        }
        const before = toRoleScopeTag(row);
        const updated: RoleScopeTagsTable = {
          ...row,
          display_name: patch.displayName ?? row.display_name,
          display_name_lower: (patch.displayName ?? row.display_name).toLowerCase(),
          description: patch.description === undefined ? row.description : patch.description,
          updated_at: this.clock.now().toISOString(),
        };
        await trx
          .updateTable('role_scope_tags')
          .set({ display_name: updated.display_name, display_name_lower: updated.display_name_lower, description: updated.description, updated_at: updated.updated_at })
          .where('tenant_id', '=', actor.tenantId)
          .where('id', '=', id)
          .execute();
        const after = toRoleScopeTag(updated);
        await this.audit.record(trx, actor, {
          activity: 'Patch role scope tag',
          operation: 'Patch',
          resourceType: ROLE_SCOPE_TAG_TYPE,
          resourceId: id,
          resourceDisplayName: after.displayName,
          category: 'Role',
          componentName: 'RoleBasedAccessControl',
          before: { ...before },
          after: { ...after },
        });
        return after;
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict(`A role scope tag named '${patch.displayName}' already exists.`, 'displayName');
      throw err;
    }
  }

  async delete(actor: Actor, id: string): Promise<void> {
    await this.store.transaction(async (trx) => {
      const row = await trx.selectFrom('role_scope_tags').selectAll().where('tenant_id', '=', actor.tenantId).where('id', '=', id).executeTakeFirst();
      if (!row) throw notFound(`Role scope tag '${id}' was not found.`);
      if (row.is_built_in === 1) throw conflict('The built-in Default scope tag can not be deleted.');
      const used = await trx
        .selectFrom('object_scope_tags')
        .select(['object_type'])
        .where('tenant_id', '=', actor.tenantId)
        .where('tag_id', '=', id)
        .limit(1)
        .executeTakeFirst();
      if (used) throw conflict(`Role scope tag '${row.display_name}' is still assigned to objects (for example a ${used.object_type}); remove it from them first.`);
      // Keys store their tags as a JSON array of strings, so the quoted id is an exact match.
      const key = await trx
        .selectFrom('api_keys')
        .select('id')
        .where('tenant_id', '=', actor.tenantId)
        .where('revoked_at', 'is', null)
        .where('scope_tag_ids', 'like', `%${JSON.stringify(id)}%`)
        .limit(1)
        .executeTakeFirst();
      if (key) throw conflict(`Role scope tag '${row.display_name}' still limits API key '${key.id}'; revoke the key or remove the tag from it first.`);
      await trx.deleteFrom('role_scope_tags').where('tenant_id', '=', actor.tenantId).where('id', '=', id).execute();
      await this.audit.record(trx, actor, {
        activity: 'Delete role scope tag',
        operation: 'Delete',
        resourceType: ROLE_SCOPE_TAG_TYPE,
        resourceId: id,
        resourceDisplayName: row.display_name,
        category: 'Role',
        componentName: 'RoleBasedAccessControl',
        before: { ...toRoleScopeTag(row) },
      });
    });
  }
}
