import { sql, type Expression, type RawBuilder, type SqlBool } from 'kysely';
import type { Executor } from '../store/db.js';
import { badRequest, forbidden, invalidProperty } from '../graph/errors.js';
import type { Principal } from './principal.js';

/**
 * Intune-style scope tags, one mechanism for every object type that carries `roleScopeTagIds`.
 * An object carries one or more tags (the built-in "Default" tag "0" when none is given);
 * a principal limited to some tags sees and changes only objects sharing at least one of them.
 * Objects out of scope are reported as not found, so their existence doesn't leak.
 */

export const DEFAULT_SCOPE_TAG_ID = '0';

/** Pure: may this principal see an object with these tags? */
export function canSee(principal: Pick<Principal, 'scopeTagIds'>, objectTags: readonly string[]): boolean {
  if (principal.scopeTagIds === null) return true;
  const mine = new Set(principal.scopeTagIds);
  return objectTags.some((t) => mine.has(t));
}

/**
 * Pure: the tags a new object gets. Requested tags must be within the principal's scope;
 * with none requested, a scoped principal's own tags, else Default.
 */
export function tagsForNewObject(principal: Pick<Principal, 'scopeTagIds'>, requested: readonly string[] | undefined | null): string[] {
  if (requested && requested.length > 0) {
    assertWithinScope(principal, requested);
    return [...new Set(requested)];
  }
  return principal.scopeTagIds === null ? [DEFAULT_SCOPE_TAG_ID] : [...principal.scopeTagIds];
}

/** Pure: a scoped principal may only hand out tags it holds itself. */
export function assertWithinScope(principal: Pick<Principal, 'scopeTagIds'>, tags: readonly string[]): void {
  if (principal.scopeTagIds === null) return;
  const mine = new Set(principal.scopeTagIds);
  const outside = tags.filter((t) => !mine.has(t));
  if (outside.length > 0) {
    throw forbidden(`The scope tags ${outside.map((t) => `'${t}'`).join(', ')} are outside the caller's scope.`);
  }
}

/**
 * A WHERE condition keeping only rows whose object is visible to the principal.
 * `idColumn` is the (qualified) column holding the object's id.
 */
export function visibleTo(
  principal: Pick<Principal, 'scopeTagIds' | 'tenantId'>,
  objectType: string,
  idColumn: string,
): RawBuilder<SqlBool> | undefined {
  if (principal.scopeTagIds === null) return undefined;
  // No tags sees nothing. (A NUL-byte placeholder tag here made PostgreSQL refuse the query.)
  if (principal.scopeTagIds.length === 0) return sql<SqlBool>`1 = 0`;
  return sql<SqlBool>`exists (select 1 from object_scope_tags ost where ost.tenant_id = ${principal.tenantId} and ost.object_type = ${objectType} and ost.object_id = ${sql.ref(idColumn)} and ost.tag_id in (${sql.join(principal.scopeTagIds)}))`;
}

/** Applies `visibleTo` to a query builder when the principal is scoped. */
export function whereVisible<Q extends { where(e: Expression<SqlBool>): Q }>(
  qb: Q,
  principal: Pick<Principal, 'scopeTagIds' | 'tenantId'>,
  objectType: string,
  idColumn: string,
): Q {
  const cond = visibleTo(principal, objectType, idColumn);
  return cond ? qb.where(cond) : qb;
}

/** Fails with a 400 naming the property unless every tag exists in the tenant. */
export async function assertTagsExist(db: Executor, tenantId: string, tags: readonly string[]): Promise<void> {
  if (tags.length === 0) return;
  const rows = await db
    .selectFrom('role_scope_tags')
    .select('id')
    .where('tenant_id', '=', tenantId)
    .where('id', 'in', [...tags])
    .execute();
  const known = new Set(rows.map((r) => r.id));
  const missing = tags.filter((t) => !known.has(t));
  if (missing.length > 0) {
    throw badRequest(`Invalid value for property 'roleScopeTagIds': unknown scope tag ${missing.map((m) => `'${m}'`).join(', ')}.`, 'roleScopeTagIds');
  }
}

export async function writeObjectTags(
  db: Executor,
  tenantId: string,
  objectType: string,
  objectId: string,
  tags: readonly string[],
): Promise<void> {
  await db
    .deleteFrom('object_scope_tags')
    .where('tenant_id', '=', tenantId)
    .where('object_type', '=', objectType)
    .where('object_id', '=', objectId)
    .execute();
  const unique = [...new Set(tags)];
  if (unique.length === 0) return;
  await db
    .insertInto('object_scope_tags')
    .values(unique.map((tag_id) => ({ tenant_id: tenantId, object_type: objectType, object_id: objectId, tag_id })))
    .execute();
}

export async function deleteObjectTags(db: Executor, tenantId: string, objectType: string, objectId: string): Promise<void> {
  await writeObjectTags(db, tenantId, objectType, objectId, []);
}

/** Tags of many objects at once, in the order tags were created (sorted ids). */
export async function readObjectTags(
  db: Executor,
  tenantId: string,
  objectType: string,
  objectIds: readonly string[],
): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const id of objectIds) out.set(id, []);
  const CHUNK = 500;
  for (let i = 0; i < objectIds.length; i += CHUNK) {
    const rows = await db
      .selectFrom('object_scope_tags')
      .select(['object_id', 'tag_id'])
      .where('tenant_id', '=', tenantId)
      .where('object_type', '=', objectType)
      .where('object_id', 'in', objectIds.slice(i, i + CHUNK))
      .orderBy('tag_id')
      .execute();
    for (const r of rows) out.get(r.object_id)?.push(r.tag_id);
  }
  return out;
}

/**
 * Pure: the tags an object gets from a PATCH. A scoped principal changes only tags within its
 * scope; tags it can't see stay, so it can't hide an object from another scope's admins.
 */
export function mergeScopeTags(current: readonly string[], requested: readonly string[], callerScope: readonly string[] | null): string[] {
  const kept = callerScope === null ? [] : current.filter((t) => !callerScope.includes(t));
  return [...new Set([...requested, ...kept])].sort(compareTagIds);
}

/** Tag ids are numeric strings in Intune; sort them as numbers where they are. */
export function compareTagIds(a: string, b: string): number {
  const x = Number(a);
  const y = Number(b);
  if (Number.isFinite(x) && Number.isFinite(y) && x !== y) return x - y;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A PATCH of an object's roleScopeTagIds, in the caller's transaction: the caller names only tags
 * within its scope that exist, tags outside its scope stay, and the object keeps at least one tag.
 * Writes and returns the object's tags.
 */
export async function patchObjectTags(
  trx: Executor,
  actor: { tenantId: string; principal: Pick<Principal, 'scopeTagIds'> },
  object: { type: string; id: string; label: string },
  current: readonly string[],
  requestedTags: readonly string[],
): Promise<string[]> {
  const requested = [...new Set(requestedTags)];
  assertWithinScope(actor.principal, requested);
  await assertTagsExist(trx, actor.tenantId, requested);
  const tags = mergeScopeTags(current, requested, actor.principal.scopeTagIds);
  if (tags.length === 0) throw invalidProperty('roleScopeTagIds', `${object.label} keeps at least one scope tag (Default is "0").`);
  await writeObjectTags(trx, actor.tenantId, object.type, object.id, tags);
  return tags;
}
