import crypto from 'node:crypto';
import type { AuditLog } from '../audit/audit-log.js';
import { systemActor, type Actor } from '../auth/principal.js';
import {
  assertTagsExist,
  DEFAULT_SCOPE_TAG_ID,
  deleteObjectTags,
  readObjectTags,
  tagsForNewObject,
  whereVisible,
  writeObjectTags,
} from '../auth/scope-tags.js';
import { conflict, invalidProperty, notFound } from '../graph/errors.js';
import type { Clock } from '../shared/time.js';
import { isUniqueViolation, type Executor, type Store, type Trx } from '../store/db.js';
import type { ManagedDevicesTable, UsersTable } from '../store/schema.js';
import type { DeviceChange, DeviceChangeListener } from './events.js';
import {
  applyOwnershipPrivacy,
  compareTagIds,
  generatedManagedDeviceName,
  IDENTITY_COLUMNS,
  identityValue,
  inputToColumns,
  MANAGED_DEVICE_OBJECT,
  MANAGED_DEVICE_TYPE,
  mergeScopeTags,
  parseDevicePatch,
  toManagedDevice,
  type DeviceInput,
  type ManagedDevice,
} from './model.js';

export interface UpsertResult {
  device: ManagedDevice;
  row: ManagedDevicesTable;
  created: boolean;
}

export interface UpsertOptions {
  /** Who to record in the audit log; the system actor when absent. */
  actor?: Actor;
  /** Correlation id for the system actor's audit event. */
  requestId?: string;
}

const AUDIT = { resourceType: MANAGED_DEVICE_TYPE, category: 'Device', componentName: 'DeviceManagement' } as const;

/** Entity properties that change on every check-in; a change of only these isn't audited. */
const SYNC_ONLY = new Set(['lastSyncDateTime']);

/**
 * The managedDevices record every platform writes. Enrollment code calls `upsert` inside its own
 * transaction; admins read, patch and delete through the Graph routes. Every change runs the
 * registered DeviceChangeListeners in the same transaction and records an audit event.
 */
export class DeviceRecords {
  private readonly listeners: DeviceChangeListener[] = [];

  constructor(
    private readonly store: Store,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  /** Registers a listener run inside every device change's transaction; returns an unregister function. */
  onChange(listener: DeviceChangeListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  private async emit(trx: Trx, change: DeviceChange): Promise<void> {
    for (const listener of [...this.listeners]) await listener(trx, change);
  }

  /** Row locks keep concurrent changes of one device from interleaving (PostgreSQL; SQLite serialises writers). */
  private lock<Q extends { forUpdate(): Q }>(q: Q): Q {
    return this.store.dialect === 'postgres' ? q.forUpdate() : q;
  }

  // ---- reads shared with other modules (tenant-filtered, not scope-filtered) ----

  async findById(db: Executor, tenantId: string, id: string): Promise<ManagedDevicesTable | undefined> {
    return db.selectFrom('managed_devices').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
  }

  /** The device with this identity: id first, then enrollmentId, udid, imei, serialNumber (placeholders ignored). */
  async findByIdentity(
    db: Executor,
    tenantId: string,
    identity: Pick<DeviceInput, 'id' | 'enrollmentId' | 'udid' | 'imei' | 'serialNumber'>,
  ): Promise<ManagedDevicesTable | undefined> {
    if (identity.id) {
      const row = await this.lock(db.selectFrom('managed_devices').selectAll().where('tenant_id', '=', tenantId).where('id', '=', identity.id)).executeTakeFirst();
      if (row) return row;
    }
    for (const [prop, column] of IDENTITY_COLUMNS) {
      const value = identityValue(identity[prop]);
      if (value === undefined) continue;
      const row = await this.lock(
        db
          .selectFrom('managed_devices')
          .selectAll()
          .where('tenant_id', '=', tenantId)
          .where(column, '=', value)
          // Serials and IMEIs aren't unique: prefer the device heard from last.
          .orderBy('last_sync_date_time', 'desc')
          .orderBy('id')
          .limit(1),
      ).executeTakeFirst();
      if (row) return row;
    }
    return undefined;
  }

  async tagsOf(db: Executor, tenantId: string, id: string): Promise<string[]> {
    return ((await readObjectTags(db, tenantId, MANAGED_DEVICE_OBJECT, [id])).get(id) ?? []).sort(compareTagIds);
  }

  async toEntities(tenantId: string, rows: readonly ManagedDevicesTable[], db: Executor = this.store.db): Promise<ManagedDevice[]> {
    const tags = await readObjectTags(db, tenantId, MANAGED_DEVICE_OBJECT, rows.map((r) => r.id));
    return rows.map((r) => toManagedDevice(r, (tags.get(r.id) ?? []).sort(compareTagIds)));
  }

  // ---- enrollment ----

  /**
   * Creates or updates the device with the input's identity, in the caller's transaction.
   * Sets enrolledDateTime on creation and lastSyncDateTime every time; scope tags default to
   * Default on creation and are replaced only when given.
   */
  async upsert(trx: Trx, tenantId: string, input: DeviceInput, opts: UpsertOptions = {}): Promise<UpsertResult> {
    const columns = inputToColumns(input);
    if (input.id !== undefined && (typeof input.id !== 'string' || input.id.length === 0 || input.id.length > 200)) {
      throw invalidProperty('id', 'must be a non-empty string of at most 200 characters.');
    }
    const tags = input.roleScopeTagIds === undefined ? undefined : [...new Set(input.roleScopeTagIds)].sort(compareTagIds);
    if (tags) await assertTagsExist(trx, tenantId, tags);
    const actor = opts.actor ?? systemActor(tenantId, opts.requestId ?? crypto.randomUUID());
    const now = this.clock.now().toISOString();
    const existing = await this.findByIdentity(trx, tenantId, input);

    if (!existing) {
      const base: ManagedDevicesTable = {
        id: input.id ?? crypto.randomUUID(),
        tenant_id: tenantId,
        device_name: null,
        managed_device_name: null,
        serial_number: null,
        imei: null,
        meid: null,
        udid: null,
        enrollment_id: null,
        azure_ad_device_id: null,
        operating_system: null,
        os_version: null,
        model: null,
        manufacturer: null,
        device_type: 'unknown',
        managed_device_owner_type: 'unknown',
        device_enrollment_type: 'unknown',
        device_registration_state: 'notRegistered',
        management_state: 'managed',
        management_agent: 'mdm',
        compliance_state: 'unknown',
        join_type: 'unknown',
        enrollment_profile_name: null,
        device_category_id: null,
        device_category_display_name: null,
        user_id: null,
        user_principal_name: null,
        user_display_name: null,
        email_address: null,
        enrolled_by_user_principal_name: null,
        is_supervised: 0,
        is_encrypted: 0,
        autopilot_enrolled: 0,
        wifi_mac_address: null,
        phone_number: null,
        notes: null,
        enrolled_date_time: now,
        last_sync_date_time: now,
        management_certificate_expiration_date: null,
        created_at: now,
        updated_at: now,
        ...columns,
      };
      const row = applyOwnershipPrivacy({ ...base, managed_device_name: base.managed_device_name ?? generatedManagedDeviceName(base) });
      const rowTags = tags && tags.length > 0 ? tags : [DEFAULT_SCOPE_TAG_ID];
      try {
        await trx.insertInto('managed_devices').values(row).execute();
      } catch (err) {
        if (isUniqueViolation(err)) throw conflict('A device with the same id or UDID was enrolled at the same time; retry the enrollment.');
        throw err;
      }
      await writeObjectTags(trx, tenantId, MANAGED_DEVICE_OBJECT, row.id, rowTags);
      await this.emit(trx, { tenantId, before: null, after: row });
      const device = toManagedDevice(row, rowTags);
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Create managed device',
        operation: 'Create',
        resourceId: row.id,
        resourceDisplayName: row.device_name,
        after: { ...device },
      });
      return { device, row, created: true };
    }

    const beforeTags = await this.tagsOf(trx, tenantId, existing.id);
    const row = applyOwnershipPrivacy({
      ...existing,
      ...columns,
      last_sync_date_time: columns.last_sync_date_time ?? now,
      updated_at: now,
    });
    if (row.managed_device_name === null) row.managed_device_name = generatedManagedDeviceName(row);
    const { id, tenant_id: _tenantId, created_at: _createdAt, ...set } = row;
    await trx.updateTable('managed_devices').set(set).where('tenant_id', '=', tenantId).where('id', '=', id).execute();
    const afterTags = tags && tags.length > 0 ? tags : beforeTags;
    if (afterTags.join() !== beforeTags.join()) await writeObjectTags(trx, tenantId, MANAGED_DEVICE_OBJECT, id, afterTags);
    await this.emit(trx, { tenantId, before: existing, after: row });
    const before = toManagedDevice(existing, beforeTags);
    const device = toManagedDevice(row, afterTags);
    if (Object.keys(device).some((k) => !SYNC_ONLY.has(k) && JSON.stringify(device[k as keyof ManagedDevice]) !== JSON.stringify(before[k as keyof ManagedDevice]))) {
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Update managed device',
        operation: 'Patch',
        resourceId: id,
        resourceDisplayName: row.device_name,
        before: { ...before },
        after: { ...device },
      });
    }
    return { device, row, created: false };
  }

  // ---- admin API ----

  /** The caller's devices: tenant- and scope-filtered. */
  base(actor: Actor) {
    const q = this.store.db.selectFrom('managed_devices').selectAll('managed_devices').where('managed_devices.tenant_id', '=', actor.tenantId);
    return whereVisible(q, actor.principal, MANAGED_DEVICE_OBJECT, 'managed_devices.id');
  }

  private async visibleRow(db: Executor, actor: Actor, id: string, forUpdate = false): Promise<ManagedDevicesTable> {
    let q = db.selectFrom('managed_devices').selectAll('managed_devices').where('managed_devices.tenant_id', '=', actor.tenantId).where('managed_devices.id', '=', id);
    q = whereVisible(q, actor.principal, MANAGED_DEVICE_OBJECT, 'managed_devices.id');
    const row = await (forUpdate ? this.lock(q) : q).executeTakeFirst();
    // Out of scope reads as absent, so a device's existence doesn't leak.
    if (!row) throw notFound(`Managed device '${id}' was not found.`);
    return row;
  }

  async get(actor: Actor, id: string): Promise<ManagedDevice> {
    const row = await this.visibleRow(this.store.db, actor, id);
    return toManagedDevice(row, await this.tagsOf(this.store.db, actor.tenantId, id));
  }

  /** PATCH: managedDeviceName, notes, managedDeviceOwnerType (ownerType) and roleScopeTagIds only. */
  async patch(actor: Actor, id: string, body: unknown): Promise<ManagedDevice> {
    const patch = parseDevicePatch(body, id);
    return this.store.transaction(async (trx) => {
      const existing = await this.visibleRow(trx, actor, id, true);
      const beforeTags = await this.tagsOf(trx, actor.tenantId, id);
      let afterTags = beforeTags;
      if (patch.roleScopeTagIds !== undefined) {
        const requested = tagsForNewObject(actor.principal, patch.roleScopeTagIds);
        await assertTagsExist(trx, actor.tenantId, requested);
        afterTags = mergeScopeTags(beforeTags, requested, actor.principal.scopeTagIds);
      }
      let row: ManagedDevicesTable = { ...existing };
      if (patch.managedDeviceName !== undefined) row.managed_device_name = patch.managedDeviceName ?? generatedManagedDeviceName(row);
      if (patch.notes !== undefined) row.notes = patch.notes;
      if (patch.managedDeviceOwnerType !== undefined) row.managed_device_owner_type = patch.managedDeviceOwnerType;
      row = applyOwnershipPrivacy(row);
      row.updated_at = this.clock.now().toISOString();
      await trx
        .updateTable('managed_devices')
        .set({
          managed_device_name: row.managed_device_name,
          notes: row.notes,
          managed_device_owner_type: row.managed_device_owner_type,
          phone_number: row.phone_number,
          updated_at: row.updated_at,
        })
        .where('tenant_id', '=', actor.tenantId)
        .where('id', '=', id)
        .execute();
      if (afterTags.join() !== beforeTags.join()) await writeObjectTags(trx, actor.tenantId, MANAGED_DEVICE_OBJECT, id, afterTags);
      await this.emit(trx, { tenantId: actor.tenantId, before: existing, after: row });
      const before = toManagedDevice(existing, beforeTags);
      const after = toManagedDevice(row, afterTags);
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Patch managed device',
        operation: 'Patch',
        resourceId: id,
        resourceDisplayName: row.device_name,
        before: { ...before },
        after: { ...after },
      });
      return after;
    });
  }

  /**
   * Sets a device's category columns (an admin's choice, the user's at enrollment, or a category
   * renamed or deleted) in the caller's transaction; listeners run, so dynamic groups on
   * deviceCategory follow. Tenant-level: the caller checks the actor's scope first.
   */
  async setCategory(
    trx: Trx,
    tenantId: string,
    id: string,
    category: { id: string | null; displayName: string | null },
    opts: UpsertOptions = {},
  ): Promise<ManagedDevice> {
    const existing = await this.lock(trx.selectFrom('managed_devices').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id)).executeTakeFirst();
    if (!existing) throw notFound(`Managed device '${id}' was not found.`);
    const tags = await this.tagsOf(trx, tenantId, id);
    if (existing.device_category_id === category.id && existing.device_category_display_name === category.displayName) return toManagedDevice(existing, tags);
    const row: ManagedDevicesTable = {
      ...existing,
      device_category_id: category.id,
      device_category_display_name: category.displayName,
      updated_at: this.clock.now().toISOString(),
    };
    await trx
      .updateTable('managed_devices')
      .set({ device_category_id: row.device_category_id, device_category_display_name: row.device_category_display_name, updated_at: row.updated_at })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', id)
      .execute();
    await this.emit(trx, { tenantId, before: existing, after: row });
    const device = toManagedDevice(row, tags);
    await this.audit.record(trx, opts.actor ?? systemActor(tenantId, opts.requestId ?? crypto.randomUUID()), {
      ...AUDIT,
      activity: 'Set managed device category',
      operation: 'Patch',
      resourceId: id,
      resourceDisplayName: row.device_name,
      before: { ...toManagedDevice(existing, tags) },
      after: { ...device },
    });
    return device;
  }

  /** Removes the record (Intune's "Delete" of a device), its scope tags, and tells listeners. */
  async delete(actor: Actor, id: string): Promise<void> {
    await this.store.transaction(async (trx) => {
      const existing = await this.visibleRow(trx, actor, id, true);
      const tags = await this.tagsOf(trx, actor.tenantId, id);
      await trx.deleteFrom('managed_devices').where('tenant_id', '=', actor.tenantId).where('id', '=', id).execute();
      await deleteObjectTags(trx, actor.tenantId, MANAGED_DEVICE_OBJECT, id);
      await this.emit(trx, { tenantId: actor.tenantId, before: existing, after: null });
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Delete managed device',
        operation: 'Delete',
        resourceId: id,
        resourceDisplayName: existing.device_name,
        before: { ...toManagedDevice(existing, tags) },
      });
    });
  }

  /** The device's primary user (none for userless devices or a user since deleted). */
  async primaryUsers(actor: Actor, id: string): Promise<UsersTable[]> {
    const device = await this.visibleRow(this.store.db, actor, id);
    if (!device.user_id) return [];
    return this.store.db.selectFrom('users').selectAll().where('tenant_id', '=', actor.tenantId).where('id', '=', device.user_id).execute();
  }
}
