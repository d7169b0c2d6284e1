import crypto from 'node:crypto';
import type { AuditLog } from '../../audit/audit-log.js';
import { systemActor, type Actor } from '../../auth/principal.js';
import { assertTagsExist, deleteObjectTags, readObjectTags, tagsForNewObject, whereVisible, writeObjectTags, patchObjectTags } from '../../auth/scope-tags.js';
import { compareTagIds } from '../../devices/model.js';
import { badRequest, conflict, invalidProperty, notFound } from '../../graph/errors.js';
import type { ApiVersion } from '../../graph/http.js';
import type { Clock } from '../../shared/time.js';
import type { Executor, Store, Trx } from '../../store/db.js';
import type { EnrollmentUserAssignmentsTable, TermsAcceptancesTable, TermsAndConditionsTable } from '../../store/schema.js';
import {
  acceptanceId,
  acceptanceIsCurrent,
  checkUserFacingText,
  initialVersion,
  nextVersion,
  TERMS_OBJECT,
  TERMS_TYPE,
  toAcceptanceEntity,
  toTermsEntity,
} from './rules.js';
import { parseUserTarget, UserAssignments } from './user-targets.js';

export interface TermsInput {
  displayName?: string;
  description?: string | null;
  title?: string | null;
  bodyText?: string | null;
  acceptanceStatement?: string | null;
  version?: number;
  roleScopeTagIds?: string[];
}

/** What the enrollment gate and the user's enrollment page need about one policy. */
export interface UserTerms {
  termsId: string;
  version: number;
  accepted: boolean;
  displayName: string;
  title: string | null;
  bodyText: string | null;
  acceptanceStatement: string | null;
}

const AUDIT = { resourceType: TERMS_TYPE, category: 'Enrollment', componentName: 'Enrollment' } as const;
const LABEL = 'terms and conditions';

/** Terms and conditions, their assignments and who accepted which version. */
export class TermsService {
  readonly assignments = new UserAssignments(TERMS_OBJECT, LABEL);

  constructor(
    private readonly store: Store,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  /** The caller's tenant's policies it can see. */
  base(actor: Actor) {
    const q = this.store.db.selectFrom('terms_and_conditions').selectAll().where('tenant_id', '=', actor.tenantId);
    return whereVisible(q, actor.principal, TERMS_OBJECT, 'terms_and_conditions.id');
  }

  async toEntities(tenantId: string, rows: readonly TermsAndConditionsTable[], version: ApiVersion, db: Executor = this.store.db): Promise<Record<string, unknown>[]> {
    const tags = await readObjectTags(db, tenantId, TERMS_OBJECT, rows.map((r) => r.id));
    return rows.map((r) => toTermsEntity(r, (tags.get(r.id) ?? []).sort(compareTagIds), version));
  }

  /** The policy if the caller can see it; 404 otherwise (out-of-scope objects don't exist for it). */
  async row(actor: Actor, id: string, db: Executor = this.store.db): Promise<TermsAndConditionsTable> {
    const q = db.selectFrom('terms_and_conditions').selectAll().where('tenant_id', '=', actor.tenantId).where('id', '=', id);
    const row = await whereVisible(q, actor.principal, TERMS_OBJECT, 'terms_and_conditions.id').executeTakeFirst();
    if (!row) throw notFound(`Terms and conditions '${id}' was not found.`);
    return row;
  }

  async get(actor: Actor, id: string, version: ApiVersion): Promise<Record<string, unknown>> {
    const [entity] = await this.toEntities(actor.tenantId, [await this.row(actor, id)], version);
    return entity!;
  }

  async create(actor: Actor, input: TermsInput & { displayName: string }, version: ApiVersion): Promise<Record<string, unknown>> {
    const now = this.clock.now().toISOString();
    const row: TermsAndConditionsTable = {
      id: crypto.randomUUID(),
      tenant_id: actor.tenantId,
      display_name: input.displayName,
      description: input.description ?? null,
      title: input.title ?? null,
      body_text: input.bodyText ?? null,
      acceptance_statement: input.acceptanceStatement ?? null,
      version: initialVersion(input.version),
      created_at: now,
      updated_at: now,
    };
    checkName(row.display_name);
    checkUserFacingText({ title: row.title, bodyText: row.body_text });
    const tags = tagsForNewObject(actor.principal, input.roleScopeTagIds).sort(compareTagIds);
    return this.store.transaction(async (trx) => {
      await assertTagsExist(trx, actor.tenantId, tags);
      await trx.insertInto('terms_and_conditions').values(row).execute();
      await writeObjectTags(trx, actor.tenantId, TERMS_OBJECT, row.id, tags);
      const entity = toTermsEntity(row, tags, 'beta');
      await this.audit.record(trx, actor, { ...AUDIT, activity: 'Create terms and conditions', operation: 'Create', resourceId: row.id, resourceDisplayName: row.display_name, after: entity });
      return toTermsEntity(row, tags, version);
    });
  }

  async update(actor: Actor, id: string, patch: TermsInput, version: ApiVersion): Promise<Record<string, unknown>> {
    return this.store.transaction(async (trx) => {
      const before = await this.row(actor, id, trx);
      const beforeTags = (await readObjectTags(trx, actor.tenantId, TERMS_OBJECT, [id])).get(id)!.sort(compareTagIds);
      const after: TermsAndConditionsTable = {
        ...before,
        display_name: patch.displayName ?? before.display_name,
        description: patch.description === undefined ? before.description : patch.description,
        title: patch.title === undefined ? before.title : patch.title,
        body_text: patch.bodyText === undefined ? before.body_text : patch.bodyText,
        acceptance_statement: patch.acceptanceStatement === undefined ? before.acceptance_statement : patch.acceptanceStatement,
        version: nextVersion(before.version, patch.version),
        updated_at: this.clock.now().toISOString(),
      };
      checkName(after.display_name);
      checkUserFacingText({ title: after.title, bodyText: after.body_text });
      let tags = beforeTags;
      if (patch.roleScopeTagIds !== undefined) {
        tags = await patchObjectTags(trx, actor, { type: TERMS_OBJECT, id, label: 'an object' }, beforeTags, patch.roleScopeTagIds);
      }
      const { id: _id, tenant_id: _t, created_at: _c, ...set } = after;
      await trx.updateTable('terms_and_conditions').set(set).where('tenant_id', '=', actor.tenantId).where('id', '=', id).execute();
      const bumped = after.version !== before.version;
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: bumped ? 'Patch terms and conditions (users must accept again)' : 'Patch terms and conditions',
        operation: 'Patch',
        resourceId: id,
        resourceDisplayName: after.display_name,
        before: toTermsEntity(before, beforeTags, 'beta'),
        after: toTermsEntity(after, tags, 'beta'),
      });
      return toTermsEntity(after, tags, version);
    });
  }

  async delete(actor: Actor, id: string): Promise<void> {
    await this.store.transaction(async (trx) => {
      const row = await this.row(actor, id, trx);
      const tags = (await readObjectTags(trx, actor.tenantId, TERMS_OBJECT, [id])).get(id)!.sort(compareTagIds);
      await this.assignments.deleteAll(trx, actor.tenantId, id);
      await trx.deleteFrom('terms_acceptances').where('tenant_id', '=', actor.tenantId).where('terms_id', '=', id).execute();
      await trx.deleteFrom('terms_and_conditions').where('tenant_id', '=', actor.tenantId).where('id', '=', id).execute();
      await deleteObjectTags(trx, actor.tenantId, TERMS_OBJECT, id);
      await this.audit.record(trx, actor, { ...AUDIT, activity: 'Delete terms and conditions', operation: 'Delete', resourceId: id, resourceDisplayName: row.display_name, before: toTermsEntity(row, tags, 'beta') });
    });
  }

  // ---- assignments (both the `assignments` and the legacy `groupAssignments` views of one set) ----

  async listAssignments(actor: Actor, termsId: string): Promise<EnrollmentUserAssignmentsTable[]> {
    await this.row(actor, termsId);
    return this.assignments.list(this.store.db, actor.tenantId, termsId);
  }

  async getAssignment(actor: Actor, termsId: string, id: string): Promise<EnrollmentUserAssignmentsTable> {
    await this.row(actor, termsId);
    return this.assignments.get(this.store.db, actor.tenantId, termsId, id);
  }

  async createAssignment(actor: Actor, termsId: string, rawTarget: unknown): Promise<EnrollmentUserAssignmentsTable> {
    const target = parseUserTarget(rawTarget, LABEL);
    return this.store.transaction(async (trx) => {
      const terms = await this.row(actor, termsId, trx);
      const row = await this.assignments.create(trx, actor.tenantId, termsId, target, this.clock.now().toISOString());
      await this.auditAssignment(trx, actor, terms, 'Create terms and conditions assignment', 'Create', null, row);
      return row;
    });
  }

  async updateAssignment(actor: Actor, termsId: string, id: string, rawTarget: unknown): Promise<EnrollmentUserAssignmentsTable> {
    const parsed = parseUserTarget(rawTarget, LABEL);
    return this.store.transaction(async (trx) => {
      const terms = await this.row(actor, termsId, trx);
      const { before, after } = await this.assignments.update(trx, actor.tenantId, termsId, id, parsed);
      await this.auditAssignment(trx, actor, terms, 'Patch terms and conditions assignment', 'Patch', before, after);
      return after;
    });
  }

  async deleteAssignment(actor: Actor, termsId: string, id: string, onlyGroupTargets = false): Promise<void> {
    await this.store.transaction(async (trx) => {
      const terms = await this.row(actor, termsId, trx);
      if (onlyGroupTargets) await this.groupAssignment(trx, actor.tenantId, termsId, id);
      const row = await this.assignments.delete(trx, actor.tenantId, termsId, id);
      await this.auditAssignment(trx, actor, terms, 'Delete terms and conditions assignment', 'Delete', row, null);
    });
  }

  /** An assignment seen through `groupAssignments`: only plain group targets are there. */
  async groupAssignment(db: Executor, tenantId: string, termsId: string, id: string): Promise<EnrollmentUserAssignmentsTable> {
    const row = await this.assignments.get(db, tenantId, termsId, id);
    if (row.target_type !== 'group') throw notFound(`Group assignment '${id}' was not found.`);
    return row;
  }

  async getGroupAssignment(actor: Actor, termsId: string, id: string): Promise<EnrollmentUserAssignmentsTable> {
    await this.row(actor, termsId);
    return this.groupAssignment(this.store.db, actor.tenantId, termsId, id);
  }

  async updateGroupAssignment(actor: Actor, termsId: string, id: string, groupId: string): Promise<EnrollmentUserAssignmentsTable> {
    return this.store.transaction(async (trx) => {
      const terms = await this.row(actor, termsId, trx);
      await this.groupAssignment(trx, actor.tenantId, termsId, id);
      const { before, after } = await this.assignments.update(trx, actor.tenantId, termsId, id, { kind: 'group', groupId });
      await this.auditAssignment(trx, actor, terms, 'Patch terms and conditions assignment', 'Patch', before, after);
      return after;
    });
  }

  private async auditAssignment(
    trx: Trx,
    actor: Actor,
    terms: TermsAndConditionsTable,
    activity: string,
    operation: 'Create' | 'Patch' | 'Delete',
    before: EnrollmentUserAssignmentsTable | null,
    after: EnrollmentUserAssignmentsTable | null,
  ): Promise<void> {
    const show = (r: EnrollmentUserAssignmentsTable | null) => (r ? { assignmentId: r.id, targetType: r.target_type, groupId: r.group_id } : null);
    await this.audit.record(trx, actor, { ...AUDIT, activity, operation, resourceId: terms.id, resourceDisplayName: terms.display_name, before: show(before), after: show(after) });
  }

  // ---- acceptance ----

  acceptanceBase(actor: Actor, termsId: string) {
    return this.store.db.selectFrom('terms_acceptances').selectAll().where('tenant_id', '=', actor.tenantId).where('terms_id', '=', termsId);
  }

  async getAcceptance(actor: Actor, termsId: string, id: string): Promise<TermsAcceptancesTable> {
    await this.row(actor, termsId);
    const row = await this.acceptanceBase(actor, termsId).where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound(`Acceptance status '${id}' was not found.`);
    return row;
  }

  /** An admin records a user's acceptance of the current version (Graph's POST acceptanceStatuses). */
  async recordAcceptance(actor: Actor, termsId: string, input: { userPrincipalName: string; acceptedVersion?: number }): Promise<TermsAcceptancesTable> {
    return this.store.transaction(async (trx) => {
      const terms = await this.row(actor, termsId, trx);
      if (input.acceptedVersion !== undefined && input.acceptedVersion !== terms.version) {
        throw invalidProperty('acceptedVersion', `only the current version (${terms.version}) can be accepted.`);
      }
      const user = await trx
        .selectFrom('users')
        .select('id')
        .where('tenant_id', '=', actor.tenantId)
        .where('upn_lower', '=', input.userPrincipalName.toLowerCase())
        .executeTakeFirst();
      if (!user) throw invalidProperty('userPrincipalName', `no user '${input.userPrincipalName}' exists.`);
      return this.accept(trx, actor, terms, user.id);
    });
  }

  async deleteAcceptance(actor: Actor, termsId: string, id: string): Promise<void> {
    await this.store.transaction(async (trx) => {
      const terms = await this.row(actor, termsId, trx);
      const row = await trx.selectFrom('terms_acceptances').selectAll().where('tenant_id', '=', actor.tenantId).where('terms_id', '=', termsId).where('id', '=', id).executeTakeFirst();
      if (!row) throw notFound(`Acceptance status '${id}' was not found.`);
      await trx.deleteFrom('terms_acceptances').where('tenant_id', '=', actor.tenantId).where('id', '=', id).execute();
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Delete terms and conditions acceptance',
        operation: 'Delete',
        resourceId: terms.id,
        resourceDisplayName: terms.display_name,
        before: toAcceptanceEntity(row),
      });
    });
  }

  /**
   * The policies assigned to a user (through "all users" or their groups, minus excluded groups),
   * and whether the user accepted each one's current version. For the enrollment gate.
   */
  async termsForUser(db: Executor, tenantId: string, userId: string, userGroupIds: readonly string[]): Promise<UserTerms[]> {
    const ids = await this.assignments.objectsForUser(db, tenantId, userGroupIds);
    if (ids.length === 0) return [];
    const rows = await db.selectFrom('terms_and_conditions').selectAll().where('tenant_id', '=', tenantId).where('id', 'in', ids).orderBy('display_name').orderBy('id').execute();
    const accepted = await db
      .selectFrom('terms_acceptances')
      .select(['terms_id', 'accepted_version'])
      .where('tenant_id', '=', tenantId)
      .where('user_id', '=', userId)
      .where('terms_id', 'in', ids)
      .execute();
    const versions = new Map(accepted.map((a) => [a.terms_id, a.accepted_version]));
    return rows.map((r) => ({
      termsId: r.id,
      version: r.version,
      accepted: acceptanceIsCurrent(versions.get(r.id), r.version),
      displayName: r.display_name,
      title: r.title,
      bodyText: r.body_text,
      acceptanceStatement: r.acceptance_statement,
    }));
  }

  /**
   * The user accepts `version` of a policy (the enrollment page, in the caller's transaction).
   * Only the current version can be accepted: 409 when the policy changed since it was shown.
   */
  async acceptTerms(trx: Trx, tenantId: string, userId: string, termsId: string, version: number, opts: { requestId?: string } = {}): Promise<Record<string, unknown>> {
    const terms = await trx.selectFrom('terms_and_conditions').selectAll().where('tenant_id', '=', tenantId).where('id', '=', termsId).executeTakeFirst();
    if (!terms) throw notFound(`Terms and conditions '${termsId}' was not found.`);
    if (version !== terms.version) throw conflict(`The terms changed: version ${terms.version} is current, not ${version}. Show them again.`, 'version');
    const user = await trx.selectFrom('users').select(['user_principal_name']).where('tenant_id', '=', tenantId).where('id', '=', userId).executeTakeFirst();
    if (!user) throw badRequest(`User '${userId}' was not found.`, 'userId');
    const base = systemActor(tenantId, opts.requestId ?? crypto.randomUUID(), user.user_principal_name);
    const actor: Actor = { ...base, principal: { ...base.principal, userPrincipalName: user.user_principal_name } };
    return toAcceptanceEntity(await this.accept(trx, actor, terms, userId));
  }

  private async accept(trx: Trx, actor: Actor, terms: TermsAndConditionsTable, userId: string): Promise<TermsAcceptancesTable> {
    const user = await trx.selectFrom('users').select(['user_principal_name', 'display_name']).where('tenant_id', '=', terms.tenant_id).where('id', '=', userId).executeTakeFirstOrThrow();
    const before = await trx.selectFrom('terms_acceptances').selectAll().where('tenant_id', '=', terms.tenant_id).where('terms_id', '=', terms.id).where('user_id', '=', userId).executeTakeFirst();
    const row: TermsAcceptancesTable = {
      id: acceptanceId(terms.id, userId),
      tenant_id: terms.tenant_id,
      terms_id: terms.id,
      user_id: userId,
      user_principal_name: user.user_principal_name,
      user_display_name: user.display_name,
      accepted_version: terms.version,
      accepted_at: this.clock.now().toISOString(),
    };
    // One row per user and policy, even when two accepts race.
    await trx
      .insertInto('terms_acceptances')
      .values(row)
      .onConflict((oc) =>
        oc.columns(['tenant_id', 'terms_id', 'user_id']).doUpdateSet({
          accepted_version: row.accepted_version,
          accepted_at: row.accepted_at,
          user_principal_name: row.user_principal_name,
          user_display_name: row.user_display_name,
        }),
      )
      .execute();
    await this.audit.record(trx, actor, {
      ...AUDIT,
      activity: 'Accept terms and conditions',
      operation: 'Action',
      resourceId: terms.id,
      resourceDisplayName: terms.display_name,
      before: before ? toAcceptanceEntity(before) : null,
      after: toAcceptanceEntity(row),
    });
    return row;
  }
}

function checkName(name: string): void {
  if (name.trim() === '') throw invalidProperty('displayName', 'must not be empty.');
}
