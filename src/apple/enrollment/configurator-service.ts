import crypto from 'node:crypto';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Actor, Principal } from '../../auth/principal.js';
import { assertTagsExist, deleteObjectTags, readObjectTags, tagsForNewObject, whereVisible, writeObjectTags, patchObjectTags } from '../../auth/scope-tags.js';
import { compareTagIds } from '../../devices/model.js';
import { badRequest, conflict, GraphError, invalidProperty, notFound } from '../../graph/errors.js';
import type { EntityModel } from '../../graph/odata/model.js';
import type { EnrollmentGate, EnrollmentRequest } from '../../enrollment-policy/gate/gate.js';
import type { Clock } from '../../shared/time.js';
import { isUniqueViolation, type Executor, type Store, type Trx } from '../../store/db.js';
import type { ConfiguratorDevicesTable, ConfiguratorProfilesTable } from '../../store/schema.js';
import type { ReadyPushCertificate } from '../push-certificate/index.js';
import type { ProfileIssuer } from '../mdm/contracts.js';
import type { EnrollmentIntentStore } from './intents.js';
import {
  APPLE_DEVICE_TYPE,
  checkProfileSettings,
  CONFIGURATOR_LIMITS,
  CONFIGURATOR_PROFILE_OBJECT,
  CONFIGURATOR_PROFILE_TYPE,
  ConfiguratorCsvError,
  DEVICE_PLATFORMS,
  DIRECT_ENROLLMENT_VALIDITY_MS,
  directEnrollmentProblem,
  detailsProblem,
  ENROLLMENT_STATES,
  normalizeDetails,
  normalizeSerial,
  parseConfiguratorCsv,
  parseProfileBody,
  serialProblem,
  settingsOf,
  toDeviceEntity,
  toProfileEntity,
  type ProfileSettings,
} from './configurator-rules.js';

const AUDIT = { category: 'Enrollment', componentName: 'AppleEnrollment' } as const;
const CHUNK = 500;
/** A concurrent import storing one of the same serials makes ours redo its transaction. */
const IMPORT_ATTEMPTS = 3;

/** enrollmentProfile under the pseudo setting: $filter/$orderby on the stored columns. */
export const configuratorProfileModel: EntityModel = {
  typeName: CONFIGURATOR_PROFILE_TYPE,
  keyColumn: 'configurator_profiles.id',
  properties: {
    id: { type: 'string', column: 'configurator_profiles.id', filterOps: ['eq', 'ne'] },
    displayName: { type: 'string', column: 'display_name', caseInsensitive: true },
    description: { type: 'string', column: 'description', caseInsensitive: true },
    requiresUserAuthentication: { type: 'boolean', column: 'requires_user_authentication' },
    configurationEndpointUrl: { type: 'string', filterOps: [] },
    enableAuthenticationViaCompanyPortal: { type: 'boolean', column: 'enable_authentication_via_company_portal' },
    requireCompanyPortalOnSetupAssistantEnrolledDevices: { type: 'boolean', column: 'require_company_portal_on_setup_assistant' },
    roleScopeTagIds: { type: 'collection' },
    createdDateTime: { type: 'datetime', column: 'created_at' },
    lastModifiedDateTime: { type: 'datetime', column: 'updated_at' },
  },
};

/** importedAppleDeviceIdentity of a Configurator serial. */
export const configuratorDeviceModel: EntityModel = {
  typeName: APPLE_DEVICE_TYPE,
  keyColumn: 'configurator_devices.id',
  properties: {
    id: { type: 'string', column: 'configurator_devices.id', filterOps: ['eq', 'ne'] },
    serialNumber: { type: 'string', column: 'serial_number', caseInsensitive: true },
    requestedEnrollmentProfileId: { type: 'string', column: 'profile_id', filterOps: ['eq', 'ne'] },
    requestedEnrollmentProfileAssignmentDateTime: { type: 'datetime', column: 'profile_assigned_at' },
    isSupervised: { type: 'boolean', filterOps: [] },
    platform: { type: 'enum', column: 'platform', enumValues: DEVICE_PLATFORMS },
    description: { type: 'string', column: 'details', caseInsensitive: true },
    discoverySource: { type: 'enum', filterOps: [], enumValues: ['adminImport'] },
    createdDateTime: { type: 'datetime', column: 'created_at' },
    lastContactedDateTime: { type: 'datetime', column: 'last_contacted_at' },
    enrollmentState: { type: 'enum', column: 'enrollment_state', enumValues: ENROLLMENT_STATES },
    isDeleted: { type: 'boolean', filterOps: [] },
  },
};

/** One serial to import (from a CSV row or a Graph item). */
export interface SerialImportItem {
  serialNumber: string;
  /** Undefined: not given (kept); null: none. */
  details?: string | null | undefined;
  profileId?: string | null | undefined;
  platform?: string | undefined;
  /** Already known to be bad (a CSV row's own problem). */
  error?: string | undefined;
}

export type SerialImportStatus = 'created' | 'overwritten' | 'updated' | 'unchanged' | 'failed';

export interface SerialImportOutcome {
  status: SerialImportStatus;
  entity: Record<string, unknown> | null;
  /** The stored details the import left in place (they differ from the item's; no overwrite asked). */
  keptDetails?: string | null;
  error?: string;
}

/** A row of the CSV import's answer. */
export interface SerialCsvResult {
  row: number;
  serialNumber: string;
  details: string | null;
  status: SerialImportStatus;
  id: string | null;
  /** Details already stored and kept because the import didn't ask to overwrite them. */
  existingDetails: string | null;
  error: string | null;
}

export interface ConfiguratorDeps {
  store: Store;
  audit: AuditLog;
  clock: Clock;
  publicUrl: string | undefined;
  intents: EnrollmentIntentStore;
  profileIssuer: ProfileIssuer;
  gate: EnrollmentGate;
  /** Apple enrollment's gate: the ready push certificate, or a 409 saying why not. */
  pushGate: (db: Executor, tenantId: string, now?: Date) => Promise<ReadyPushCertificate>;
}

const isScoped = (p: Pick<Principal, 'scopeTagIds'>) => p.scopeTagIds !== null;

/**
 * Apple Configurator's admin side: profiles (with the profile URL and the direct-enrollment
 * download) and serials. Profiles carry scope tags; a serial is seen through its profile, and a
 * serial without one only by unscoped callers.
 */
export class ConfiguratorService {
  constructor(private readonly deps: ConfiguratorDeps) {}

  // ---- profiles ----

  profiles(actor: Actor, db: Executor = this.deps.store.db) {
    const q = db.selectFrom('configurator_profiles').selectAll().where('tenant_id', '=', actor.tenantId);
    return whereVisible(q, actor.principal, CONFIGURATOR_PROFILE_OBJECT, 'configurator_profiles.id');
  }

  async profileEntities(tenantId: string, rows: readonly ConfiguratorProfilesTable[], db: Executor = this.deps.store.db): Promise<Record<string, unknown>[]> {
    const tags = await readObjectTags(db, tenantId, CONFIGURATOR_PROFILE_OBJECT, rows.map((r) => r.id));
    return rows.map((r) => toProfileEntity(r, (tags.get(r.id) ?? []).sort(compareTagIds), this.deps.publicUrl));
  }

  /** The profile if the caller may see it (locked for update on PostgreSQL when asked); 404 otherwise. */
  async profileRow(actor: Actor, id: string, db: Executor = this.deps.store.db, lock = false): Promise<ConfiguratorProfilesTable> {
    let q = this.profiles(actor, db).where('id', '=', id);
    if (lock && this.deps.store.dialect === 'postgres') q = q.forUpdate();
    const row = await q.executeTakeFirst();
    if (!row) throw notFound(`Apple Configurator profile '${id}' was not found.`);
    return row;
  }

  async getProfile(actor: Actor, id: string): Promise<Record<string, unknown>> {
    const [entity] = await this.profileEntities(actor.tenantId, [await this.profileRow(actor, id)]);
    return entity!;
  }

  async createProfile(actor: Actor, body: unknown): Promise<Record<string, unknown>> {
    const input = parseProfileBody(body, false);
    const settings: ProfileSettings = {
      displayName: input.displayName!,
      description: input.description ?? null,
      requiresUserAuthentication: input.requiresUserAuthentication ?? false,
      enableAuthenticationViaCompanyPortal: input.enableAuthenticationViaCompanyPortal ?? false,
      requireCompanyPortalOnSetupAssistantEnrolledDevices: input.requireCompanyPortalOnSetupAssistantEnrolledDevices ?? false,
    };
    checkProfileSettings(settings);
    const tags = tagsForNewObject(actor.principal, input.roleScopeTagIds).sort(compareTagIds);
    const now = this.deps.clock.now().toISOString();
    return this.deps.store.transaction(async (trx) => {
      await assertTagsExist(trx, actor.tenantId, tags);
      // Shaped like Intune's ids under a depOnboardingSetting: `{settingId}_{guid}`.
      const row: ConfiguratorProfilesTable = { id: `${actor.tenantId}_${crypto.randomUUID()}`, tenant_id: actor.tenantId, ...columnsOf(settings), created_at: now, updated_at: now };
      await trx.insertInto('configurator_profiles').values(row).execute();
      await writeObjectTags(trx, actor.tenantId, CONFIGURATOR_PROFILE_OBJECT, row.id, tags);
      const entity = toProfileEntity(row, tags, this.deps.publicUrl);
      await this.deps.audit.record(trx, actor, { ...AUDIT, resourceType: CONFIGURATOR_PROFILE_TYPE, activity: 'Create Apple Configurator profile', operation: 'Create', resourceId: row.id, resourceDisplayName: row.display_name, after: entity });
      return entity;
    });
  }

  /** PATCH. Settings apply once, at enrollment: enrolled devices keep what they enrolled with. */
  async updateProfile(actor: Actor, id: string, body: unknown): Promise<Record<string, unknown>> {
    const patch = parseProfileBody(body, true);
    return this.deps.store.transaction(async (trx) => {
      const before = await this.profileRow(actor, id, trx, true);
      const old = settingsOf(before);
      const settings: ProfileSettings = {
        displayName: patch.displayName ?? old.displayName,
        description: patch.description === undefined ? old.description : patch.description,
        requiresUserAuthentication: patch.requiresUserAuthentication ?? old.requiresUserAuthentication,
        enableAuthenticationViaCompanyPortal: patch.enableAuthenticationViaCompanyPortal ?? old.enableAuthenticationViaCompanyPortal,
        requireCompanyPortalOnSetupAssistantEnrolledDevices: patch.requireCompanyPortalOnSetupAssistantEnrolledDevices ?? old.requireCompanyPortalOnSetupAssistantEnrolledDevices,
      };
      checkProfileSettings(settings);
      const beforeTags = (await readObjectTags(trx, actor.tenantId, CONFIGURATOR_PROFILE_OBJECT, [id])).get(id)!.sort(compareTagIds);
      let tags = beforeTags;
      if (patch.roleScopeTagIds !== undefined) {
        tags = await patchObjectTags(trx, actor, { type: CONFIGURATOR_PROFILE_OBJECT, id, label: 'an object' }, beforeTags, patch.roleScopeTagIds);
      }
      const after: ConfiguratorProfilesTable = { ...before, ...columnsOf(settings), updated_at: this.deps.clock.now().toISOString() };
      await trx.updateTable('configurator_profiles').set({ ...columnsOf(settings), updated_at: after.updated_at }).where('tenant_id', '=', actor.tenantId).where('id', '=', id).execute();
      const entity = toProfileEntity(after, tags, this.deps.publicUrl);
      await this.deps.audit.record(trx, actor, {
        ...AUDIT,
        resourceType: CONFIGURATOR_PROFILE_TYPE,
        activity: 'Patch Apple Configurator profile',
        operation: 'Patch',
        resourceId: id,
        resourceDisplayName: after.display_name,
        before: toProfileEntity(before, beforeTags, this.deps.publicUrl),
        after: entity,
      });
      return entity;
    });
  }

  /**
   * DELETE: refused while serials are assigned to it (reassign or delete them first). Direct
   * enrollment files already downloaded keep working until they expire.
   */
  async deleteProfile(actor: Actor, id: string): Promise<void> {
    await this.deps.store.transaction(async (trx) => {
      const row = await this.profileRow(actor, id, trx, true);
      const used = await trx
        .selectFrom('configurator_devices')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('tenant_id', '=', actor.tenantId)
        .where('profile_id', '=', id)
        .executeTakeFirstOrThrow();
      const n = Number(used.n);
      if (n > 0) throw conflict(`Apple Configurator profile '${row.display_name}' is assigned to ${n} device${n === 1 ? '' : 's'}; assign ${n === 1 ? 'it' : 'them'} another profile or delete ${n === 1 ? 'it' : 'them'} first.`);
      const tags = (await readObjectTags(trx, actor.tenantId, CONFIGURATOR_PROFILE_OBJECT, [id])).get(id)!.sort(compareTagIds);
      await trx.deleteFrom('configurator_profiles').where('tenant_id', '=', actor.tenantId).where('id', '=', id).execute();
      await deleteObjectTags(trx, actor.tenantId, CONFIGURATOR_PROFILE_OBJECT, id);
      await this.deps.audit.record(trx, actor, {
        ...AUDIT,
        resourceType: CONFIGURATOR_PROFILE_TYPE,
        activity: 'Delete Apple Configurator profile',
        operation: 'Delete',
        resourceId: id,
        resourceDisplayName: row.display_name,
        before: toProfileEntity(row, tags, this.deps.publicUrl),
      });
    });
  }

  /**
   * exportMobileConfig: a direct-enrollment .mobileconfig (base64 of the signed profile) for a
   * profile without user affinity. Every download is its own reusable intent valid 14 days, with a
   * reusable SCEP challenge expiring with it: an install after that fails at SCEP. A new download
   * neither revokes nor extends earlier ones. The gate decides once, at download: a userless
   * corporate enrollment of the platform (only the default restrictions apply).
   */
  async exportMobileConfig(actor: Actor, id: string, platform: 'iOS' | 'macOS' = 'iOS'): Promise<{ value: string; intentId: string; expiresAt: string }> {
    const row = await this.profileRow(actor, id);
    const problem = directEnrollmentProblem(settingsOf(row));
    if (problem) throw new GraphError(400, 'BadRequest', problem, { target: 'requiresUserAuthentication' });
    const now = this.deps.clock.now();
    const push = await this.deps.pushGate(this.deps.store.db, actor.tenantId, now);
    const request: EnrollmentRequest = {
      tenantId: actor.tenantId,
      platform: platform === 'macOS' ? 'mac' : 'ios',
      method: 'appleDirect',
      userDriven: false,
      userId: null,
      device: { osPlatform: platform, manufacturer: 'Apple', filterProperties: { enrollmentProfileName: row.display_name } },
    };
    const decision = await this.deps.gate.decide(request);
    if (!decision.allowed) {
      throw new GraphError(409, 'EnrollmentRefused', `Devices can't enroll with this file: ${[decision.message, decision.detail].filter(Boolean).join(' ')}`, {
        details: [{ code: decision.reason ?? 'enrollmentRefused', message: `Activity ID: ${decision.activityId}` }],
      });
    }
    const expiresAt = new Date(now.getTime() + DIRECT_ENROLLMENT_VALIDITY_MS);
    return this.deps.store.transaction(async (trx) => {
      const tags = (await readObjectTags(trx, actor.tenantId, CONFIGURATOR_PROFILE_OBJECT, [id])).get(id)!.sort(compareTagIds);
      const intent = await this.deps.intents.create(trx, {
        tenantId: actor.tenantId,
        source: 'configuratorDirect',
        enrollmentType: 'device',
        platform,
        profileId: row.id,
        profileName: row.display_name,
        userId: null,
        ownership: 'company',
        deviceEnrollmentType: 'appleBulkWithoutUser',
        scopeTagIds: tags,
        gateRequest: request,
        gateDecision: decision,
        reusable: true,
        expiresAt,
        userAffinity: 'userless',
        authenticationMethod: 'none',
      });
      const issued = await this.deps.profileIssuer.issueProfile(trx, intent, { topic: push.topic, challengeExpiresAt: expiresAt });
      await this.deps.audit.record(trx, actor, {
        ...AUDIT,
        resourceType: CONFIGURATOR_PROFILE_TYPE,
        activity: 'Export Apple Configurator profile for direct enrollment',
        operation: 'Action',
        resourceId: row.id,
        resourceDisplayName: row.display_name,
        after: { intentId: intent.id, platform, expirationDateTime: expiresAt.toISOString(), profileUuid: issued.profileUuid },
      });
      return { value: issued.signedProfile.toString('base64'), intentId: intent.id, expiresAt: expiresAt.toISOString() };
    });
  }

  // ---- serials ----

  devices(actor: Actor, db: Executor = this.deps.store.db) {
    const q = db.selectFrom('configurator_devices').selectAll().where('tenant_id', '=', actor.tenantId);
    // A serial is seen through its profile; one without a profile only by unscoped callers.
    return whereVisible(q, actor.principal, CONFIGURATOR_PROFILE_OBJECT, 'configurator_devices.profile_id');
  }

  private async deviceRow(actor: Actor, id: string, db: Executor = this.deps.store.db, lock = false): Promise<ConfiguratorDevicesTable> {
    let q = this.devices(actor, db).where('id', '=', id);
    if (lock && this.deps.store.dialect === 'postgres') q = q.forUpdate();
    const row = await q.executeTakeFirst();
    if (!row) throw notFound(`Apple Configurator device identity '${id}' was not found.`);
    return row;
  }

  async getDevice(actor: Actor, id: string): Promise<Record<string, unknown>> {
    return toDeviceEntity(await this.deviceRow(actor, id));
  }

  /** The profile a caller may put serials under; `property` names it in the 400. */
  private async assignableProfile(actor: Actor, db: Executor, profileId: string, property: string): Promise<ConfiguratorProfilesTable> {
    const row = await this.profiles(actor, db).where('id', '=', profileId).executeTakeFirst();
    if (!row) throw invalidProperty(property, `'${profileId}' is not an Apple Configurator profile.`);
    return row;
  }

  private requireProfileWhenScoped(actor: Actor, profileId: string | null | undefined, property: string): void {
    if (!profileId && isScoped(actor.principal)) {
      throw invalidProperty(property, 'a scoped administrator sees Apple Configurator devices through their profile, so every serial needs one.');
    }
  }

  /** PATCH: description and requestedEnrollmentProfileId (null: no profile). */
  async patchDevice(actor: Actor, id: string, patch: { description?: string | null; requestedEnrollmentProfileId?: string | null }): Promise<Record<string, unknown>> {
    if (patch.description !== undefined) {
      const problem = detailsProblem(patch.description);
      if (problem) throw invalidProperty('description', `${problem}.`);
    }
    if (patch.requestedEnrollmentProfileId !== undefined) this.requireProfileWhenScoped(actor, patch.requestedEnrollmentProfileId, 'requestedEnrollmentProfileId');
    return this.deps.store.transaction(async (trx) => {
      const before = await this.deviceRow(actor, id, trx, true);
      const now = this.deps.clock.now().toISOString();
      const after: ConfiguratorDevicesTable = { ...before, updated_at: now };
      if (patch.description !== undefined) after.details = normalizeDetails(patch.description);
      if (patch.requestedEnrollmentProfileId !== undefined && patch.requestedEnrollmentProfileId !== before.profile_id) {
        after.profile_id = patch.requestedEnrollmentProfileId === null ? null : (await this.assignableProfile(actor, trx, patch.requestedEnrollmentProfileId, 'requestedEnrollmentProfileId')).id;
        after.profile_assigned_at = after.profile_id === null ? null : now;
      }
      await trx
        .updateTable('configurator_devices')
        .set({ details: after.details, profile_id: after.profile_id, profile_assigned_at: after.profile_assigned_at, updated_at: now })
        .where('tenant_id', '=', actor.tenantId)
        .where('id', '=', id)
        .execute();
      const entity = toDeviceEntity(after);
      await this.deps.audit.record(trx, actor, {
        ...AUDIT,
        resourceType: APPLE_DEVICE_TYPE,
        activity: 'Patch Apple Configurator device identity',
        operation: 'Patch',
        resourceId: id,
        resourceDisplayName: before.serial_number,
        before: toDeviceEntity(before),
        after: entity,
      });
      return entity;
    });
  }

  async deleteDevice(actor: Actor, id: string): Promise<void> {
    await this.deps.store.transaction(async (trx) => {
      const row = await this.deviceRow(actor, id, trx, true);
      await trx.deleteFrom('configurator_devices').where('tenant_id', '=', actor.tenantId).where('id', '=', id).execute();
      await this.deps.audit.record(trx, actor, {
        ...AUDIT,
        resourceType: APPLE_DEVICE_TYPE,
        activity: 'Delete Apple Configurator device identity',
        operation: 'Delete',
        resourceId: id,
        resourceDisplayName: row.serial_number,
        before: toDeviceEntity(row),
      });
    });
  }

  /** POST …/importedAppleDeviceIdentities: one serial (201); 409 when it is already imported. */
  async createDevice(actor: Actor, item: { serialNumber: string; description?: string | null; requestedEnrollmentProfileId?: string | null; platform?: string }): Promise<Record<string, unknown>> {
    this.requireProfileWhenScoped(actor, item.requestedEnrollmentProfileId, 'requestedEnrollmentProfileId');
    const serial = normalizeSerial(item.serialNumber);
    const existing = await this.deps.store.db.selectFrom('configurator_devices').select('id').where('tenant_id', '=', actor.tenantId).where('serial_number', '=', serial).executeTakeFirst();
    if (existing) throw conflict(`serialNumber '${serial}' is already imported as an Apple Configurator device.`, 'serialNumber');
    const [outcome] = await this.importSerials(actor, [{ serialNumber: item.serialNumber, details: item.description, profileId: item.requestedEnrollmentProfileId, platform: item.platform }], false, 'Create');
    if (outcome!.status === 'failed') {
      const error = outcome!.error!;
      throw /already imported/.test(error) ? conflict(error, 'serialNumber') : badRequest(error, /profile/.test(error) ? 'requestedEnrollmentProfileId' : 'serialNumber');
    }
    return outcome!.entity!;
  }

  /** importAppleDeviceIdentityList under the pseudo setting: the same rules as the CSV upload. */
  async importList(
    actor: Actor,
    items: readonly { serialNumber: string; description?: string | null; requestedEnrollmentProfileId?: string | null; platform?: string }[],
    overwrite: boolean,
  ): Promise<SerialImportOutcome[]> {
    if (items.length > CONFIGURATOR_LIMITS.serialsPerImport) throw invalidProperty('importedAppleDeviceIdentities', `must have at most ${CONFIGURATOR_LIMITS.serialsPerImport} items.`);
    return this.importSerials(
      actor,
      items.map((it) => ({ serialNumber: it.serialNumber, details: it.description, profileId: it.requestedEnrollmentProfileId, platform: it.platform })),
      overwrite,
    );
  }

  /**
   * The admin centre's "Import" of a serial CSV (OpenEnroll extension): no header, serial,details
   * per row, at most 5,000 rows (more refuses the whole file), the chosen profile for every row,
   * and existing serials keep their details unless `overwrite`.
   */
  async importCsv(actor: Actor, text: string, profileId: string | undefined, overwrite: boolean): Promise<SerialCsvResult[]> {
    let rows;
    try {
      rows = parseConfiguratorCsv(text);
    } catch (err) {
      if (err instanceof ConfiguratorCsvError) throw badRequest(err.message);
      throw err;
    }
    this.requireProfileWhenScoped(actor, profileId, 'profileId');
    if (profileId) {
      const visible = await this.profiles(actor).where('id', '=', profileId).executeTakeFirst();
      if (!visible) throw badRequest(`Invalid value for parameter 'profileId': '${profileId}' is not an Apple Configurator profile.`, 'profileId');
    }
    const outcomes = await this.importSerials(
      actor,
      rows.map((r) => ({ serialNumber: r.serialNumber, details: r.details, profileId: profileId ?? undefined, error: r.error })),
      overwrite,
      'Action',
      (i) => `row ${rows[i]!.row}`,
    );
    return rows.map((r, i) => {
      const o = outcomes[i]!;
      return {
        row: r.row,
        serialNumber: (o.entity?.serialNumber as string | undefined) ?? r.serialNumber,
        details: r.details,
        status: o.status,
        id: (o.entity?.id as string | undefined) ?? null,
        existingDetails: o.keptDetails === undefined ? null : o.keptDetails,
        error: o.error ?? null,
      };
    });
  }

  /**
   * Imports serials, each on its own (a bad item fails alone, with the reason): new serials are
   * created; an existing one gets the item's profile, and its details only when `overwrite` (else
   * they are kept and reported). One transaction, redone when a concurrent import stored one of
   * the serials meanwhile.
   */
  private async importSerials(actor: Actor, items: readonly SerialImportItem[], overwrite: boolean, operation: 'Create' | 'Action' = 'Action', label = (i: number) => `item ${i + 1}`): Promise<SerialImportOutcome[]> {
    const outcomes: (SerialImportOutcome | undefined)[] = items.map(() => undefined);
    const fail = (i: number, error: string) => (outcomes[i] = { status: 'failed', entity: null, error });
    const problemOf = (it: SerialImportItem): string | undefined => {
      if (it.error) return it.error;
      const serial = serialProblem(it.serialNumber ?? '');
      if (serial) return `serial number '${it.serialNumber}' ${serial}.`;
      const details = detailsProblem(it.details);
      if (details) return `${details}.`;
      if (it.platform !== undefined && !(DEVICE_PLATFORMS as readonly string[]).includes(it.platform)) return `platform '${it.platform}' is not one of ${DEVICE_PLATFORMS.join(', ')}.`;
      if (!it.profileId && isScoped(actor.principal)) return 'a scoped administrator must give every serial an Apple Configurator profile it can see.';
      return undefined;
    };
    const serials = items.map((it, i) => {
      const problem = problemOf(it);
      if (problem === undefined) return normalizeSerial(it.serialNumber);
      fail(i, problem);
      return undefined;
    });
    const first = new Map<string, number>();
    serials.forEach((s, i) => {
      if (s === undefined) return;
      const j = first.get(s);
      if (j === undefined) first.set(s, i);
      else fail(i, `serial number '${s}' repeats ${label(j)}; only the first is imported.`);
    });
    const pending = items.map((_, i) => i).filter((i) => outcomes[i] === undefined);
    for (let attempt = 1; ; attempt++) {
      try {
        const done = await this.deps.store.transaction((trx) => this.writeSerials(trx, actor, items, serials as string[], pending, overwrite, operation));
        pending.forEach((i, k) => (outcomes[i] = done[k]));
        return outcomes as SerialImportOutcome[];
      } catch (err) {
        if (!isUniqueViolation(err) || attempt >= IMPORT_ATTEMPTS) throw err;
      }
    }
  }

  private async writeSerials(
    trx: Trx,
    actor: Actor,
    items: readonly SerialImportItem[],
    serials: readonly string[],
    pending: readonly number[],
    overwrite: boolean,
    operation: 'Create' | 'Action',
  ): Promise<SerialImportOutcome[]> {
    const { tenantId } = actor;
    const wanted = pending.map((i) => serials[i]!);
    const existing = new Map<string, ConfiguratorDevicesTable>();
    for (let i = 0; i < wanted.length; i += CHUNK) {
      for (const r of await trx.selectFrom('configurator_devices').selectAll().where('tenant_id', '=', tenantId).where('serial_number', 'in', wanted.slice(i, i + CHUNK)).execute()) existing.set(r.serial_number, r);
    }
    const visibleExisting = new Set<string>();
    const existingIds = [...existing.values()].map((r) => r.id);
    for (let i = 0; i < existingIds.length; i += CHUNK) {
      for (const r of await this.devices(actor, trx).select('configurator_devices.id').where('id', 'in', existingIds.slice(i, i + CHUNK)).execute()) visibleExisting.add(r.id);
    }
    const profileIds = [...new Set(pending.map((i) => items[i]!.profileId).filter((p): p is string => Boolean(p)))];
    const profiles = new Set<string>();
    for (let i = 0; i < profileIds.length; i += CHUNK) {
      for (const p of await this.profiles(actor, trx).select('configurator_profiles.id').where('id', 'in', profileIds.slice(i, i + CHUNK)).execute()) profiles.add(p.id);
    }
    const now = this.deps.clock.now().toISOString();
    const out: SerialImportOutcome[] = [];
    const inserts: ConfiguratorDevicesTable[] = [];
    const counts = { created: 0, overwritten: 0, updated: 0, unchanged: 0, failed: 0 };
    for (const i of pending) {
      const item = items[i]!;
      const serial = serials[i]!;
      const failed = (error: string) => {
        counts.failed++;
        out.push({ status: 'failed', entity: null, error });
      };
      if (item.profileId && !profiles.has(item.profileId)) {
        failed(`requestedEnrollmentProfileId '${item.profileId}' is not an Apple Configurator profile.`);
        continue;
      }
      const row = existing.get(serial);
      if (!row) {
        const created: ConfiguratorDevicesTable = {
          id: crypto.randomUUID(),
          tenant_id: tenantId,
          serial_number: serial,
          details: normalizeDetails(item.details),
          profile_id: item.profileId ?? null,
          profile_assigned_at: item.profileId ? now : null,
          enrollment_state: 'notContacted',
          managed_device_id: null,
          last_contacted_at: null,
          platform: item.platform ?? 'unknown',
          created_at: now,
          updated_at: now,
        };
        inserts.push(created);
        counts.created++;
        out.push({ status: 'created', entity: toDeviceEntity(created) });
        continue;
      }
      if (!visibleExisting.has(row.id)) {
        failed(`serial number '${serial}' is already imported under an Apple Configurator profile outside your scope.`);
        continue;
      }
      const details = item.details === undefined ? row.details : normalizeDetails(item.details);
      const detailsDiffer = details !== row.details;
      const profileChanges = Boolean(item.profileId) && item.profileId !== row.profile_id;
      // A known platform isn't taken back to unknown.
      const platform = item.platform && item.platform !== 'unknown' ? item.platform : row.platform;
      const after: ConfiguratorDevicesTable = {
        ...row,
        details: detailsDiffer && overwrite ? details : row.details,
        profile_id: profileChanges ? item.profileId! : row.profile_id,
        profile_assigned_at: profileChanges ? now : row.profile_assigned_at,
        platform,
      };
      const changed = after.details !== row.details || profileChanges || platform !== row.platform;
      const kept = detailsDiffer && !overwrite ? { keptDetails: row.details } : {};
      if (!changed) {
        counts.unchanged++;
        out.push({ status: 'unchanged', entity: toDeviceEntity(row), ...kept });
        continue;
      }
      after.updated_at = now;
      await trx
        .updateTable('configurator_devices')
        .set({ details: after.details, profile_id: after.profile_id, profile_assigned_at: after.profile_assigned_at, platform: after.platform, updated_at: now })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', row.id)
        .execute();
      const status = after.details !== row.details ? 'overwritten' : 'updated';
      counts[status]++;
      out.push({ status, entity: toDeviceEntity(after), ...kept });
    }
    for (let i = 0; i < inserts.length; i += CHUNK) await trx.insertInto('configurator_devices').values(inserts.slice(i, i + CHUNK)).execute();
    await this.deps.audit.record(trx, actor, {
      ...AUDIT,
      resourceType: APPLE_DEVICE_TYPE,
      activity: operation === 'Create' ? 'Create Apple Configurator device identity' : 'Import Apple Configurator device identities',
      operation,
      resourceId: operation === 'Create' && inserts[0] ? inserts[0].id : tenantId,
      resourceDisplayName: operation === 'Create' && inserts[0] ? inserts[0].serial_number : 'Apple Configurator',
      after: operation === 'Create' && inserts[0] ? toDeviceEntity(inserts[0]) : { ...counts, overwriteImportedDeviceIdentities: overwrite },
    });
    return out;
  }

  /**
   * updateDeviceProfileAssignment under the pseudo setting: the profile for these serials, all of
   * them or none (a serial that isn't an Apple Configurator device the caller sees is a 400 naming it).
   */
  async assignProfile(actor: Actor, profileId: string, deviceIds: readonly string[]): Promise<void> {
    const serials = [...new Set(deviceIds.map(normalizeSerial))];
    if (serials.length === 0 || serials.some((s) => s === '')) throw invalidProperty('deviceIds', 'must list the serial numbers of the devices to assign.');
    await this.deps.store.transaction(async (trx) => {
      const profile = await this.profileRow(actor, profileId, trx, true);
      const rows: ConfiguratorDevicesTable[] = [];
      for (let i = 0; i < serials.length; i += CHUNK) rows.push(...(await this.devices(actor, trx).where('serial_number', 'in', serials.slice(i, i + CHUNK)).execute()));
      const found = new Set(rows.map((r) => r.serial_number));
      const unknown = serials.filter((s) => !found.has(s));
      if (unknown.length > 0) {
        const shown = unknown.slice(0, 20).join(', ') + (unknown.length > 20 ? ` and ${unknown.length - 20} more` : '');
        throw invalidProperty('deviceIds', `${shown} ${unknown.length === 1 ? 'is not an Apple Configurator device' : 'are not Apple Configurator devices'} (import the serials first). Nothing was assigned.`);
      }
      const now = this.deps.clock.now().toISOString();
      const changing = rows.filter((r) => r.profile_id !== profile.id).map((r) => r.id);
      for (let i = 0; i < changing.length; i += CHUNK) {
        await trx
          .updateTable('configurator_devices')
          .set({ profile_id: profile.id, profile_assigned_at: now, updated_at: now })
          .where('tenant_id', '=', actor.tenantId)
          .where('id', 'in', changing.slice(i, i + CHUNK))
          .execute();
      }
      await this.deps.audit.record(trx, actor, {
        ...AUDIT,
        resourceType: CONFIGURATOR_PROFILE_TYPE,
        activity: 'Assign Apple Configurator profile to devices',
        operation: 'Action',
        resourceId: profile.id,
        resourceDisplayName: profile.display_name,
        after: { deviceIds: serials },
      });
    });
  }
}

function columnsOf(s: ProfileSettings) {
  return {
    display_name: s.displayName,
    description: s.description,
    requires_user_authentication: s.requiresUserAuthentication ? 1 : 0,
    enable_authentication_via_company_portal: s.enableAuthenticationViaCompanyPortal ? 1 : 0,
    require_company_portal_on_setup_assistant: s.requireCompanyPortalOnSetupAssistantEnrolledDevices ? 1 : 0,
  };
}
