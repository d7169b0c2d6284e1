import { sql } from 'kysely';
import type { Executor } from '../../../store/db.js';

/**
 * ADE devices as the admin API shows them: each dep_devices row with its effective profile (the
 * admin's choice, else its token's default for the device's platform), its derived status and
 * Graph enrollmentState. The SQL mirrors deviceStatus() and enrollmentStateOf() in model.ts; a test
 * checks they agree. Devices an admin deleted while Apple still holds them (deleted_at) are left out.
 */

const EFFECTIVE_PROFILE_ID = sql<string | null>`coalesce(d.requested_profile_id, case when d.platform = 'ios' then t.default_ios_profile_id when d.platform = 'macOS' then t.default_macos_profile_id end)`;

const STATUS = sql<string>`case
  when d.removed_from_apple_at is not null then 'removedFromAbm'
  when d.enrollment_state in ('enrolled', 'pendingReset') then 'enrolled'
  when d.seen_at_apple = 0 and (d.assignment_result is null or d.assignment_result <> 'SUCCESS') then 'notContacted'
  when p.id is null then 'missingProfile'
  when p.apple_profile_uuid is not null and d.apple_profile_uuid = p.apple_profile_uuid then 'readyToEnroll'
  else 'assigned' end`;

const ENROLLMENT_STATE = sql<string>`case
  when d.enrollment_state = 'enrolled' and d.enrolled_profile_id is not null and p.id is not null
    and (d.enrolled_profile_id <> p.id or coalesce(d.enrolled_profile_revision, 0) < p.revision) then 'pendingReset'
  else d.enrollment_state end`;

const IS_DELETED = sql<number>`case when d.removed_from_apple_at is null then 0 else 1 end`;

/** The tenant's visible ADE devices with effective_profile_id, effective_apple_uuid, effective_revision, status, enrollment_state_now, is_deleted. */
export function deviceView(db: Executor, tenantId: string) {
  return db
    .selectFrom('dep_devices as d')
    .innerJoin('dep_tokens as t', (j) => j.onRef('t.id', '=', 'd.token_id').onRef('t.tenant_id', '=', 'd.tenant_id'))
    .leftJoin('dep_profiles as p', (j) => j.on(sql<boolean>`p.id = ${EFFECTIVE_PROFILE_ID}`).onRef('p.tenant_id', '=', 'd.tenant_id'))
    .selectAll('d')
    .select([
      'p.id as effective_profile_id',
      'p.apple_profile_uuid as effective_apple_uuid',
      'p.revision as effective_revision',
      STATUS.as('status'),
      ENROLLMENT_STATE.as('enrollment_state_now'),
      IS_DELETED.as('is_deleted'),
    ])
    .where('d.tenant_id', '=', tenantId)
    .where('d.deleted_at', 'is', null);
}

export type DeviceViewRow = Awaited<ReturnType<ReturnType<typeof deviceView>['executeTakeFirstOrThrow']>>;

/** The same view as a table `v`, so OData can filter and sort on the derived columns too. */
export function deviceViewTable(db: Executor, tenantId: string, tokenId: string) {
  return db.selectFrom(deviceView(db, tenantId).where('d.token_id', '=', tokenId).as('v')).selectAll();
}
