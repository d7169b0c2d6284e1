import crypto from 'node:crypto';
import { sql } from 'kysely';
import type { AuditLog } from '../../../audit/audit-log.js';
import type { Actor } from '../../../auth/principal.js';
import { badRequest, conflict, GraphError, notFound } from '../../../graph/errors.js';
import type { EntityModel, PropertyDef } from '../../../graph/odata/model.js';
import type { SecretStore } from '../../../secrets/secret-store.js';
import type { Clock } from '../../../shared/time.js';
import type { Executor, Store, Trx } from '../../../store/db.js';
import type { DepProfilesTable, DepTokensTable } from '../../../store/schema.js';
import {
  DEP_IOS_PROFILE_TYPE,
  parseProfileCreate,
  parseProfilePatch,
  profileChangeImpact,
  READ_ONLY_PROPERTIES,
  settingsJson,
  storedProfileFromRow,
  toGraphEntity,
  writableProperties,
  type DepProfilePlatform,
  type DepProfileWrite,
} from '../profiles/index.js';
import { defineJobKey, type AdeAssignments } from './assignment.js';
import { deviceView } from './device-view.js';
import { ADE_LIMITS, profileIdFor } from './model.js';
import { AUDIT_AREA, visibleToken } from './token-access.js';

/** Kind of the secrets holding macOS profiles' local admin passwords. */
export const PROFILE_PASSWORD_SECRET_KIND = 'adeProfileAdminPassword';

/** OpenEnroll's read-only extension properties of an ADE profile (ignored when a client sends them back). */
export const PROFILE_EXTENSION_PROPERTIES = ['createdDateTime', 'lastModifiedDateTime', 'appleProfileUuid', 'appleProfileDefinedDateTime', 'appleSyncError', 'revision'] as const;

const str = (column?: string, ci = false): PropertyDef => (column ? { type: 'string', column, ...(ci ? { caseInsensitive: true } : {}) } : { type: 'string', filterOps: [] });

/** $filter/$orderby on the stored columns; $select on every property of either profile type. */
export const profileModel: EntityModel = {
  typeName: DEP_IOS_PROFILE_TYPE,
  keyColumn: 'dep_profiles.id',
  properties: {
    ...Object.fromEntries([...new Set([...Object.keys(writableProperties('iOS')), ...Object.keys(writableProperties('macOS')), ...READ_ONLY_PROPERTIES])].map((k) => [k, { type: 'object' } as PropertyDef])),
    id: { type: 'string', column: 'dep_profiles.id', filterOps: ['eq', 'ne'] },
    displayName: str('display_name', true),
    description: str('description', true),
    createdDateTime: { type: 'datetime', column: 'created_at' },
    lastModifiedDateTime: { type: 'datetime', column: 'updated_at' },
    appleProfileUuid: { type: 'string', column: 'apple_profile_uuid', filterOps: ['eq', 'ne'] },
    appleProfileDefinedDateTime: { type: 'datetime', column: 'apple_defined_at' },
    appleSyncError: str(),
    revision: { type: 'int', column: 'revision' },
  },
};

const AUDIT = { ...AUDIT_AREA } as const;
const typeOf = (row: Pick<DepProfilesTable, 'platform'>) => (row.platform === 'macOS' ? 'microsoft.graph.depMacOSEnrollmentProfile' : DEP_IOS_PROFILE_TYPE);

function isDefaultIn(token: Pick<DepTokensTable, 'default_ios_profile_id' | 'default_macos_profile_id'>, id: string): boolean {
  return token.default_ios_profile_id === id || token.default_macos_profile_id === id;
}

/** The profile's Graph entity plus OpenEnroll's extension properties. */
export function toProfileEntity(row: DepProfilesTable, isDefault: boolean): Record<string, unknown> {
  return {
    ...toGraphEntity(storedProfileFromRow(row, isDefault)),
    createdDateTime: row.created_at,
    lastModifiedDateTime: row.updated_at,
    appleProfileUuid: row.apple_profile_uuid,
    appleProfileDefinedDateTime: row.apple_defined_at,
    appleSyncError: row.apple_sync_error,
    revision: row.revision,
  };
}

function withoutExtensions(body: unknown): unknown {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return body;
  const out = { ...(body as Record<string, unknown>) };
  for (const k of PROFILE_EXTENSION_PROPERTIES) delete out[k];
  return out;
}

export interface AdeProfileDeps {
  store: Store;
  secrets: SecretStore;
  audit: AuditLog;
  clock: Clock;
  assignments: AdeAssignments;
}

/** ADE enrollment profiles (depIOSEnrollmentProfile / depMacOSEnrollmentProfile) under a token. */
export class AdeProfileService {
  constructor(private readonly deps: AdeProfileDeps) {}

  /** The token's profiles, once the caller is known to see the token. */
  async base(actor: Actor, tokenId: string) {
    const token = await visibleToken(this.deps.store, actor, tokenId);
    return { token, query: this.deps.store.db.selectFrom('dep_profiles').selectAll().where('tenant_id', '=', actor.tenantId).where('token_id', '=', tokenId) };
  }

  toEntities(token: DepTokensTable, rows: readonly DepProfilesTable[]): Record<string, unknown>[] {
    return rows.map((r) => toProfileEntity(r, isDefaultIn(token, r.id)));
  }

  private async profileRow(db: Executor, actor: Actor, tokenId: string, id: string, lock = false): Promise<DepProfilesTable> {
    let q = db.selectFrom('dep_profiles').selectAll().where('tenant_id', '=', actor.tenantId).where('token_id', '=', tokenId).where('id', '=', id);
    if (lock && this.deps.store.dialect === 'postgres') q = q.forUpdate();
    const row = await q.executeTakeFirst();
    if (!row) throw notFound(`Enrollment profile '${id}' was not found in enrollment program token '${tokenId}'.`);
    return row;
  }

  private async reread(db: Executor, tenantId: string, id: string): Promise<DepProfilesTable> {
    return db.selectFrom('dep_profiles').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirstOrThrow();
  }

  async get(actor: Actor, tokenId: string, id: string): Promise<Record<string, unknown>> {
    const token = await visibleToken(this.deps.store, actor, tokenId);
    return toProfileEntity(await this.profileRow(this.deps.store.db, actor, tokenId, id), isDefaultIn(token, id));
  }

  /** The token's default profile of a platform, or null. */
  async defaultProfile(actor: Actor, tokenId: string, platform: DepProfilePlatform): Promise<Record<string, unknown> | null> {
    const token = await visibleToken(this.deps.store, actor, tokenId);
    const id = platform === 'iOS' ? token.default_ios_profile_id : token.default_macos_profile_id;
    if (!id) return null;
    const row = await this.deps.store.db.selectFrom('dep_profiles').selectAll().where('tenant_id', '=', actor.tenantId).where('id', '=', id).executeTakeFirst();
    return row ? toProfileEntity(row, true) : null;
  }

  async create(actor: Actor, tokenId: string, body: unknown): Promise<Record<string, unknown>> {
    const write = parseProfileCreate(withoutExtensions(body));
    const { tenantId } = actor;
    const { id, uploaded } = await this.deps.store.transaction(async (trx) => {
      const token = await visibleToken(this.deps.store, actor, tokenId, trx, true);
      const { n } = await trx.selectFrom('dep_profiles').select(sql<number | string>`count(*)`.as('n')).where('tenant_id', '=', tenantId).where('token_id', '=', tokenId).executeTakeFirstOrThrow();
      if (Number(n) >= ADE_LIMITS.profilesPerToken) {
        throw new GraphError(409, 'LimitExceeded', `An enrollment program token can have at most ${ADE_LIMITS.profilesPerToken} enrollment profiles; this one has ${Number(n)}. Delete a profile you no longer use first.`);
      }
      const now = this.deps.clock.now().toISOString();
      const row: DepProfilesTable = {
        id: profileIdFor(tokenId, crypto.randomUUID()),
        tenant_id: tenantId,
        token_id: tokenId,
        platform: write.platform,
        display_name: write.displayName,
        description: write.description,
        settings: settingsJson(write.settings),
        apple_profile_uuid: null,
        apple_defined_at: null,
        apple_sync_error: null,
        revision: 1,
        created_at: now,
        updated_at: now,
        admin_password_secret_id: null,
        apple_profile_hash: null,
      };
      if (write.platform === 'macOS' && typeof write.adminAccountPassword === 'string') {
        row.admin_password_secret_id = await this.deps.secrets.put(trx, tenantId, PROFILE_PASSWORD_SECRET_KIND, write.adminAccountPassword);
      }
      await trx.insertInto('dep_profiles').values(row).execute();
      // Durable: if the inline definition below doesn't happen (crash) or fails, the job does it.
      if (token.oauth_secret_id) await this.deps.assignments.scheduleDefine(trx, tenantId, row.id);
      await this.deps.audit.record(trx, actor, {
        ...AUDIT,
        resourceType: typeOf(row),
        activity: 'Create ADE enrollment profile',
        operation: 'Create',
        resourceId: row.id,
        resourceDisplayName: row.display_name,
        after: toProfileEntity(row, false),
      });
      return { id: row.id, uploaded: token.oauth_secret_id !== null };
    });
    if (uploaded) await this.deps.assignments.defineIfNeeded(tenantId, id);
    return toProfileEntity(await this.reread(this.deps.store.db, tenantId, id), false);
  }

  /**
   * PATCH: merged onto the stored profile and validated whole. A change Apple sees defines the
   * profile anew (new profile_uuid, devices re-assigned); a change that reaches enrolled devices
   * only after a reset bumps the revision (they show pendingReset); names and the device name
   * template don't.
   */
  async update(actor: Actor, tokenId: string, id: string, body: unknown): Promise<Record<string, unknown>> {
    const { tenantId } = actor;
    const stripped = withoutExtensions(body);
    const { uploaded, isDefault } = await this.deps.store.transaction(async (trx) => {
      const token = await visibleToken(this.deps.store, actor, tokenId, trx, true);
      const row = await this.profileRow(trx, actor, tokenId, id, true);
      const isDefault = isDefaultIn(token, id);
      const current = storedProfileFromRow(row, isDefault);
      const write: DepProfileWrite = parseProfilePatch(current, stripped);
      const password = write.platform === 'macOS' ? write.adminAccountPassword : undefined;
      const impact = profileChangeImpact(current, write, typeof password === 'string');
      const now = this.deps.clock.now().toISOString();
      let secretId = row.admin_password_secret_id;
      if (typeof password === 'string') {
        if (secretId) await this.deps.secrets.replace(trx, tenantId, secretId, password);
        else secretId = await this.deps.secrets.put(trx, tenantId, PROFILE_PASSWORD_SECRET_KIND, password);
      } else if (password === null && secretId) {
        await this.deps.secrets.delete(trx, tenantId, secretId);
        secretId = null;
      }
      const after: DepProfilesTable = {
        ...row,
        display_name: write.displayName,
        description: write.description,
        settings: settingsJson(write.settings),
        revision: impact.marksDevicesPendingReset ? row.revision + 1 : row.revision,
        admin_password_secret_id: secretId,
        updated_at: impact.changed.length > 0 ? now : row.updated_at,
      };
      await trx
        .updateTable('dep_profiles')
        .set({
          display_name: after.display_name,
          description: after.description,
          settings: after.settings,
          revision: after.revision,
          admin_password_secret_id: after.admin_password_secret_id,
          updated_at: after.updated_at,
        })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .execute();
      if (token.oauth_secret_id && impact.appleProfileChanged) await this.deps.assignments.scheduleDefine(trx, tenantId, id);
      await this.deps.audit.record(trx, actor, {
        ...AUDIT,
        resourceType: typeOf(row),
        activity: impact.marksDevicesPendingReset ? 'Patch ADE enrollment profile (enrolled devices apply it after a reset)' : 'Patch ADE enrollment profile',
        operation: 'Patch',
        resourceId: id,
        resourceDisplayName: after.display_name,
        before: toProfileEntity(row, isDefault),
        after: { ...toProfileEntity(after, isDefault), ...(typeof password === 'string' ? { adminAccountPassword: password } : {}) },
      });
      return { uploaded: token.oauth_secret_id !== null, isDefault };
    });
    if (uploaded) {
      // A new Apple profile: its devices get the new UUID now (the assign job does any rest).
      const defined = await this.deps.assignments.defineIfNeeded(tenantId, id);
      if (defined?.ok) await this.deps.assignments.pushPending(tenantId, tokenId);
    }
    return toProfileEntity(await this.reread(this.deps.store.db, tenantId, id), isDefault);
  }

  /** Refused while devices depend on the profile (chosen for them, or as the default of their platform). */
  async delete(actor: Actor, tokenId: string, id: string): Promise<void> {
    const { tenantId } = actor;
    await this.deps.store.transaction(async (trx) => {
      const token = await visibleToken(this.deps.store, actor, tokenId, trx, true);
      const row = await this.profileRow(trx, actor, tokenId, id, true);
      const isDefault = isDefaultIn(token, id);
      const { n } = await trx
        .selectFrom(deviceView(trx, tenantId).where('d.token_id', '=', tokenId).where('d.removed_from_apple_at', 'is', null).where('p.id', '=', id).as('v'))
        .select(sql<number | string>`count(*)`.as('n'))
        .executeTakeFirstOrThrow();
      const count = Number(n);
      if (count > 0) {
        throw conflict(
          `The enrollment profile can't be deleted: ${count} device${count === 1 ? ' uses' : 's use'} it${isDefault ? ' (chosen for them, or as the default profile of the token)' : ''}. ` +
            'Assign those devices another profile (or delete them) first.',
        );
      }
      // Released devices and devices an admin deleted lose the choice with the profile.
      await trx.updateTable('dep_devices').set({ requested_profile_id: null, requested_profile_assigned_at: null }).where('tenant_id', '=', tenantId).where('requested_profile_id', '=', id).execute();
      if (isDefault) {
        await trx
          .updateTable('dep_tokens')
          .set(row.platform === 'macOS' ? { default_macos_profile_id: null } : { default_ios_profile_id: null })
          .where('tenant_id', '=', tenantId)
          .where('id', '=', tokenId)
          .execute();
      }
      if (row.admin_password_secret_id) await this.deps.secrets.delete(trx, tenantId, row.admin_password_secret_id);
      await trx.deleteFrom('dep_profiles').where('tenant_id', '=', tenantId).where('id', '=', id).execute();
      // Cancelled after the row is gone, so a running define finds nothing to store.
      await this.cancelDefine(trx, tenantId, id);
      await this.deps.audit.record(trx, actor, {
        ...AUDIT,
        resourceType: typeOf(row),
        activity: 'Delete ADE enrollment profile',
        operation: 'Delete',
        resourceId: id,
        resourceDisplayName: row.display_name,
        before: toProfileEntity(row, isDefault),
      });
    });
  }

  private async cancelDefine(trx: Trx, tenantId: string, id: string): Promise<void> {
    await trx.deleteFrom('jobs').where('tenant_id', '=', tenantId).where('dedupe_key', '=', defineJobKey(id)).where('status', '<>', 'running').execute();
  }

  /**
   * setDefaultProfile: the token's default for the profile's platform. Devices of that platform
   * without an admin's choice get it at Apple (now, and by the assign job for the rest).
   */
  async setDefault(actor: Actor, tokenId: string, id: string): Promise<void> {
    const { tenantId } = actor;
    const { push } = await this.deps.store.transaction(async (trx) => {
      const token = await visibleToken(this.deps.store, actor, tokenId, trx, true);
      const row = await this.profileRow(trx, actor, tokenId, id);
      const mac = row.platform === 'macOS';
      const previous = mac ? token.default_macos_profile_id : token.default_ios_profile_id;
      if (previous !== id) {
        await trx
          .updateTable('dep_tokens')
          .set({ ...(mac ? { default_macos_profile_id: id } : { default_ios_profile_id: id }), updated_at: this.deps.clock.now().toISOString() })
          .where('tenant_id', '=', tenantId)
          .where('id', '=', tokenId)
          .execute();
        await this.deps.audit.record(trx, actor, {
          ...AUDIT,
          resourceType: typeOf(row),
          activity: `Set default ${mac ? 'macOS' : 'iOS/iPadOS'} ADE enrollment profile`,
          operation: 'Action',
          resourceId: id,
          resourceDisplayName: row.display_name,
          before: { isDefault: false, previousDefaultProfileId: previous },
          after: { isDefault: true },
        });
      }
      const marked = await this.deps.assignments.markPending(trx, tenantId, tokenId, { defaultOf: mac ? 'macOS' : 'ios' });
      const push = marked > 0 && token.oauth_secret_id !== null;
      if (push) await this.deps.assignments.scheduleAssign(trx, tenantId, tokenId);
      return { push };
    });
    if (push) await this.deps.assignments.pushPending(tenantId, tokenId);
  }

  /** exportMobileConfig belongs to Apple Configurator profiles. */
  async exportMobileConfig(actor: Actor, tokenId: string, id: string): Promise<never> {
    await visibleToken(this.deps.store, actor, tokenId);
    const row = await this.profileRow(this.deps.store.db, actor, tokenId, id);
    throw badRequest(
      `exportMobileConfig exports Apple Configurator enrollment profiles; '${row.display_name}' is an Automated Device Enrollment profile (#${typeOf(row)}), which Apple delivers to devices during Setup Assistant.`,
    );
  }
}
