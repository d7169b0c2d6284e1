import crypto from 'node:crypto';
import type { AuditLog } from '../../../audit/audit-log.js';
import type { Actor } from '../../../auth/principal.js';
import { badRequest, conflict, invalidProperty, notFound } from '../../../graph/errors.js';
import type { FilterNode } from '../../../graph/odata/filter-ast.js';
import type { EntityModel } from '../../../graph/odata/model.js';
import type { ODataQuery } from '../../../graph/odata/query-options.js';
import type { Clock } from '../../../shared/time.js';
import type { Executor, Store, Trx } from '../../../store/db.js';
import type { DepDevicesTable, DepProfilesTable, DepTokensTable } from '../../../store/schema.js';
import type { AdeAssignments } from './assignment.js';
import { deviceView, deviceViewTable } from './device-view.js';
import {
  ADE_LIMITS,
  APPLE_DEVICE_TYPE,
  ASSIGNMENT_RESULTS,
  DEP_TOKEN_TYPE,
  DEVICE_PLATFORMS,
  DEVICE_STATUSES,
  DISCOVERY_SOURCES,
  ENROLLMENT_STATES,
  fullProfileId,
  IMPORT_PLATFORMS,
  normalizeSerial,
  profilePlatformOf,
  serialProblem,
  toDeviceEntity,
} from './model.js';
import { AUDIT_AREA, visibleToken } from './token-access.js';

const AUDIT = { ...AUDIT_AREA, resourceType: APPLE_DEVICE_TYPE } as const;
const ID_OPS = ['eq', 'ne'] as const;

/** importedAppleDeviceIdentity over the device view (`v`): derived status, state and effective profile filter too. */
export const appleDeviceModel: EntityModel = {
  typeName: APPLE_DEVICE_TYPE,
  keyColumn: 'v.id',
  properties: {
    id: { type: 'string', column: 'v.id', filterOps: ID_OPS },
    serialNumber: { type: 'string', column: 'v.serial_number', caseInsensitive: true },
    requestedEnrollmentProfileId: { type: 'string', column: 'v.requested_profile_id', filterOps: ID_OPS },
    requestedEnrollmentProfileAssignmentDateTime: { type: 'datetime', column: 'v.requested_profile_assigned_at' },
    isSupervised: { type: 'boolean', column: 'v.is_supervised' },
    platform: { type: 'enum', column: 'v.platform', enumValues: DEVICE_PLATFORMS },
    description: { type: 'string', column: 'v.description', caseInsensitive: true },
    // Enum literals match regardless of case (Intune took 'AdminImport').
    discoverySource: { type: 'enum', column: 'v.discovery_source', enumValues: DISCOVERY_SOURCES },
    createdDateTime: { type: 'datetime', column: 'v.created_at' },
    lastContactedDateTime: { type: 'datetime', column: 'v.last_contacted_at' },
    enrollmentState: { type: 'enum', column: 'v.enrollment_state_now', enumValues: ENROLLMENT_STATES },
    isDeleted: { type: 'boolean', column: 'v.is_deleted' },
    deviceStatus: { type: 'enum', column: 'v.status', enumValues: DEVICE_STATUSES },
    appleAssignmentResult: { type: 'enum', column: 'v.assignment_result', enumValues: ASSIGNMENT_RESULTS },
    appleAssignmentDateTime: { type: 'datetime', column: 'v.assignment_result_at' },
    removedFromAppleDateTime: { type: 'datetime', column: 'v.removed_from_apple_at' },
    effectiveEnrollmentProfileId: { type: 'string', column: 'v.effective_profile_id', filterOps: ID_OPS },
  },
};

const PROFILE_ID_PROPERTIES = new Set(['requestedEnrollmentProfileId', 'effectiveEnrollmentProfileId']);

/** Profile ids in $filter may be bare GUIDs (Intune's own filter uses the GUID part): made full ids of this token. */
export function withFullProfileIds(node: FilterNode | undefined, tokenId: string): FilterNode | undefined {
  if (!node) return node;
  switch (node.kind) {
    case 'and':
    case 'or':
      return { kind: node.kind, left: withFullProfileIds(node.left, tokenId)!, right: withFullProfileIds(node.right, tokenId)! };
    case 'not':
      return { kind: 'not', expr: withFullProfileIds(node.expr, tokenId)! };
    default:
      if (node.kind === 'compare' && PROFILE_ID_PROPERTIES.has(node.property) && node.value.type === 'string') {
        return { ...node, value: { type: 'string', value: fullProfileId(tokenId, node.value.value) } };
      }
      return node;
  }
}

export interface DeviceImportItem {
  serialNumber: string;
  requestedEnrollmentProfileId?: string | null;
  description?: string | null;
  platform?: string;
}

export interface DeviceImportOutcome {
  ok: boolean;
  entity: Record<string, unknown> | null;
  error?: string;
}

export interface AdeDeviceDeps {
  store: Store;
  audit: AuditLog;
  clock: Clock;
  assignments: AdeAssignments;
}

interface Problem {
  error: string;
}

/** importedAppleDeviceIdentities under a token: list, import, edit, delete, and profile assignment. */
export class AdeDeviceService {
  constructor(private readonly deps: AdeDeviceDeps) {}

  /** The token's devices as a table for OData, and the query with profile ids made full. */
  async list(actor: Actor, tokenId: string, query: ODataQuery) {
    await visibleToken(this.deps.store, actor, tokenId);
    return { base: deviceViewTable(this.deps.store.db, actor.tenantId, tokenId), query: { ...query, filter: withFullProfileIds(query.filter, tokenId) } };
  }

  private async views(db: Executor, tenantId: string, tokenId: string, where: { ids?: string[]; serials?: string[] }) {
    let q = deviceView(db, tenantId).where('d.token_id', '=', tokenId);
    if (where.ids) q = q.where('d.id', 'in', where.ids.length ? where.ids : ['']);
    if (where.serials) q = q.where('d.serial_number', 'in', where.serials.length ? where.serials : ['']);
    return q.execute();
  }

  async get(actor: Actor, tokenId: string, id: string): Promise<Record<string, unknown>> {
    await visibleToken(this.deps.store, actor, tokenId);
    const [v] = await this.views(this.deps.store.db, actor.tenantId, tokenId, { ids: [id] });
    if (!v) throw notFound(`Apple device identity '${id}' was not found in enrollment program token '${tokenId}'.`);
    return toDeviceEntity(v);
  }

  private async deviceRow(trx: Executor, tenantId: string, tokenId: string, id: string): Promise<DepDevicesTable> {
    let q = trx.selectFrom('dep_devices').selectAll().where('tenant_id', '=', tenantId).where('token_id', '=', tokenId).where('id', '=', id).where('deleted_at', 'is', null);
    if (this.deps.store.dialect === 'postgres') q = q.forUpdate();
    const row = await q.executeTakeFirst();
    if (!row) throw notFound(`Apple device identity '${id}' was not found in enrollment program token '${tokenId}'.`);
    return row;
  }

  private async profileOf(db: Executor, tenantId: string, tokenId: string, given: string, property: string): Promise<DepProfilesTable> {
    const id = fullProfileId(tokenId, given);
    const row = await db.selectFrom('dep_profiles').selectAll().where('tenant_id', '=', tenantId).where('token_id', '=', tokenId).where('id', '=', id).executeTakeFirst();
    if (!row) throw invalidProperty(property, `'${given}' is not an enrollment profile of this enrollment program token.`);
    return row;
  }

  /** PATCH: description and requestedEnrollmentProfileId (null: back to the token's default). */
  async patch(actor: Actor, tokenId: string, id: string, patch: { description?: string | null; requestedEnrollmentProfileId?: string | null }): Promise<Record<string, unknown>> {
    const { tenantId } = actor;
    const push = await this.deps.store.transaction(async (trx) => {
      const token = await visibleToken(this.deps.store, actor, tokenId, trx, true);
      const row = await this.deviceRow(trx, tenantId, tokenId, id);
      const [before] = await this.views(trx, tenantId, tokenId, { ids: [id] });
      const now = this.deps.clock.now().toISOString();
      let push = false;
      if (patch.description !== undefined) {
        await trx.updateTable('dep_devices').set({ description: patch.description, updated_at: now }).where('tenant_id', '=', tenantId).where('id', '=', id).execute();
      }
      if (patch.requestedEnrollmentProfileId !== undefined) {
        if (patch.requestedEnrollmentProfileId === null) {
          await trx.updateTable('dep_devices').set({ requested_profile_id: null, requested_profile_assigned_at: null, updated_at: now }).where('tenant_id', '=', tenantId).where('id', '=', id).execute();
          push = (await this.deps.assignments.markPending(trx, tenantId, tokenId, { serials: [row.serial_number] })) > 0;
        } else {
          const profile = await this.profileOf(trx, tenantId, tokenId, patch.requestedEnrollmentProfileId, 'requestedEnrollmentProfileId');
          const problem = this.assignable(row, profile);
          if (problem) throw invalidProperty('requestedEnrollmentProfileId', problem.error);
          await this.choose(trx, tenantId, [row.id], profile.id, now);
          push = true;
        }
      }
      push = push && token.oauth_secret_id !== null;
      if (push) await this.deps.assignments.scheduleAssign(trx, tenantId, tokenId);
      const [after] = await this.views(trx, tenantId, tokenId, { ids: [id] });
      await this.deps.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Patch Apple device identity',
        operation: 'Patch',
        resourceId: id,
        resourceDisplayName: row.serial_number,
        before: toDeviceEntity(before!),
        after: toDeviceEntity(after!),
      });
      return push ? row.serial_number : null;
    });
    if (push) await this.deps.assignments.pushPending(tenantId, tokenId, { serials: [push] });
    return this.get(actor, tokenId, id);
  }

  /**
   * DELETE: a device Apple still holds on our MDM server is hidden until the next full sync lists
   * it again (unassign it in ABM/ASM to keep it away); any other (imported, never seen; released)
   * is deleted.
   */
  async delete(actor: Actor, tokenId: string, id: string): Promise<void> {
    const { tenantId } = actor;
    await this.deps.store.transaction(async (trx) => {
      await visibleToken(this.deps.store, actor, tokenId, trx, true);
      const row = await this.deviceRow(trx, tenantId, tokenId, id);
      const [before] = await this.views(trx, tenantId, tokenId, { ids: [id] });
      const atApple = row.seen_at_apple === 1 && row.removed_from_apple_at === null;
      const now = this.deps.clock.now().toISOString();
      if (atApple) await trx.updateTable('dep_devices').set({ deleted_at: now, updated_at: now }).where('tenant_id', '=', tenantId).where('id', '=', id).execute();
      else await trx.deleteFrom('dep_devices').where('tenant_id', '=', tenantId).where('id', '=', id).execute();
      await this.deps.audit.record(trx, actor, {
        ...AUDIT,
        activity: atApple ? 'Delete Apple device identity (still assigned at Apple: hidden until the next full sync)' : 'Delete Apple device identity',
        operation: 'Delete',
        resourceId: id,
        resourceDisplayName: row.serial_number,
        before: toDeviceEntity(before!),
      });
    });
  }

  /** Why a profile can't be chosen for this device, or null. */
  private assignable(row: Pick<DepDevicesTable, 'serial_number' | 'platform' | 'removed_from_apple_at'>, profile: Pick<DepProfilesTable, 'platform'>): Problem | null {
    if (row.removed_from_apple_at !== null) return { error: `${row.serial_number} was released from Apple Business Manager / Apple School Manager` };
    if (row.platform !== 'unknown' && profilePlatformOf(row.platform) !== profile.platform) {
      return { error: `${row.serial_number} is a${row.platform === 'ios' ? 'n iOS/iPadOS' : ` ${row.platform}`} device and the profile is for ${profile.platform === 'iOS' ? 'iOS/iPadOS' : 'macOS'}` };
    }
    return null;
  }

  /** Records the admin's choice and marks the devices PENDING for Apple. */
  private async choose(trx: Trx, tenantId: string, ids: readonly string[], profileId: string, now: string): Promise<void> {
    for (let i = 0; i < ids.length; i += 500) {
      await trx
        .updateTable('dep_devices')
        .set({ requested_profile_id: profileId, requested_profile_assigned_at: now, assignment_result: 'PENDING', assignment_result_at: now, updated_at: now })
        .where('tenant_id', '=', tenantId)
        .where('id', 'in', ids.slice(i, i + 500))
        .execute();
    }
  }

  /**
   * updateDeviceProfileAssignment: the profile for these serials (all of them or none: an unknown
   * serial, a released device or another platform's device is a 400 naming them), then pushed
   * to Apple; Apple's answer per device shows in appleAssignmentResult.
   */
  async updateProfileAssignment(actor: Actor, tokenId: string, profileId: string, deviceIds: readonly string[]): Promise<void> {
    const { tenantId } = actor;
    const serials = [...new Set(deviceIds.map(normalizeSerial))];
    if (serials.length === 0 || serials.some((s) => s === '')) throw invalidProperty('deviceIds', 'must list the serial numbers of the devices to assign.');
    const uploaded = await this.deps.store.transaction(async (trx) => {
      const token = await visibleToken(this.deps.store, actor, tokenId, trx, true);
      const profile = await this.profileRow(trx, tenantId, tokenId, profileId);
      const rows: DepDevicesTable[] = [];
      for (let i = 0; i < serials.length; i += 500) {
        rows.push(
          ...(await trx
            .selectFrom('dep_devices')
            .selectAll()
            .where('tenant_id', '=', tenantId)
            .where('token_id', '=', tokenId)
            .where('deleted_at', 'is', null)
            .where('serial_number', 'in', serials.slice(i, i + 500))
            .execute()),
        );
      }
      const found = new Set(rows.map((r) => r.serial_number));
      const problems: string[] = [];
      const unknown = serials.filter((s) => !found.has(s));
      if (unknown.length > 0) problems.push(`${list(unknown)} ${unknown.length === 1 ? 'is not a device' : 'are not devices'} of this enrollment program token`);
      for (const r of rows) {
        const p = this.assignable(r, profile);
        if (p) problems.push(p.error);
      }
      if (problems.length > 0) throw invalidProperty('deviceIds', `${problems.slice(0, 20).join('; ')}${problems.length > 20 ? `; and ${problems.length - 20} more` : ''}. Nothing was assigned.`);
      const now = this.deps.clock.now().toISOString();
      await this.choose(trx, tenantId, rows.map((r) => r.id), profile.id, now);
      if (token.oauth_secret_id) await this.deps.assignments.scheduleAssign(trx, tenantId, tokenId);
      await this.deps.audit.record(trx, actor, {
        ...AUDIT_AREA,
        resourceType: profile.platform === 'macOS' ? 'microsoft.graph.depMacOSEnrollmentProfile' : 'microsoft.graph.depIOSEnrollmentProfile',
        activity: 'Assign ADE enrollment profile to devices',
        operation: 'Action',
        resourceId: profile.id,
        resourceDisplayName: profile.display_name,
        after: { deviceIds: serials },
      });
      return token.oauth_secret_id !== null;
    });
    if (uploaded) await this.deps.assignments.pushPending(tenantId, tokenId, { serials });
  }

  private async profileRow(db: Executor, tenantId: string, tokenId: string, id: string): Promise<DepProfilesTable> {
    const row = await db.selectFrom('dep_profiles').selectAll().where('tenant_id', '=', tenantId).where('token_id', '=', tokenId).where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound(`Enrollment profile '${id}' was not found in enrollment program token '${tokenId}'.`);
    return row;
  }

  /** POST …/importedAppleDeviceIdentities: one admin-imported serial (201), 409 if it exists. */
  async create(actor: Actor, tokenId: string, item: DeviceImportItem): Promise<Record<string, unknown>> {
    const [outcome] = await this.importList(actor, tokenId, [item], false);
    if (outcome!.ok) return outcome!.entity!;
    const error = outcome!.error!;
    throw /already/.test(error) ? conflict(error, 'serialNumber') : badRequest(error, 'serialNumber');
  }

  /**
   * importAppleDeviceIdentityList: each item on its own (status false with the reason for an
   * invalid serial, a repeat in the request, a serial of another token, an existing one without
   * overwrite, an unknown profile). New serials are adminImport and notContacted until Apple lists
   * them for our MDM server. One transaction; chosen profiles are pushed to Apple afterwards.
   */
  async importList(actor: Actor, tokenId: string, items: readonly DeviceImportItem[], overwrite: boolean): Promise<DeviceImportOutcome[]> {
    const { tenantId } = actor;
    if (items.length > ADE_LIMITS.devicesPerRequest) throw invalidProperty('importedAppleDeviceIdentities', `must have at most ${ADE_LIMITS.devicesPerRequest} items.`);
    const outcomes: (DeviceImportOutcome | undefined)[] = items.map(() => undefined);
    const fail = (i: number, error: string) => (outcomes[i] = { ok: false, entity: null, error });
    const serials: (string | undefined)[] = items.map((it, i) => {
      const problem = serialProblem(it.serialNumber ?? '');
      if (problem) {
        fail(i, `serialNumber '${it.serialNumber}' ${problem}.`);
        return undefined;
      }
      return normalizeSerial(it.serialNumber);
    });
    const first = new Map<string, number>();
    serials.forEach((s, i) => {
      if (s === undefined) return;
      const j = first.get(s);
      if (j === undefined) first.set(s, i);
      else fail(i, `serialNumber '${s}' repeats item ${j + 1}; only the first is imported.`);
    });

    const { toPush, uploaded, written } = await this.deps.store.transaction(async (trx) => {
      const token = await visibleToken(this.deps.store, actor, tokenId, trx, true);
      const pending = items.map((_, i) => i).filter((i) => outcomes[i] === undefined);
      const wanted = pending.map((i) => serials[i]!);
      const existing = new Map<string, DepDevicesTable>();
      for (let i = 0; i < wanted.length; i += 500) {
        for (const r of await trx.selectFrom('dep_devices').selectAll().where('tenant_id', '=', tenantId).where('serial_number', 'in', wanted.slice(i, i + 500)).execute()) existing.set(r.serial_number, r);
      }
      const profiles = new Map((await trx.selectFrom('dep_profiles').selectAll().where('tenant_id', '=', tenantId).where('token_id', '=', tokenId).execute()).map((p) => [p.id, p]));
      const now = this.deps.clock.now().toISOString();
      const written: { index: number; id: string; push: boolean }[] = [];
      for (const i of pending) {
        const item = items[i]!;
        const serial = serials[i]!;
        const profile = item.requestedEnrollmentProfileId ? profiles.get(fullProfileId(tokenId, item.requestedEnrollmentProfileId)) : undefined;
        if (item.requestedEnrollmentProfileId && !profile) {
          fail(i, `requestedEnrollmentProfileId '${item.requestedEnrollmentProfileId}' is not an enrollment profile of this enrollment program token.`);
          continue;
        }
        if (item.platform !== undefined && !(IMPORT_PLATFORMS as readonly string[]).includes(item.platform)) {
          fail(i, `platform '${item.platform}' is not one of ${IMPORT_PLATFORMS.join(', ')}.`);
          continue;
        }
        const row = existing.get(serial);
        if (row && row.token_id !== tokenId) {
          fail(i, `serialNumber '${serial}' is already a device of another enrollment program token.`);
          continue;
        }
        if (row && row.deleted_at === null && !overwrite) {
          fail(i, `serialNumber '${serial}' is already imported; set overwriteImportedDeviceIdentities to true to update it.`);
          continue;
        }
        // A device Apple reports keeps Apple's platform.
        const platform = row && row.platform !== 'unknown' ? row.platform : (item.platform ?? (profile ? (profile.platform === 'macOS' ? 'macOS' : 'ios') : (row?.platform ?? 'unknown')));
        if (profile) {
          const problem = this.assignable({ serial_number: serial, platform, removed_from_apple_at: row?.removed_from_apple_at ?? null }, profile);
          if (problem) {
            fail(i, `${problem.error}.`);
            continue;
          }
        }
        const choice = profile ? { requested_profile_id: profile.id, requested_profile_assigned_at: now, assignment_result: 'PENDING', assignment_result_at: now } : {};
        if (row) {
          await trx
            .updateTable('dep_devices')
            .set({ ...(item.description !== undefined ? { description: item.description } : {}), platform, deleted_at: null, ...choice, updated_at: now })
            .where('tenant_id', '=', tenantId)
            .where('id', '=', row.id)
            .execute();
          written.push({ index: i, id: row.id, push: Boolean(profile) });
        } else {
          const id = crypto.randomUUID();
          await trx
            .insertInto('dep_devices')
            .values({
              id,
              tenant_id: tenantId,
              token_id: tokenId,
              serial_number: serial,
              description: item.description ?? null,
              model: null,
              color: null,
              asset_tag: null,
              device_family: null,
              os: null,
              platform,
              discovery_source: 'adminImport',
              apple_profile_status: null,
              apple_profile_uuid: null,
              apple_profile_assign_time: null,
              apple_profile_push_time: null,
              device_assigned_by: null,
              device_assigned_date: null,
              last_op_type: null,
              last_op_date: null,
              seen_at_apple: 0,
              requested_profile_id: profile?.id ?? null,
              requested_profile_assigned_at: profile ? now : null,
              assignment_result: profile ? 'PENDING' : null,
              assignment_result_at: profile ? now : null,
              assigned_profile_id: null,
              assigned_profile_revision: null,
              removed_from_apple_at: null,
              deleted_at: null,
              enrollment_state: 'notContacted',
              managed_device_id: null,
              enrolled_profile_id: null,
              enrolled_profile_revision: null,
              is_supervised: 0,
              last_contacted_at: null,
              created_at: now,
              updated_at: now,
              fetch_id: null,
            })
            .execute();
          written.push({ index: i, id, push: Boolean(profile) });
        }
      }
      const toPush = written.filter((w) => w.push).map((w) => serials[w.index]!);
      if (toPush.length > 0 && token.oauth_secret_id) await this.deps.assignments.scheduleAssign(trx, tenantId, tokenId);
      await this.auditImport(trx, actor, token, written.length, items.length - written.length, overwrite);
      return { toPush, uploaded: token.oauth_secret_id !== null, written };
    });
    if (uploaded && toPush.length > 0) await this.deps.assignments.pushPending(tenantId, tokenId, { serials: toPush });
    // Read after the push, so the results show Apple's answer too.
    const views = new Map<string, Record<string, unknown>>();
    for (let i = 0; i < written.length; i += 500) {
      for (const v of await this.views(this.deps.store.db, tenantId, tokenId, { ids: written.slice(i, i + 500).map((w) => w.id) })) views.set(v.id, toDeviceEntity(v));
    }
    for (const w of written) outcomes[w.index] = { ok: true, entity: views.get(w.id) ?? null };
    return outcomes as DeviceImportOutcome[];
  }

  private async auditImport(trx: Trx, actor: Actor, token: DepTokensTable, imported: number, failed: number, overwrite: boolean): Promise<void> {
    await this.deps.audit.record(trx, actor, {
      ...AUDIT_AREA,
      resourceType: DEP_TOKEN_TYPE,
      activity: 'Import Apple device identities',
      operation: 'Action',
      resourceId: token.id,
      resourceDisplayName: token.token_name,
      after: { imported, failed, overwriteImportedDeviceIdentities: overwrite },
    });
  }
}

function list(serials: readonly string[]): string {
  const shown = serials.slice(0, 20).join(', ');
  return serials.length > 20 ? `${shown} and ${serials.length - 20} more` : shown;
}
