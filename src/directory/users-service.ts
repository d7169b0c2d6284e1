import crypto from 'node:crypto';
import type { Actor } from '../auth/principal.js';
import type { AuditLog } from '../audit/audit-log.js';
import { conflict, invalidProperty, notFound } from '../graph/errors.js';
import type { ApiVersion } from '../graph/http.js';
import type { Executor, Store, Trx } from '../store/db.js';
import { isUniqueViolation } from '../store/db.js';
import type { UsersTable } from '../store/schema.js';
import type { Clock } from '../shared/time.js';
import { deriveMailNickname, USER_LIMITS, userFieldsProblem, type UserFields } from './directory-rules.js';
import { toUser, USER_TYPE } from './entities.js';
import { hashPassword } from './passwords.js';

export type CreateUserInput = UserFields & { userPrincipalName: string; displayName: string };

const AUDIT = { category: 'Directory', componentName: 'Directory', resourceType: USER_TYPE } as const;

/** The audit view of a user: every property, and only a marker when a password was set. */
function auditView(r: UsersTable, passwordSet = false): Record<string, unknown> {
  return { ...toUser(r, 'beta'), ...(passwordSet ? { passwordProfile: { forceChangePasswordNextSignIn: r.force_change_password === 1 } } : {}) };
}

export const upnTaken = (upn: string) => conflict(`Another object with the same value for property userPrincipalName already exists: '${upn}'.`, 'userPrincipalName');

/** Users of a tenant. Reads and writes are always limited to the actor's tenant. */
export class UserService {
  constructor(
    private readonly store: Store,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  base(actor: Actor) {
    return this.store.db.selectFrom('users').selectAll().where('tenant_id', '=', actor.tenantId);
  }

  /** Graph addresses a user by id or by userPrincipalName. */
  async findRow(db: Executor, tenantId: string, idOrUpn: string): Promise<UsersTable | undefined> {
    const q = db.selectFrom('users').selectAll().where('tenant_id', '=', tenantId);
    return idOrUpn.includes('@') ? q.where('upn_lower', '=', idOrUpn.toLowerCase()).executeTakeFirst() : q.where('id', '=', idOrUpn).executeTakeFirst();
  }

  async getRow(actor: Actor, idOrUpn: string): Promise<UsersTable> {
    const row = await this.findRow(this.store.db, actor.tenantId, idOrUpn);
    if (!row) throw notFound(`User '${idOrUpn}' was not found.`);
    return row;
  }

  async get(actor: Actor, idOrUpn: string, version: ApiVersion): Promise<Record<string, unknown>> {
    return toUser(await this.getRow(actor, idOrUpn), version);
  }

  async create(actor: Actor, input: CreateUserInput, version: ApiVersion): Promise<Record<string, unknown>> {
    checkFields(input);
    const passwordHash = input.passwordProfile ? await hashPassword(input.passwordProfile.password) : null;
    try {
      const row = await this.store.transaction(async (trx) => {
        if (await this.findRow(trx, actor.tenantId, input.userPrincipalName)) throw upnTaken(input.userPrincipalName);
        return this.insert(trx, actor, input, passwordHash);
      });
      return toUser(row, version);
    } catch (err) {
      if (isUniqueViolation(err)) throw upnTaken(input.userPrincipalName);
      throw err;
    }
  }

  /** Inserts a validated user and its audit event in the caller's transaction. */
  async insert(trx: Trx, actor: Actor, input: CreateUserInput, passwordHash: string | null): Promise<UsersTable> {
    const [row] = await this.insertMany(trx, actor, [{ input, passwordHash }]);
    return row!;
  }

  /** Inserts validated users with one statement, and one audit event each, in the caller's transaction. */
  async insertMany(trx: Trx, actor: Actor, items: { input: CreateUserInput; passwordHash: string | null }[]): Promise<UsersTable[]> {
    const now = this.clock.now().toISOString();
    const rows = items.map(({ input, passwordHash }) => this.newRow(actor.tenantId, input, passwordHash, now));
    if (rows.length === 0) return rows;
    await trx.insertInto('users').values(rows).execute();
    for (const row of rows) {
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Add user',
        operation: 'Create',
        resourceId: row.id,
        resourceDisplayName: row.display_name,
        after: auditView(row, row.password_hash !== null),
      });
    }
    return rows;
  }

  private newRow(tenantId: string, input: CreateUserInput, passwordHash: string | null, now: string): UsersTable {
    return {
      id: crypto.randomUUID(),
      tenant_id: tenantId,
      user_principal_name: input.userPrincipalName,
      upn_lower: input.userPrincipalName.toLowerCase(),
      display_name: input.displayName,
      given_name: input.givenName ?? null,
      surname: input.surname ?? null,
      mail: input.mail ?? null,
      mail_nickname: input.mailNickname ?? deriveMailNickname(input.userPrincipalName.split('@')[0]!, USER_LIMITS.mailNickname),
      account_enabled: input.accountEnabled === false ? 0 : 1,
      job_title: input.jobTitle ?? null,
      department: input.department ?? null,
      office_location: input.officeLocation ?? null,
      mobile_phone: input.mobilePhone ?? null,
      usage_location: input.usageLocation?.toUpperCase() ?? null,
      user_type: input.userType ?? 'Member',
      employee_id: input.employeeId ?? null,
      password_hash: passwordHash,
      // An admin-chosen password must be changed at first sign-in unless the admin says otherwise.
      force_change_password: input.passwordProfile ? (input.passwordProfile.forceChangePasswordNextSignIn === false ? 0 : 1) : 0,
      device_enrollment_limit: input.deviceEnrollmentLimit ?? null,
      created_at: now,
      updated_at: now,
    };
  }

  async update(actor: Actor, idOrUpn: string, patch: UserFields, version: ApiVersion): Promise<Record<string, unknown>> {
    checkFields(patch);
    const passwordHash = patch.passwordProfile ? await hashPassword(patch.passwordProfile.password) : undefined;
    try {
      const row = await this.store.transaction(async (trx) => {
        const before = await this.findRow(trx, actor.tenantId, idOrUpn);
        if (!before) throw notFound(`User '${idOrUpn}' was not found.`);
        if (patch.userPrincipalName !== undefined && patch.userPrincipalName.toLowerCase() !== before.upn_lower) {
          if (await this.findRow(trx, actor.tenantId, patch.userPrincipalName)) throw upnTaken(patch.userPrincipalName);
        }
        const pick = <T>(v: T | undefined, old: T): T => (v === undefined ? old : v);
        const after: UsersTable = {
          ...before,
          user_principal_name: pick(patch.userPrincipalName, before.user_principal_name),
          upn_lower: pick(patch.userPrincipalName, before.user_principal_name).toLowerCase(),
          display_name: pick(patch.displayName, before.display_name),
          given_name: pick(patch.givenName, before.given_name),
          surname: pick(patch.surname, before.surname),
          mail: pick(patch.mail, before.mail),
          mail_nickname: pick(patch.mailNickname, before.mail_nickname),
          account_enabled: patch.accountEnabled === undefined ? before.account_enabled : patch.accountEnabled ? 1 : 0,
          job_title: pick(patch.jobTitle, before.job_title),
          department: pick(patch.department, before.department),
          office_location: pick(patch.officeLocation, before.office_location),
          mobile_phone: pick(patch.mobilePhone, before.mobile_phone),
          usage_location: patch.usageLocation === undefined ? before.usage_location : (patch.usageLocation?.toUpperCase() ?? null),
          user_type: pick(patch.userType, before.user_type),
          employee_id: pick(patch.employeeId, before.employee_id),
          device_enrollment_limit: pick(patch.deviceEnrollmentLimit, before.device_enrollment_limit),
          password_hash: passwordHash ?? before.password_hash,
          force_change_password: patch.passwordProfile
            ? patch.passwordProfile.forceChangePasswordNextSignIn === false
              ? 0
              : 1
            : before.force_change_password,
          updated_at: this.clock.now().toISOString(),
        };
        const { id: _id, tenant_id: _tenant, created_at: _created, ...changes } = after;
        await trx.updateTable('users').set(changes).where('tenant_id', '=', actor.tenantId).where('id', '=', before.id).execute();
        await this.audit.record(trx, actor, {
          ...AUDIT,
          activity: 'Update user',
          operation: 'Patch',
          resourceId: before.id,
          resourceDisplayName: after.display_name,
          before: auditView(before),
          after: auditView(after, passwordHash !== undefined),
        });
        return after;
      });
      return toUser(row, version);
    } catch (err) {
      if (isUniqueViolation(err)) throw upnTaken(patch.userPrincipalName ?? idOrUpn);
      throw err;
    }
  }

  /** Deletes a user and its group memberships. */
  async delete(actor: Actor, idOrUpn: string): Promise<void> {
    await this.store.transaction(async (trx) => {
      const row = await this.findRow(trx, actor.tenantId, idOrUpn);
      if (!row) throw notFound(`User '${idOrUpn}' was not found.`);
      await trx.deleteFrom('group_members').where('tenant_id', '=', actor.tenantId).where('member_id', '=', row.id).execute();
      await trx.deleteFrom('users').where('tenant_id', '=', actor.tenantId).where('id', '=', row.id).execute();
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Delete user',
        operation: 'Delete',
        resourceId: row.id,
        resourceDisplayName: row.display_name,
        before: auditView(row),
      });
    });
  }

  /** Groups the user belongs to, for /users/{id}/memberOf (after checking the user is the tenant's). */
  memberOfBase(actor: Actor, userId: string) {
    return this.store.db
      .selectFrom('groups')
      .selectAll()
      .where('tenant_id', '=', actor.tenantId)
      .where('id', 'in', this.store.db.selectFrom('group_members').select('group_id').where('tenant_id', '=', actor.tenantId).where('member_id', '=', userId));
  }
}

/** Throws the first field problem as a 400 naming the property. */
export function checkFields(f: UserFields): void {
  const p = userFieldsProblem(f);
  if (p) throw invalidProperty(p.property, p.problem);
}
