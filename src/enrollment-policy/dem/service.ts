import { sql } from 'kysely';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Actor } from '../../auth/principal.js';
import { badRequest, conflict, notFound } from '../../graph/errors.js';
import type { Clock } from '../../shared/time.js';
import { isUniqueViolation, type Executor, type Store, type Trx } from '../../store/db.js';
import { canAddManager, DEM_LIMITS } from './rules.js';

/** An OpenEnroll extension type: Graph has no resource for DEM accounts (graph §8.2). */
export const DEM_TYPE = 'microsoft.graph.openEnrollDeviceEnrollmentManager';

export interface DeviceEnrollmentManager {
  /** The user's id: one DEM entry per user. */
  id: string;
  userId: string;
  userPrincipalName: string;
  displayName: string;
  createdDateTime: string;
  /** Devices this account enrolled that are still managed (the 1,000 quota counts these). */
  enrolledDeviceCount: number;
}

export interface DemRow {
  id: string;
  user_principal_name: string;
  upn_lower: string;
  display_name: string;
  created_at: string;
}

const AUDIT = { resourceType: DEM_TYPE, category: 'Enrollment', componentName: 'Enrollment' } as const;
const DEM_ENROLLMENT = 'deviceEnrollmentManager';
const ANDROID_WORK_PROFILE_DEVICE = 'androidForWork';

function demRows(db: Executor, tenantId: string) {
  return db
    .selectFrom('device_enrollment_managers as dem')
    .innerJoin('users', (j) => j.onRef('users.tenant_id', '=', 'dem.tenant_id').onRef('users.id', '=', 'dem.user_id'))
    .select(['dem.user_id as id', 'users.user_principal_name', 'users.upn_lower', 'users.display_name', 'dem.created_at'])
    .where('dem.tenant_id', '=', tenantId);
}

/** For the enrollment gate: is this user a device enrollment manager of the tenant? */
export async function isDeviceEnrollmentManager(db: Executor, tenantId: string, userId: string): Promise<boolean> {
  return (await demRows(db, tenantId).where('dem.user_id', '=', userId).executeTakeFirst()) !== undefined;
}

/**
 * Managed devices enrolled by these accounts with deviceEnrollmentType deviceEnrollmentManager, by
 * lower-cased UPN: DEM devices have no primary user, only enrolledByUserPrincipalName.
 */
async function countsByUpn(db: Executor, tenantId: string, upnsLower: readonly string[]): Promise<Map<string, { devices: number; androidWorkProfileDevices: number }>> {
  const out = new Map<string, { devices: number; androidWorkProfileDevices: number }>();
  if (upnsLower.length === 0) return out;
  const upn = sql<string>`lower(enrolled_by_user_principal_name)`;
  const rows = await db
    .selectFrom('managed_devices')
    .select([upn.as('upn'), 'device_type', sql<number | string>`count(*)`.as('n')])
    .where('tenant_id', '=', tenantId)
    .where('device_enrollment_type', '=', DEM_ENROLLMENT)
    .where(upn, 'in', [...upnsLower])
    .groupBy([upn, 'device_type'])
    .execute();
  for (const r of rows) {
    const c = out.get(r.upn) ?? { devices: 0, androidWorkProfileDevices: 0 };
    c.devices += Number(r.n);
    if (r.device_type === ANDROID_WORK_PROFILE_DEVICE) c.androidWorkProfileDevices += Number(r.n);
    out.set(r.upn, c);
  }
  return out;
}

/** For the enrollment gate: devices the user enrolled as a DEM, and how many are Android work-profile devices. */
export async function demEnrolledCounts(db: Executor, tenantId: string, userId: string): Promise<{ devices: number; androidWorkProfileDevices: number }> {
  const user = await db.selectFrom('users').select('upn_lower').where('tenant_id', '=', tenantId).where('id', '=', userId).executeTakeFirst();
  if (!user) return { devices: 0, androidWorkProfileDevices: 0 };
  return (await countsByUpn(db, tenantId, [user.upn_lower])).get(user.upn_lower) ?? { devices: 0, androidWorkProfileDevices: 0 };
}

/** For the enrollment gate: devices the user enrolled as a DEM (the 1,000-device quota). */
export async function demEnrolledCount(db: Executor, tenantId: string, userId: string): Promise<number> {
  return (await demEnrolledCounts(db, tenantId, userId)).devices;
}

/**
 * Device enrollment managers (OpenEnroll extension resource). A DEM is a directory user; at most
 * 150 per tenant. Removing one leaves the devices it enrolled managed.
 */
export class DeviceEnrollmentManagerService {
  constructor(
    private readonly store: Store,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  base(actor: Actor) {
    return demRows(this.store.db, actor.tenantId);
  }

  async toEntities(tenantId: string, rows: readonly DemRow[], db: Executor = this.store.db): Promise<DeviceEnrollmentManager[]> {
    const counts = await countsByUpn(db, tenantId, [...new Set(rows.map((r) => r.upn_lower))]);
    return rows.map((r) => ({
      id: r.id,
      userId: r.id,
      userPrincipalName: r.user_principal_name,
      displayName: r.display_name,
      createdDateTime: r.created_at,
      enrolledDeviceCount: counts.get(r.upn_lower)?.devices ?? 0,
    }));
  }

  /** By user id or userPrincipalName, as /users/{id} is addressed. */
  private async row(db: Executor, actor: Actor, idOrUpn: string): Promise<DemRow> {
    const q = demRows(db, actor.tenantId);
    const row = await (idOrUpn.includes('@') ? q.where('users.upn_lower', '=', idOrUpn.toLowerCase()) : q.where('dem.user_id', '=', idOrUpn)).executeTakeFirst();
    if (!row) throw notFound(`Device enrollment manager '${idOrUpn}' was not found.`);
    return row;
  }

  async get(actor: Actor, idOrUpn: string): Promise<DeviceEnrollmentManager> {
    const [dem] = await this.toEntities(actor.tenantId, [await this.row(this.store.db, actor, idOrUpn)]);
    return dem!;
  }

  /** Makes an existing directory user a DEM; 409 at the tenant's 150th or for a user already one. */
  async add(actor: Actor, input: { userPrincipalName?: string; userId?: string }): Promise<DeviceEnrollmentManager> {
    if ((input.userPrincipalName === undefined) === (input.userId === undefined)) {
      throw badRequest("Give exactly one of 'userPrincipalName' and 'userId'.", input.userId === undefined ? 'userPrincipalName' : 'userId');
    }
    try {
      return await this.store.transaction(async (trx) => {
        await this.lockTenant(trx, actor.tenantId);
        const users = trx.selectFrom('users').select(['id', 'user_principal_name']).where('tenant_id', '=', actor.tenantId);
        const user = await (input.userId !== undefined ? users.where('id', '=', input.userId) : users.where('upn_lower', '=', input.userPrincipalName!.toLowerCase())).executeTakeFirst();
        if (!user) {
          const property = input.userId !== undefined ? 'userId' : 'userPrincipalName';
          throw badRequest(`No user with ${property} '${input.userId ?? input.userPrincipalName}' exists in the directory; a device enrollment manager must be a user.`, property);
        }
        // Entries of users deleted since don't count toward the limit.
        await trx
          .deleteFrom('device_enrollment_managers')
          .where('tenant_id', '=', actor.tenantId)
          .where(({ not, exists, selectFrom }) =>
            not(exists(selectFrom('users').select('users.id').whereRef('users.tenant_id', '=', 'device_enrollment_managers.tenant_id').whereRef('users.id', '=', 'device_enrollment_managers.user_id'))),
          )
          .execute();
        const already = await trx.selectFrom('device_enrollment_managers').select('user_id').where('tenant_id', '=', actor.tenantId).where('user_id', '=', user.id).executeTakeFirst();
        if (already) throw conflict(`'${user.user_principal_name}' is already a device enrollment manager.`, input.userId !== undefined ? 'userId' : 'userPrincipalName');
        const count = await trx.selectFrom('device_enrollment_managers').select(sql<number | string>`count(*)`.as('n')).where('tenant_id', '=', actor.tenantId).executeTakeFirstOrThrow();
        if (!canAddManager(Number(count.n))) {
          throw conflict(`The tenant already has ${DEM_LIMITS.maxManagersPerTenant} device enrollment managers, the limit; remove one before adding another.`);
        }
        const now = this.clock.now().toISOString();
        await trx.insertInto('device_enrollment_managers').values({ tenant_id: actor.tenantId, user_id: user.id, created_at: now }).execute();
        const [dem] = await this.toEntities(actor.tenantId, [await this.row(trx, actor, user.id)], trx);
        await this.audit.record(trx, actor, {
          ...AUDIT,
          activity: 'Create device enrollment manager',
          operation: 'Create',
          resourceId: dem!.id,
          resourceDisplayName: dem!.userPrincipalName,
          after: { ...dem! },
        });
        return dem!;
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict('The user was made a device enrollment manager at the same time; it is one now.');
      throw err;
    }
  }

  async remove(actor: Actor, idOrUpn: string): Promise<void> {
    await this.store.transaction(async (trx) => {
      const row = await this.row(trx, actor, idOrUpn);
      const [dem] = await this.toEntities(actor.tenantId, [row], trx);
      await trx.deleteFrom('device_enrollment_managers').where('tenant_id', '=', actor.tenantId).where('user_id', '=', row.id).execute();
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Delete device enrollment manager',
        operation: 'Delete',
        resourceId: row.id,
        resourceDisplayName: row.user_principal_name,
        before: { ...dem! },
      });
    });
  }

  /** Serialises adds per tenant on PostgreSQL, so two at 149 can't both pass the limit (SQLite has one writer). */
  private async lockTenant(trx: Trx, tenantId: string): Promise<void> {
    if (this.store.dialect === 'postgres') await trx.selectFrom('tenants').select('id').where('id', '=', tenantId).forUpdate().execute();
  }
}
