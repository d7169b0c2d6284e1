import { sql } from 'kysely';
import type { Actor } from '../../../auth/principal.js';
import { whereVisible } from '../../../auth/scope-tags.js';
import { notFound } from '../../../graph/errors.js';
import type { Executor, Store } from '../../../store/db.js';
import type { DepTokensTable } from '../../../store/schema.js';
import { deviceView } from './device-view.js';
import { DEP_TOKEN_OBJECT, DEVICE_STATUSES, emptyStatusCounts, type DeviceStatus, type DeviceStatusCounts } from './model.js';

/**
 * Every ADE admin route starts from a token the caller may see: profiles and devices have no scope
 * tags of their own but inherit their token's, so an out-of-scope token and everything under it
 * is 404.
 */

export const AUDIT_AREA = { category: 'Enrollment', componentName: 'AppleEnrollment' } as const;

export function visibleTokens(db: Executor, actor: Actor) {
  const q = db.selectFrom('dep_tokens').selectAll().where('tenant_id', '=', actor.tenantId);
  return whereVisible(q, actor.principal, DEP_TOKEN_OBJECT, 'dep_tokens.id');
}

/** The token if the caller can see it (locked for update on PostgreSQL when asked); 404 otherwise. */
export async function visibleToken(store: Store, actor: Actor, id: string, db: Executor = store.db, lock = false): Promise<DepTokensTable> {
  let q = visibleTokens(db, actor).where('id', '=', id);
  if (lock && store.dialect === 'postgres') q = q.forUpdate();
  const row = await q.executeTakeFirst();
  if (!row) throw notFound(`Enrollment program token '${id}' was not found.`);
  return row;
}

/** Device status counts of each token. */
export async function statusCounts(db: Executor, tenantId: string, tokenIds: readonly string[]): Promise<Map<string, DeviceStatusCounts>> {
  const out = new Map<string, DeviceStatusCounts>(tokenIds.map((id) => [id, emptyStatusCounts()]));
  for (let i = 0; i < tokenIds.length; i += 500) {
    const part = tokenIds.slice(i, i + 500);
    const rows = await db
      .selectFrom(deviceView(db, tenantId).where('d.token_id', 'in', part).as('v'))
      .select(['v.token_id', 'v.status', sql<number | string>`count(*)`.as('n')])
      .groupBy(['v.token_id', 'v.status'])
      .execute();
    for (const r of rows) {
      const counts = out.get(r.token_id);
      if (counts && (DEVICE_STATUSES as readonly string[]).includes(r.status)) counts[r.status as DeviceStatus] = Number(r.n);
    }
  }
  return out;
}
