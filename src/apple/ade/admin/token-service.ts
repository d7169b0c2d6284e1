import crypto from 'node:crypto';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { AuditLog } from '../../../audit/audit-log.js';
import { canSee, assertTagsExist, deleteObjectTags, readObjectTags, tagsForNewObject, writeObjectTags, patchObjectTags } from '../../../auth/scope-tags.js';
import { hasPermission, type Actor } from '../../../auth/principal.js';
import { compareTagIds } from '../../../devices/model.js';
import { badRequest, conflict, forbidden, GraphError, invalidProperty, serviceUnavailable } from '../../../graph/errors.js';
import type { JobScheduler } from '../../../jobs/scheduler.js';
import { parseCertificate } from '../../../pki/certificates.js';
import type { SecretStore } from '../../../secrets/secret-store.js';
import type { Clock } from '../../../shared/time.js';
import { isUniqueViolation, type Executor, type Store, type Trx } from '../../../store/db.js';
import type { DepTokensTable } from '../../../store/schema.js';
import { appleIdentifierProblem } from '../../push-certificate/rules.js';
import type { AdeSyncScheduler } from '../contracts.js';
import { DepApiError, type DepAccount, type DepApi, type DepOAuthTokens } from '../dep-api.js';
import { decryptServerToken, generateTokenEncryptionKeyPair, ServerTokenError } from '../server-token.js';
import { depPageLimit } from '../sync-policy.js';
import { assignJobKey, type AdeAssignments } from './assignment.js';
import { DEP_OAUTH_SECRET_KIND } from './dep-connection.js';
import { ADE_LIMITS, DEP_TOKEN_OBJECT, DEP_TOKEN_TYPE, emptyStatusCounts, toTokenEntity, tokenTypeOfOrg } from './model.js';
import { AUDIT_AREA, statusCounts, visibleToken, visibleTokens } from './token-access.js';

/** Kind of the secrets holding a token's public key's private half. */
export const TOKEN_KEY_SECRET_KIND = 'adeTokenEncryptionKey';

const AUDIT = { ...AUDIT_AREA, resourceType: DEP_TOKEN_TYPE } as const;
const CONSENT_TEXT = 'I grant permission to send both user and device information to Apple.';

/** The push certificate gate (AppleModule.requireReadyPushCertificate): throws the reason Apple enrollment can't start. */
export type PushGate = (db: Executor, tenantId: string, now?: Date) => Promise<unknown>;

export interface AdeTokenDeps {
  store: Store;
  secrets: SecretStore;
  audit: AuditLog;
  clock: Clock;
  jobs: JobScheduler;
  logger: Logger;
  sync: AdeSyncScheduler;
  pushGate: PushGate;
  assignments: AdeAssignments;
  /** A DEP client for credentials not stored yet (the upload checks them with Apple first). */
  depClient: (tokens: DepOAuthTokens) => DepApi;
}

export interface TokenCreate {
  tokenName?: string | null;
  dataSharingConsentGranted?: boolean;
  roleScopeTagIds?: string[];
}

interface KeyHistoryEntry {
  serialNumber: string;
  createdAt: string | null;
  replacedAt: string;
}

function keyHistory(row: Pick<DepTokensTable, 'encryption_key_history'>): KeyHistoryEntry[] {
  try {
    const v: unknown = JSON.parse(row.encryption_key_history);
    return Array.isArray(v) ? (v as KeyHistoryEntry[]).filter((e) => typeof e?.serialNumber === 'string') : [];
  } catch {
    return [];
  }
}

const currentKeySerial = (row: Pick<DepTokensTable, 'encryption_cert_pem'>) => (row.encryption_cert_pem ? parseCertificate(row.encryption_cert_pem).serialNumberHex.toUpperCase() : null);

const nameOf = (row: Pick<DepTokensTable, 'token_name' | 'id'>) => (row.token_name ? `'${row.token_name}' (${row.id})` : `'${row.id}'`);

/** depOnboardingSetting: tokens, their public keys, server token uploads and renewals, School Data Sync. */
export class AdeTokenService {
  constructor(private readonly deps: AdeTokenDeps) {}

  base(actor: Actor) {
    return visibleTokens(this.deps.store.db, actor);
  }

  row(actor: Actor, id: string, db: Executor = this.deps.store.db, lock = false): Promise<DepTokensTable> {
    return visibleToken(this.deps.store, actor, id, db, lock);
  }

  async toEntities(tenantId: string, rows: readonly DepTokensTable[], db: Executor = this.deps.store.db): Promise<Record<string, unknown>[]> {
    const ids = rows.map((r) => r.id);
    const tags = await readObjectTags(db, tenantId, DEP_TOKEN_OBJECT, ids);
    const counts = await statusCounts(db, tenantId, ids);
    const now = this.deps.clock.now();
    return rows.map((r) => toTokenEntity(r, (tags.get(r.id) ?? []).sort(compareTagIds), counts.get(r.id) ?? emptyStatusCounts(), now));
  }

  private async entity(tenantId: string, row: DepTokensTable, db: Executor): Promise<Record<string, unknown>> {
    return (await this.toEntities(tenantId, [row], db))[0]!;
  }

  async get(actor: Actor, id: string): Promise<Record<string, unknown>> {
    return this.entity(actor.tenantId, await this.row(actor, id), this.deps.store.db);
  }

  private async reread(trx: Executor, tenantId: string, id: string): Promise<DepTokensTable> {
    return trx.selectFrom('dep_tokens').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirstOrThrow();
  }

  /** POST: a token placeholder; the public key and Apple's server token come next. */
  async create(actor: Actor, input: TokenCreate): Promise<Record<string, unknown>> {
    if (input.dataSharingConsentGranted !== true) {
      throw invalidProperty('dataSharingConsentGranted', `must be true: consent to share data with Apple ("${CONSENT_TEXT}") is required to add an enrollment program token.`);
    }
    const tokenName = input.tokenName?.trim() || null;
    const tags = tagsForNewObject(actor.principal, input.roleScopeTagIds).sort(compareTagIds);
    const now = this.deps.clock.now().toISOString();
    return this.deps.store.transaction(async (trx) => {
      await assertTagsExist(trx, actor.tenantId, tags);
      // Serialises creations per tenant, so the limit holds under concurrency (SQLite serialises writers anyway).
      if (this.deps.store.dialect === 'postgres') await trx.selectFrom('tenants').select('id').where('id', '=', actor.tenantId).forUpdate().execute();
      const { n } = await trx.selectFrom('dep_tokens').select(sql<number | string>`count(*)`.as('n')).where('tenant_id', '=', actor.tenantId).executeTakeFirstOrThrow();
      if (Number(n) >= ADE_LIMITS.tokensPerTenant) {
        throw new GraphError(409, 'LimitExceeded', `An Intune account can have at most ${ADE_LIMITS.tokensPerTenant} enrollment program tokens; this tenant has ${Number(n)}. Delete a token you no longer use first.`);
      }
      const row: DepTokensTable = {
        id: crypto.randomUUID(),
        tenant_id: actor.tenantId,
        token_name: tokenName,
        apple_identifier: null,
        token_type: 'none',
        data_sharing_consent: 1,
        token_expiration: null,
        oauth_secret_id: null,
        consumer_key: null,
        encryption_cert_pem: null,
        encryption_key_secret_id: null,
        encryption_key_created_at: null,
        encryption_key_history: '[]',
        server_uuid: null,
        server_name: null,
        org_name: null,
        org_id: null,
        org_type: null,
        admin_id: null,
        fetch_limit: null,
        sync_limit: null,
        share_sds: 0,
        cursor: null,
        sync_phase: 'fetch',
        sync_status: 'none',
        next_sync_full: 1,
        last_sync_triggered_at: null,
        last_manual_sync_at: null,
        last_sync_started_at: null,
        last_successful_sync_at: null,
        last_full_sync_at: null,
        last_sync_error_code: 0,
        last_sync_error: null,
        apple_status: null,
        synced_device_count: 0,
        default_ios_profile_id: null,
        default_macos_profile_id: null,
        created_at: now,
        updated_at: now,
        fetch_id: null,
      };
      await trx.insertInto('dep_tokens').values(row).execute();
      await writeObjectTags(trx, actor.tenantId, DEP_TOKEN_OBJECT, row.id, tags);
      const entity = await this.entity(actor.tenantId, row, trx);
      await this.deps.audit.record(trx, actor, { ...AUDIT, activity: 'Create enrollment program token', operation: 'Create', resourceId: row.id, resourceDisplayName: tokenName, after: entity });
      return entity;
    });
  }

  /** PATCH: tokenName, roleScopeTagIds, dataSharingConsentGranted (consent can't be withdrawn; delete the token instead). */
  async update(actor: Actor, id: string, patch: TokenCreate): Promise<Record<string, unknown>> {
    if (patch.dataSharingConsentGranted === false) {
      throw invalidProperty('dataSharingConsentGranted', 'consent to share data with Apple is required while the token exists; delete the token to stop sharing data with Apple.');
    }
    return this.deps.store.transaction(async (trx) => {
      const before = await this.row(actor, id, trx, true);
      const beforeEntity = await this.entity(actor.tenantId, before, trx);
      if (patch.roleScopeTagIds !== undefined) {
        await patchObjectTags(trx, actor, { type: DEP_TOKEN_OBJECT, id, label: 'an enrollment program token' }, beforeEntity.roleScopeTagIds as string[], patch.roleScopeTagIds);
      }
      const set: Partial<DepTokensTable> = { updated_at: this.deps.clock.now().toISOString() };
      if (patch.tokenName !== undefined) set.token_name = patch.tokenName?.trim() || null;
      await trx.updateTable('dep_tokens').set(set).where('tenant_id', '=', actor.tenantId).where('id', '=', id).execute();
      const after = await this.entity(actor.tenantId, await this.reread(trx, actor.tenantId, id), trx);
      await this.deps.audit.record(trx, actor, { ...AUDIT, activity: 'Patch enrollment program token', operation: 'Patch', resourceId: id, resourceDisplayName: after.tokenName as string | null, before: beforeEntity, after });
      return after;
    });
  }

  /** Only a token without devices and profiles can go (requirements-004-D §2.5); its sync stops in the same transaction. */
  async delete(actor: Actor, id: string): Promise<void> {
    await this.deps.store.transaction(async (trx) => {
      const row = await this.row(actor, id, trx, true);
      const { devices } = await trx
        .selectFrom('dep_devices')
        .select(sql<number | string>`count(*)`.as('devices'))
        .where('tenant_id', '=', actor.tenantId)
        .where('token_id', '=', id)
        .where('deleted_at', 'is', null)
        .executeTakeFirstOrThrow();
      const { profiles } = await trx.selectFrom('dep_profiles').select(sql<number | string>`count(*)`.as('profiles')).where('tenant_id', '=', actor.tenantId).where('token_id', '=', id).executeTakeFirstOrThrow();
      const blockers: string[] = [];
      const d = Number(devices);
      const p = Number(profiles);
      if (d > 0) blockers.push(`${d} device${d === 1 ? ' is' : 's are'} assigned to this token`);
      if (p > 0) {
        const withDefault = row.default_ios_profile_id || row.default_macos_profile_id ? ' (including the default)' : '';
        blockers.push(`${p} enrollment profile${p === 1 ? ' exists' : 's exist'}${withDefault}`);
      }
      if (blockers.length > 0) {
        throw conflict(
          `The enrollment program token can't be deleted: ${blockers.join(' and ')}. Delete the token's devices (unassign them from this MDM server in Apple Business Manager or Apple School Manager first, or a full sync brings them back), then its profiles, then the token.`,
        );
      }
      const entity = await this.entity(actor.tenantId, row, trx);
      await this.deps.sync.cancel(trx, actor.tenantId, id);
      await this.deps.jobs.cancel(trx, actor.tenantId, assignJobKey(id));
      // Devices an admin deleted that Apple still holds: nothing brings them back once the token is gone.
      await trx.deleteFrom('dep_devices').where('tenant_id', '=', actor.tenantId).where('token_id', '=', id).execute();
      for (const secretId of [row.oauth_secret_id, row.encryption_key_secret_id]) if (secretId) await this.deps.secrets.delete(trx, actor.tenantId, secretId);
      await deleteObjectTags(trx, actor.tenantId, DEP_TOKEN_OBJECT, id);
      await trx.deleteFrom('dep_tokens').where('tenant_id', '=', actor.tenantId).where('id', '=', id).execute();
      await this.deps.audit.record(trx, actor, { ...AUDIT, activity: 'Delete enrollment program token', operation: 'Delete', resourceId: id, resourceDisplayName: row.token_name, before: entity });
    });
  }

  // ---- public key ----------------------------------------------------------------------

  /**
   * A new RSA-2048 key pair for ABM/ASM to encrypt this token's server token to. The previous key
   * is forgotten (its serial is kept, to name a stale upload), so a token Apple encrypted to it is refused.
   */
  async generateEncryptionPublicKey(actor: Actor, id: string): Promise<string> {
    await this.row(actor, id);
    const now = this.deps.clock.now();
    const kp = await generateTokenEncryptionKeyPair({ tokenId: id, now });
    return this.deps.store.transaction(async (trx) => {
      const row = await this.row(actor, id, trx, true);
      const history = keyHistory(row);
      const previous = currentKeySerial(row);
      if (previous) history.push({ serialNumber: previous, createdAt: row.encryption_key_created_at, replacedAt: now.toISOString() });
      if (row.encryption_key_secret_id) await this.deps.secrets.delete(trx, actor.tenantId, row.encryption_key_secret_id);
      const secretId = await this.deps.secrets.put(trx, actor.tenantId, TOKEN_KEY_SECRET_KIND, kp.privateKeyPem);
      await trx
        .updateTable('dep_tokens')
        .set({
          encryption_cert_pem: kp.certificatePem,
          encryption_key_secret_id: secretId,
          encryption_key_created_at: now.toISOString(),
          encryption_key_history: JSON.stringify(history),
          updated_at: now.toISOString(),
        })
        .where('tenant_id', '=', actor.tenantId)
        .where('id', '=', id)
        .execute();
      await this.deps.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Generate enrollment program token public key',
        operation: 'Action',
        resourceId: id,
        resourceDisplayName: row.token_name,
        before: { encryptionPublicKeySerialNumber: previous },
        after: { encryptionPublicKeySerialNumber: kp.serialNumberHex.toUpperCase() },
      });
      return kp.certificatePem;
    });
  }

  /** The current public key; one is generated when there is none yet (that needs enrollment.write). */
  async getEncryptionPublicKey(actor: Actor, id: string): Promise<string> {
    const row = await this.row(actor, id);
    if (row.encryption_cert_pem) return row.encryption_cert_pem;
    if (!hasPermission(actor.principal, 'enrollment.write')) {
      throw forbidden('No public key has been generated for this token yet, and generating one needs enrollment.write.');
    }
    return this.generateEncryptionPublicKey(actor, id);
  }

  // ---- server token --------------------------------------------------------------------

  /**
   * uploadDepToken: decrypts the .p7m with the token's current key, checks it with Apple (/account),
   * then stores it in one transaction. Uploading to a token that has one renews it: id, profiles,
   * devices and default profiles stay; it must be the same MDM server. Nothing is stored on failure.
   */
  async upload(actor: Actor, id: string, input: { appleId: string; depToken: string }): Promise<void> {
    const { tenantId } = actor;
    const problem = appleIdentifierProblem(input.appleId);
    if (problem) throw invalidProperty('appleId', problem);
    const appleId = input.appleId.trim();
    const row = await this.row(actor, id);
    if (!row.encryption_cert_pem || !row.encryption_key_secret_id) {
      throw badRequest(
        'This enrollment program token has no public key yet: call generateEncryptionPublicKey, upload the .pem to the MDM server in Apple Business Manager or Apple School Manager, download its server token (.p7m) and upload that.',
        'depToken',
      );
    }
    const now = this.deps.clock.now();
    // No push certificate, no Apple enrollment: its GraphError says why.
    await this.deps.pushGate(this.deps.store.db, tenantId, now);

    const keySecretId = row.encryption_key_secret_id;
    const keyPem = await this.deps.secrets.getText(this.deps.store.db, tenantId, keySecretId);
    let tokens: DepOAuthTokens;
    try {
      tokens = decryptServerToken(input.depToken, { certPem: row.encryption_cert_pem, keyPem }, now);
    } catch (err) {
      if (err instanceof ServerTokenError) throw await this.uploadRefusal(actor, row, err);
      throw err;
    }
    const account = await this.checkWithApple(tokens);

    await this.deps.store.transaction(async (trx) => {
      const cur = await this.row(actor, id, trx, true);
      if (cur.encryption_key_secret_id !== keySecretId) {
        throw conflict('A new public key was generated for this token while the server token was being uploaded; the server token is for the old key. Download a new server token for the current key.', 'depToken');
      }
      const renewal = cur.oauth_secret_id !== null;
      if (renewal && cur.server_uuid && cur.server_uuid !== account.server_uuid) {
        throw invalidProperty(
          'depToken',
          `this server token is for the MDM server '${account.server_name}' (${account.server_uuid}), but this enrollment program token is connected to '${cur.server_name ?? '?'}' (${cur.server_uuid}). ` +
            'Renew with a server token downloaded from the same MDM server in Apple Business Manager or Apple School Manager, or add a new enrollment program token for the other server.',
        );
      }
      const other = await trx
        .selectFrom('dep_tokens')
        .select(['id', 'token_name'])
        .where('tenant_id', '=', tenantId)
        .where('server_uuid', '=', account.server_uuid)
        .where('id', '<>', id)
        .executeTakeFirst();
      if (other) {
        throw conflict(
          `The MDM server '${account.server_name}' (${account.server_uuid}) is already connected to enrollment program token ${nameOf(other)}; two tokens for one MDM server would fight over its devices. Renew that token instead.`,
          'depToken',
        );
      }
      const before = await this.entity(tenantId, cur, trx);
      const secretJson = JSON.stringify(tokens);
      let oauthSecretId = cur.oauth_secret_id;
      if (oauthSecretId) await this.deps.secrets.replace(trx, tenantId, oauthSecretId, secretJson);
      else oauthSecretId = await this.deps.secrets.put(trx, tenantId, DEP_OAUTH_SECRET_KIND, secretJson);
      await trx
        .updateTable('dep_tokens')
        .set({
          apple_identifier: appleId,
          oauth_secret_id: oauthSecretId,
          consumer_key: tokens.consumer_key,
          token_expiration: new Date(tokens.access_token_expiry.replace(' ', 'T')).toISOString(),
          token_type: tokenTypeOfOrg(account.org_type),
          token_name: cur.token_name ?? account.server_name ?? null,
          server_uuid: account.server_uuid,
          server_name: account.server_name ?? null,
          org_name: account.org_name ?? null,
          org_id: account.org_id ?? null,
          org_type: account.org_type ?? null,
          admin_id: account.admin_id ?? null,
          fetch_limit: depPageLimit(account, '/server/devices'),
          sync_limit: depPageLimit(account, '/devices/sync'),
          // A refusal recorded by the sync was about the old server token.
          apple_status: null,
          updated_at: now.toISOString(),
        })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .execute();
      await this.deps.sync.scheduleAfterUpload(trx, tenantId, id);
      // Profiles made before the first upload, and devices waiting for it, go to Apple now.
      const profiles = await trx.selectFrom('dep_profiles').select('id').where('tenant_id', '=', tenantId).where('token_id', '=', id).where('apple_profile_uuid', 'is', null).execute();
      for (const p of profiles) await this.deps.assignments.scheduleDefine(trx, tenantId, p.id, 0);
      await this.deps.assignments.scheduleAssign(trx, tenantId, id, 0);
      const after = await this.entity(tenantId, await this.reread(trx, tenantId, id), trx);
      await this.deps.audit.record(trx, actor, {
        ...AUDIT,
        activity: renewal ? 'Renew enrollment program token' : 'Upload enrollment program token',
        operation: 'Action',
        resourceId: id,
        resourceDisplayName: after.tokenName as string | null,
        before,
        after: { ...after, mdmServerUuid: account.server_uuid },
        secretProperties: ['depToken', 'consumerKey'],
      });
    });
  }

  /** Why a server token is refused, naming a stale key of this token or another token's key. */
  private async uploadRefusal(actor: Actor, row: DepTokensTable, err: ServerTokenError): Promise<GraphError> {
    if (err.reason !== 'encryptedForAnotherKey') return invalidProperty('depToken', err.message);
    const recipients = new Set((err.details.recipients ?? []).map((r) => r.serialNumberHex?.toUpperCase()).filter((s): s is string => Boolean(s)));
    const current = currentKeySerial(row);
    const stale = keyHistory(row).find((h) => recipients.has(h.serialNumber.toUpperCase()));
    if (stale) {
      return invalidProperty(
        'depToken',
        `the server token is stale: it is encrypted for this token's previous public key (serial ${stale.serialNumber}), which was replaced on ${stale.replacedAt} when a new public key was generated. ` +
          `Upload the current public key (serial ${current}, from getEncryptionPublicKey) to the MDM server in Apple Business Manager or Apple School Manager, download a new server token and upload that.`,
      );
    }
    const others = await this.deps.store.db
      .selectFrom('dep_tokens')
      .select(['id', 'token_name', 'encryption_cert_pem', 'encryption_key_history'])
      .where('tenant_id', '=', actor.tenantId)
      .where('id', '<>', row.id)
      .where('encryption_cert_pem', 'is not', null)
      .execute();
    const owner = others.find((o) => [currentKeySerial(o), ...keyHistory(o).map((h) => h.serialNumber)].some((s) => s && recipients.has(s.toUpperCase())));
    let whose = '';
    if (owner) {
      const tags = (await readObjectTags(this.deps.store.db, actor.tenantId, DEP_TOKEN_OBJECT, [owner.id])).get(owner.id) ?? [];
      // Named only to a caller who may see that token.
      if (canSee(actor.principal, tags)) whose = `: the public key of enrollment program token ${nameOf(owner)}`;
    }
    return invalidProperty(
      'depToken',
      `the server token is encrypted for a different public key${whose} (recipient serial ${[...recipients].join(', ') || 'unknown'}), not this token's current public key (serial ${current}). ` +
        "Upload this token's public key to its MDM server in Apple Business Manager or Apple School Manager, download the server token from that MDM server and upload it here.",
    );
  }

  /** Apple's /account with the new credentials: which MDM server they are for, and that Apple takes them. */
  private async checkWithApple(tokens: DepOAuthTokens): Promise<DepAccount> {
    try {
      return await this.deps.depClient(tokens).account();
    } catch (err) {
      if (!(err instanceof DepApiError)) throw err;
      this.deps.logger.warn({ status: err.status, code: err.code }, 'Apple refused or could not check an uploaded server token');
      if (err.code === 'T_C_NOT_SIGNED') {
        throw new GraphError(
          409,
          'AppleTermsNotSigned',
          'Apple refused the server token because the organisation has not accepted the latest Apple Business Manager / Apple School Manager terms and conditions. An administrator must sign in there and accept them; then upload the token again. Nothing was stored.',
        );
      }
      if (err.needsAdmin) {
        throw invalidProperty('depToken', `Apple rejected this server token (${err.code}); it may have been replaced by a newer download of the MDM server's token. Download a new server token and upload it. Nothing was stored.`);
      }
      if (err.status === 0 || err.status === 429 || err.status >= 500) {
        throw serviceUnavailable(`Apple's device assignment service could not be reached to check the server token (${err.code}). Nothing was stored; try again.`, err.retryAfterSeconds ?? 30);
      }
      throw new GraphError(502, 'BadGateway', `Apple's device assignment service answered the server token check unexpectedly (${err.code}). Nothing was stored.`);
    }
  }

  // ---- School Data Sync, sync ----------------------------------------------------------

  /** At most one token per tenant shares with School Data Sync; enabling it on one turns it off on the others. */
  async setSchoolDataSync(actor: Actor, id: string, share: boolean): Promise<void> {
    try {
      await this.deps.store.transaction(async (trx) => {
        const row = await this.row(actor, id, trx, true);
        if (share && row.token_type !== 'appleSchoolManager') {
          throw badRequest(`School Data Sync works with Apple School Manager tokens only; this token's type is '${row.token_type}'${row.token_type === 'none' ? ' (no server token uploaded yet)' : ''}.`);
        }
        if ((row.share_sds === 1) === share) return;
        const now = this.deps.clock.now().toISOString();
        if (share) {
          const previous = await trx.selectFrom('dep_tokens').selectAll().where('tenant_id', '=', actor.tenantId).where('share_sds', '=', 1).where('id', '<>', id).execute();
          for (const p of previous) {
            await trx.updateTable('dep_tokens').set({ share_sds: 0, updated_at: now }).where('tenant_id', '=', actor.tenantId).where('id', '=', p.id).execute();
            await this.auditSds(trx, actor, p, false, `School Data Sync moved to token ${nameOf(row)}`);
          }
        }
        await trx.updateTable('dep_tokens').set({ share_sds: share ? 1 : 0, updated_at: now }).where('tenant_id', '=', actor.tenantId).where('id', '=', id).execute();
        await this.auditSds(trx, actor, row, share);
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict('Another token was given School Data Sync at the same time; try again.');
      throw err;
    }
  }

  private async auditSds(trx: Trx, actor: Actor, row: DepTokensTable, share: boolean, note?: string): Promise<void> {
    await this.deps.audit.record(trx, actor, {
      ...AUDIT,
      activity: share ? 'Share enrollment program token with School Data Sync' : `Unshare enrollment program token from School Data Sync${note ? ` (${note})` : ''}`,
      operation: 'Action',
      resourceId: row.id,
      resourceDisplayName: row.token_name,
      before: { shareTokenWithSchoolDataSyncService: row.share_sds === 1 },
      after: { shareTokenWithSchoolDataSyncService: share },
    });
  }

  /** syncWithAppleDeviceEnrollmentProgram: the sync engine decides (15-minute rule, running sync). */
  async requestSync(actor: Actor, id: string): Promise<void> {
    const row = await this.row(actor, id);
    if (!row.oauth_secret_id) throw conflict('This enrollment program token has no server token uploaded yet; upload one before syncing with Apple.');
    await this.deps.sync.requestManualSync(actor, id);
  }
}
