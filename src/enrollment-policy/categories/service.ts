import crypto from 'node:crypto';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Actor } from '../../auth/principal.js';
import { assertTagsExist, deleteObjectTags, readObjectTags, tagsForNewObject, whereVisible, writeObjectTags } from '../../auth/scope-tags.js';
import { compareTagIds, MANAGED_DEVICE_OBJECT, mergeScopeTags, type ManagedDevice } from '../../devices/model.js';
import type { DeviceRecords, UpsertOptions } from '../../devices/service.js';
import { badRequest, conflict, invalidProperty, notFound } from '../../graph/errors.js';
import { idFromODataRef } from '../../graph/schemas.js';
import type { Clock } from '../../shared/time.js';
import { isUniqueViolation, type Executor, type Store, type Trx } from '../../store/db.js';
import type { DeviceCategoriesTable } from '../../store/schema.js';
import {
  categoryNameKey,
  categoryNameProblem,
  DEVICE_CATEGORY_LIMITS,
  DEVICE_CATEGORY_OBJECT,
  DEVICE_CATEGORY_TYPE,
  NO_CATEGORY_ID,
  noCategory,
  UNASSIGNED,
} from './rules.js';

export interface DeviceCategory {
  id: string;
  displayName: string;
  description: string | null;
  roleScopeTagIds: string[];
}

export interface CategoryInput {
  displayName?: string;
  description?: string | null;
  roleScopeTagIds?: string[];
}

const AUDIT = { resourceType: DEVICE_CATEGORY_TYPE, category: 'Enrollment', componentName: 'Enrollment' } as const;

const toCategory = (r: DeviceCategoriesTable, tags: readonly string[]): DeviceCategory => ({
  id: r.id,
  displayName: r.display_name,
  description: r.description,
  roleScopeTagIds: [...tags].sort(compareTagIds),
});

/** What a device without a category reports as its deviceCategory. */
export const unassignedCategory = (): DeviceCategory => ({ id: NO_CATEGORY_ID, displayName: UNASSIGNED, description: null, roleScopeTagIds: [] });

function checkName(name: string): string {
  const problem = categoryNameProblem(name);
  if (problem) throw invalidProperty('displayName', problem);
  return name.trim();
}

function checkDescription(d: string | null | undefined): string | null | undefined {
  if (d === undefined || d === null) return d;
  if (d.length > DEVICE_CATEGORY_LIMITS.description) throw invalidProperty('description', `must be at most ${DEVICE_CATEGORY_LIMITS.description} characters.`);
  return d;
}

/**
 * Device categories (Graph deviceCategories) and a device's category. A device's category lives on
 * its record (device_category_id, deviceCategoryDisplayName) and is always written through
 * DeviceRecords, so dynamic groups on `device.deviceCategory` follow in the same transaction:
 * assigning, renaming and deleting a category all re-evaluate the devices concerned.
 */
export class DeviceCategoryService {
  constructor(
    private readonly store: Store,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly devices: DeviceRecords,
  ) {}

  base(actor: Actor) {
    const q = this.store.db.selectFrom('device_categories').selectAll('device_categories').where('device_categories.tenant_id', '=', actor.tenantId);
    return whereVisible(q, actor.principal, DEVICE_CATEGORY_OBJECT, 'device_categories.id');
  }

  async toEntities(tenantId: string, rows: readonly DeviceCategoriesTable[], db: Executor = this.store.db): Promise<DeviceCategory[]> {
    const tags = await readObjectTags(db, tenantId, DEVICE_CATEGORY_OBJECT, rows.map((r) => r.id));
    return rows.map((r) => toCategory(r, tags.get(r.id) ?? []));
  }

  /**
   * `lock` (PostgreSQL; SQLite has one writer): 'update' while renaming or deleting, 'share' while
   * assigning, so an assignment can't write a name that a concurrent rename or delete just replaced.
   */
  private async visibleRow(db: Executor, actor: Actor, id: string, lock?: 'update' | 'share'): Promise<DeviceCategoriesTable> {
    let q = db.selectFrom('device_categories').selectAll('device_categories').where('device_categories.tenant_id', '=', actor.tenantId).where('device_categories.id', '=', id);
    q = whereVisible(q, actor.principal, DEVICE_CATEGORY_OBJECT, 'device_categories.id');
    if (lock && this.store.dialect === 'postgres') q = lock === 'update' ? q.forUpdate() : q.forShare();
    const row = await q.executeTakeFirst();
    if (!row) throw notFound(`Device category '${id}' was not found.`);
    return row;
  }

  private async tagsOf(db: Executor, tenantId: string, id: string): Promise<string[]> {
    return ((await readObjectTags(db, tenantId, DEVICE_CATEGORY_OBJECT, [id])).get(id) ?? []).sort(compareTagIds);
  }

  async get(actor: Actor, id: string): Promise<DeviceCategory> {
    const row = await this.visibleRow(this.store.db, actor, id);
    return toCategory(row, await this.tagsOf(this.store.db, actor.tenantId, id));
  }

  private nameTaken(name: string) {
    return conflict(`A device category named '${name}' already exists (names are compared without case).`, 'displayName');
  }

  async create(actor: Actor, input: CategoryInput & { displayName: string }): Promise<DeviceCategory> {
    const displayName = checkName(input.displayName);
    const description = checkDescription(input.description) ?? null;
    const tags = tagsForNewObject(actor.principal, input.roleScopeTagIds);
    try {
      return await this.store.transaction(async (trx) => {
        await assertTagsExist(trx, actor.tenantId, tags);
        const now = this.clock.now().toISOString();
        const row: DeviceCategoriesTable = {
          id: crypto.randomUUID(),
          tenant_id: actor.tenantId,
          display_name: displayName,
          display_name_lower: categoryNameKey(displayName),
          description,
          created_at: now,
          updated_at: now,
        };
        await trx.insertInto('device_categories').values(row).execute();
        await writeObjectTags(trx, actor.tenantId, DEVICE_CATEGORY_OBJECT, row.id, tags);
        const category = toCategory(row, tags);
        await this.audit.record(trx, actor, {
          ...AUDIT,
          activity: 'Create device category',
          operation: 'Create',
          resourceId: row.id,
          resourceDisplayName: displayName,
          after: { ...category },
        });
        return category;
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw this.nameTaken(displayName);
      throw err;
    }
  }

  /** PATCH; a new name reaches every device in the category (and so their dynamic groups). */
  async update(actor: Actor, id: string, patch: CategoryInput): Promise<DeviceCategory> {
    const displayName = patch.displayName === undefined ? undefined : checkName(patch.displayName);
    const description = checkDescription(patch.description);
    const requested = patch.roleScopeTagIds === undefined ? undefined : tagsForNewObject(actor.principal, patch.roleScopeTagIds);
    try {
      return await this.store.transaction(async (trx) => {
        const row = await this.visibleRow(trx, actor, id, 'update');
        const beforeTags = await this.tagsOf(trx, actor.tenantId, id);
        let afterTags = beforeTags;
        if (requested) {
          await assertTagsExist(trx, actor.tenantId, requested);
          afterTags = mergeScopeTags(beforeTags, requested, actor.principal.scopeTagIds);
        }
        const updated: DeviceCategoriesTable = {
          ...row,
          display_name: displayName ?? row.display_name,
          display_name_lower: categoryNameKey(displayName ?? row.display_name),
          description: description === undefined ? row.description : description,
          updated_at: this.clock.now().toISOString(),
        };
        await trx
          .updateTable('device_categories')
          .set({ display_name: updated.display_name, display_name_lower: updated.display_name_lower, description: updated.description, updated_at: updated.updated_at })
          .where('tenant_id', '=', actor.tenantId)
          .where('id', '=', id)
          .execute();
        if (afterTags.join() !== beforeTags.join()) await writeObjectTags(trx, actor.tenantId, DEVICE_CATEGORY_OBJECT, id, afterTags);
        if (updated.display_name !== row.display_name) {
          for (const deviceId of await this.devicesIn(trx, actor.tenantId, id)) {
            await this.devices.setCategory(trx, actor.tenantId, deviceId, { id, displayName: updated.display_name }, { actor });
          }
        }
        const after = toCategory(updated, afterTags);
        await this.audit.record(trx, actor, {
          ...AUDIT,
          activity: 'Patch device category',
          operation: 'Patch',
          resourceId: id,
          resourceDisplayName: after.displayName,
          before: { ...toCategory(row, beforeTags) },
          after: { ...after },
        });
        return after;
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw this.nameTaken(displayName ?? '');
      throw err;
    }
  }

  /** Deletes the category; its devices show Unassigned (L1564), in the same transaction. */
  async delete(actor: Actor, id: string): Promise<void> {
    await this.store.transaction(async (trx) => {
      const row = await this.visibleRow(trx, actor, id, 'update');
      const tags = await this.tagsOf(trx, actor.tenantId, id);
      for (const deviceId of await this.devicesIn(trx, actor.tenantId, id)) {
        await this.devices.setCategory(trx, actor.tenantId, deviceId, noCategory(), { actor });
      }
      await trx.deleteFrom('device_categories').where('tenant_id', '=', actor.tenantId).where('id', '=', id).execute();
      await deleteObjectTags(trx, actor.tenantId, DEVICE_CATEGORY_OBJECT, id);
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Delete device category',
        operation: 'Delete',
        resourceId: id,
        resourceDisplayName: row.display_name,
        before: { ...toCategory(row, tags) },
      });
    });
  }

  private async devicesIn(trx: Trx, tenantId: string, categoryId: string): Promise<string[]> {
    const rows = await trx.selectFrom('managed_devices').select('id').where('tenant_id', '=', tenantId).where('device_category_id', '=', categoryId).orderBy('id').execute();
    return rows.map((r) => r.id);
  }

  // ---- a device's category (managedDevices/{id}/deviceCategory) ----

  /** The device, if the actor may see it (out of scope reads as absent). */
  private async visibleDevice(db: Executor, actor: Actor, deviceId: string) {
    const q = db
      .selectFrom('managed_devices')
      .select(['managed_devices.id', 'managed_devices.device_category_id'])
      .where('managed_devices.tenant_id', '=', actor.tenantId)
      .where('managed_devices.id', '=', deviceId);
    const row = await whereVisible(q, actor.principal, MANAGED_DEVICE_OBJECT, 'managed_devices.id').executeTakeFirst();
    if (!row) throw notFound(`Managed device '${deviceId}' was not found.`);
    return row;
  }

  /**
   * The device's category; a device without one reports the pseudo-category "Unassigned" (all-zero
   * id), as Intune reports its "Unknown" one. A category out of the caller's scope is still shown:
   * its name is on the device already.
   */
  async categoryOfDevice(actor: Actor, deviceId: string): Promise<DeviceCategory> {
    const device = await this.visibleDevice(this.store.db, actor, deviceId);
    if (!device.device_category_id) return unassignedCategory();
    const row = await this.store.db.selectFrom('device_categories').selectAll().where('tenant_id', '=', actor.tenantId).where('id', '=', device.device_category_id).executeTakeFirst();
    if (!row) return unassignedCategory();
    return toCategory(row, await this.tagsOf(this.store.db, actor.tenantId, row.id));
  }

  /** The category id a device's $ref points at, or undefined for none. */
  async categoryIdOfDevice(actor: Actor, deviceId: string): Promise<string | undefined> {
    return (await this.visibleDevice(this.store.db, actor, deviceId)).device_category_id ?? undefined;
  }

  /** PUT …/deviceCategory/$ref: both the device and the category must be in the caller's scope. */
  async assignByRef(actor: Actor, deviceId: string, odataId: string): Promise<ManagedDevice> {
    const path = odataId.split(/[?#]/)[0]!.replace(/\/+$/, '');
    const categoryId = idFromODataRef(path);
    if (!categoryId || !/deviceCategories(?:\/[^/]+|\([^)]*\))$/.test(path)) {
      throw badRequest("Invalid value for property '@odata.id': expected a reference such as https://graph.microsoft.com/beta/deviceManagement/deviceCategories/{id}.", '@odata.id');
    }
    return this.store.transaction(async (trx) => {
      await this.visibleDevice(trx, actor, deviceId);
      const category = await this.visibleRow(trx, actor, categoryId, 'share');
      return this.devices.setCategory(trx, actor.tenantId, deviceId, { id: category.id, displayName: category.display_name }, { actor });
    });
  }

  /** DELETE …/deviceCategory/$ref: the device shows Unassigned. */
  async unassign(actor: Actor, deviceId: string): Promise<ManagedDevice> {
    return this.store.transaction(async (trx) => {
      await this.visibleDevice(trx, actor, deviceId);
      return this.devices.setCategory(trx, actor.tenantId, deviceId, noCategory(), { actor });
    });
  }

  /**
   * For enrollment flows: the category the user picked (null: none), in the enrollment's
   * transaction. The category must exist in the tenant (400 naming deviceCategoryId otherwise).
   */
  async setDeviceCategoryAtEnrollment(trx: Trx, tenantId: string, deviceId: string, categoryId: string | null, opts: UpsertOptions = {}): Promise<ManagedDevice> {
    if (categoryId === null) return this.devices.setCategory(trx, tenantId, deviceId, noCategory(), opts);
    let q = trx.selectFrom('device_categories').select(['id', 'display_name']).where('tenant_id', '=', tenantId).where('id', '=', categoryId);
    if (this.store.dialect === 'postgres') q = q.forShare();
    const category = await q.executeTakeFirst();
    if (!category) throw invalidProperty('deviceCategoryId', `device category '${categoryId}' doesn't exist.`);
    return this.devices.setCategory(trx, tenantId, deviceId, { id: category.id, displayName: category.display_name }, opts);
  }
}
