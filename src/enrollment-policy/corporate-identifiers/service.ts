import crypto from 'node:crypto';
import type { ExpressionBuilder } from 'kysely';
import type { AuditLog } from '../../audit/audit-log.js';
import type { Actor } from '../../auth/principal.js';
import type { DeviceChangeListener } from '../../devices/events.js';
import { badRequest, conflict, invalidProperty, notFound } from '../../graph/errors.js';
import type { Clock } from '../../shared/time.js';
import { isUniqueViolation, type Executor, type Store, type Trx } from '../../store/db.js';
import type { Database, ImportedDeviceIdentitiesTable, ManagedDevicesTable } from '../../store/schema.js';
import { CorporateCsvError, parseIdentifierCsv } from './csv.js';
import {
  deviceContext,
  deviceMatchKeys,
  identityPlatformOf,
  imeiCandidates,
  NEVER,
  parseDetails,
  parseIdentifier,
  supportedIdentityTypes,
  IDENTITY_TYPES,
  type DeviceIdentity,
  type EnrollmentState,
  type IdentifierContext,
  type IdentityPlatform,
  type IdentityType,
  type MatchKey,
} from './rules.js';

export const IMPORTED_DEVICE_IDENTITY_TYPE = 'microsoft.graph.importedDeviceIdentity';
export const IMPORTED_DEVICE_IDENTITY_RESULT_TYPE = 'microsoft.graph.importedDeviceIdentityResult';

export interface ImportedDeviceIdentity {
  id: string;
  importedDeviceIdentifier: string;
  importedDeviceIdentityType: IdentityType;
  lastModifiedDateTime: string;
  createdDateTime: string;
  lastContactedDateTime: string;
  description: string | null;
  enrollmentState: EnrollmentState;
  platform: IdentityPlatform;
}

export const toImportedDeviceIdentity = (r: ImportedDeviceIdentitiesTable): ImportedDeviceIdentity => ({
  id: r.id,
  importedDeviceIdentifier: r.identifier,
  importedDeviceIdentityType: r.identity_type as IdentityType,
  lastModifiedDateTime: r.updated_at,
  createdDateTime: r.created_at,
  lastContactedDateTime: r.last_contacted_at ?? NEVER,
  description: r.description,
  enrollmentState: r.enrollment_state as EnrollmentState,
  platform: r.platform as IdentityPlatform,
});

export interface IdentityInput {
  importedDeviceIdentifier: string;
  importedDeviceIdentityType: IdentityType;
  description?: string | null;
  platform?: IdentityPlatform;
}

export type ImportStatus = 'created' | 'overwritten' | 'unchanged' | 'duplicate' | 'failed';

/** One item of an import, checked on its own. */
interface ImportItem {
  type: IdentityType;
  /** As given, for results of items that fail. */
  written: string | null;
  identifier?: string | undefined;
  key?: string | undefined;
  description: string | null;
  /** Absent: left as it is on an existing identifier, 'unknown' (or the device's) on a new one. */
  platform?: IdentityPlatform | undefined;
  error?: string | undefined;
}

export interface ImportOutcome {
  status: ImportStatus;
  /** The stored identifier (after the import) when there is one. */
  identity: ImportedDeviceIdentity | null;
  /** Index of the earlier item with the same identifier. */
  duplicateOf: number | null;
  /** Details already stored for an identifier that was in Intune with different details. */
  existingDescription: string | null;
  error: string | null;
}

/** One row of a CSV upload's answer. */
export interface CsvRowResult {
  row: number;
  importedDeviceIdentifier: string | null;
  description: string | null;
  status: ImportStatus;
  id: string | null;
  duplicateOfRow: number | null;
  existingDescription: string | null;
  error: string | null;
}

const AUDIT = { resourceType: IMPORTED_DEVICE_IDENTITY_TYPE, category: 'Enrollment', componentName: 'Enrollment' } as const;
const CHUNK = 300;
const ATTEMPTS = 3;

const mapKey = (k: MatchKey) => `${k.type}\u0000${k.key}`;

function chunks<T>(items: readonly T[], size = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** A WHERE matching any of these (type, key) pairs. */
function anyKey(keys: readonly MatchKey[]) {
  return (eb: ExpressionBuilder<Database, 'imported_device_identities'>) =>
    eb.or(keys.map((k) => eb.and([eb('identity_type', '=', k.type), eb('identifier_key', '=', k.key)])));
}

const DEVICE_COLUMNS = [
  'id',
  'imei',
  'serial_number',
  'manufacturer',
  'model',
  'operating_system',
  'device_type',
  'device_enrollment_type',
  'os_version',
  'last_sync_date_time',
] as const;
type DeviceMatchRow = Pick<ManagedDevicesTable, (typeof DEVICE_COLUMNS)[number]>;

/** The keys a device row matches, limited to the identifier types its platform honours. */
function keysOfDevice(row: Omit<DeviceMatchRow, 'id' | 'last_sync_date_time'>): MatchKey[] {
  const types = supportedIdentityTypes(deviceContext(row));
  return deviceMatchKeys({ imei: row.imei, serialNumber: row.serial_number, manufacturer: row.manufacturer, model: row.model }, types);
}

/** The enrolled device (heard from last) for each wanted key, by indexed lookups of candidate values. */
async function devicesForKeys(db: Executor, tenantId: string, keys: readonly MatchKey[]): Promise<Map<string, DeviceMatchRow>> {
  const wanted = new Set(keys.map(mapKey));
  const imeis = [...new Set(keys.filter((k) => k.type === 'imei').flatMap((k) => imeiCandidates(k.key)))];
  const serials = [
    ...new Set(
      keys
        .filter((k) => k.type !== 'imei')
        .map((k) => (k.type === 'serialNumber' ? k.key : k.key.split(',')[2]!))
        .flatMap((s) => [s, s.toLowerCase()]),
    ),
  ];
  const rows: DeviceMatchRow[] = [];
  for (const part of chunks(imeis)) {
    rows.push(...(await db.selectFrom('managed_devices').select(DEVICE_COLUMNS).where('tenant_id', '=', tenantId).where('imei', 'in', part).execute()));
  }
  for (const part of chunks(serials)) {
    rows.push(...(await db.selectFrom('managed_devices').select(DEVICE_COLUMNS).where('tenant_id', '=', tenantId).where('serial_number', 'in', part).execute()));
  }
  const out = new Map<string, DeviceMatchRow>();
  for (const row of rows) {
    for (const k of keysOfDevice(row)) {
      const mk = mapKey(k);
      if (!wanted.has(mk)) continue;
      const current = out.get(mk);
      if (!current || row.last_sync_date_time > current.last_sync_date_time) out.set(mk, row);
    }
  }
  return out;
}

/**
 * For the enrollment gate: is this device registered as corporate by an imported identifier? Only
 * identifier types the device's platform and method honour count (macOS: serial only; Windows:
 * manufacturer+model+serial only; see rules.ts supportedIdentityTypes).
 */
export async function matchesCorporateIdentifier(db: Executor, tenantId: string, device: DeviceIdentity & IdentifierContext): Promise<boolean> {
  const keys = deviceMatchKeys(device, supportedIdentityTypes(device));
  if (keys.length === 0) return false;
  const hit = await db.selectFrom('imported_device_identities').select('id').where('tenant_id', '=', tenantId).where(anyKey(keys)).limit(1).executeTakeFirst();
  return hit !== undefined;
}

/**
 * Corporate device identifiers (Graph importedDeviceIdentities). An identifier is notContacted until
 * a device reporting it enrolls, then enrolled; unknown once that device is deleted or stops
 * reporting it. Identifiers decide ownership at enrollment only: adding or deleting one never
 * changes an enrolled device's ownership (L1007, L1024, L1089).
 */
export class CorporateIdentifierService {
  constructor(
    private readonly store: Store,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  base(actor: Actor) {
    return this.store.db.selectFrom('imported_device_identities').selectAll().where('tenant_id', '=', actor.tenantId);
  }

  async get(actor: Actor, id: string): Promise<ImportedDeviceIdentity> {
    const row = await this.base(actor).where('id', '=', id).executeTakeFirst();
    if (!row) throw notFound(`Imported device identity '${id}' was not found.`);
    return toImportedDeviceIdentity(row);
  }

  /** POST: one identifier; 409 when it is already imported. */
  async create(actor: Actor, input: IdentityInput): Promise<ImportedDeviceIdentity> {
    const parsed = parseIdentifier(input.importedDeviceIdentityType, input.importedDeviceIdentifier);
    if (!parsed.ok) throw invalidProperty('importedDeviceIdentifier', `${parsed.problem}.`);
    const details = parseDetails(input.description);
    if (!details.ok) throw invalidProperty('description', `${details.problem}.`);
    try {
      return await this.store.transaction(async (trx) => {
        const key = { type: input.importedDeviceIdentityType, key: parsed.key };
        const existing = await trx.selectFrom('imported_device_identities').select('identifier').where('tenant_id', '=', actor.tenantId).where(anyKey([key])).executeTakeFirst();
        if (existing) throw this.exists(input.importedDeviceIdentityType, existing.identifier);
        const [row] = await this.insert(trx, actor, [{ ...key, identifier: parsed.identifier, description: details.details, platform: input.platform }]);
        return toImportedDeviceIdentity(row!);
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw this.exists(input.importedDeviceIdentityType, parsed.identifier);
      throw err;
    }
  }

  private exists(type: IdentityType, identifier: string) {
    return conflict(`The ${type} identifier '${identifier}' is already imported; change its description instead, or import with overwriteImportedDeviceIdentities.`, 'importedDeviceIdentifier');
  }

  /** PATCH: description and platform; the identifier and its type can't change. */
  async update(
    actor: Actor,
    id: string,
    patch: { description?: string | null; platform?: IdentityPlatform; importedDeviceIdentifier?: string; importedDeviceIdentityType?: IdentityType },
  ): Promise<ImportedDeviceIdentity> {
    const details = patch.description === undefined ? undefined : parseDetails(patch.description);
    if (details && !details.ok) throw invalidProperty('description', `${details.problem}.`);
    return this.store.transaction(async (trx) => {
      const row = await trx.selectFrom('imported_device_identities').selectAll().where('tenant_id', '=', actor.tenantId).where('id', '=', id).executeTakeFirst();
      if (!row) throw notFound(`Imported device identity '${id}' was not found.`);
      if (patch.importedDeviceIdentityType !== undefined && patch.importedDeviceIdentityType !== row.identity_type) {
        throw badRequest("Property 'importedDeviceIdentityType' is read-only and can't be changed; delete the identifier and import it again.", 'importedDeviceIdentityType');
      }
      if (patch.importedDeviceIdentifier !== undefined) {
        const parsed = parseIdentifier(row.identity_type as IdentityType, patch.importedDeviceIdentifier);
        if (!parsed.ok || parsed.key !== row.identifier_key) {
          throw badRequest("Property 'importedDeviceIdentifier' is read-only and can't be changed; delete the identifier and import it again.", 'importedDeviceIdentifier');
        }
      }
      const updated: ImportedDeviceIdentitiesTable = {
        ...row,
        description: details ? (details as { details: string | null }).details : row.description,
        platform: patch.platform ?? row.platform,
        updated_at: this.clock.now().toISOString(),
      };
      await trx
        .updateTable('imported_device_identities')
        .set({ description: updated.description, platform: updated.platform, updated_at: updated.updated_at })
        .where('tenant_id', '=', actor.tenantId)
        .where('id', '=', id)
        .execute();
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Patch imported device identity',
        operation: 'Patch',
        resourceId: id,
        resourceDisplayName: row.identifier,
        before: { ...toImportedDeviceIdentity(row) },
        after: { ...toImportedDeviceIdentity(updated) },
      });
      return toImportedDeviceIdentity(updated);
    });
  }

  /** Deleting an identifier leaves the ownership of a device it matched alone (L1089). */
  async delete(actor: Actor, id: string): Promise<void> {
    await this.store.transaction(async (trx) => {
      const row = await trx.selectFrom('imported_device_identities').selectAll().where('tenant_id', '=', actor.tenantId).where('id', '=', id).executeTakeFirst();
      if (!row) throw notFound(`Imported device identity '${id}' was not found.`);
      await trx.deleteFrom('imported_device_identities').where('tenant_id', '=', actor.tenantId).where('id', '=', id).execute();
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Delete imported device identity',
        operation: 'Delete',
        resourceId: id,
        resourceDisplayName: row.identifier,
        before: { ...toImportedDeviceIdentity(row) },
      });
    });
  }

  /** searchExistingIdentities: the stored identifiers among those given (type optional: any type). */
  async searchExisting(actor: Actor, items: { importedDeviceIdentifier: string; importedDeviceIdentityType?: IdentityType | 'unknown' }[]): Promise<ImportedDeviceIdentity[]> {
    const keys: MatchKey[] = [];
    for (const item of items) {
      const types = item.importedDeviceIdentityType && item.importedDeviceIdentityType !== 'unknown' ? [item.importedDeviceIdentityType] : IDENTITY_TYPES;
      for (const type of types) {
        const parsed = parseIdentifier(type, item.importedDeviceIdentifier);
        if (parsed.ok) keys.push({ type, key: parsed.key });
      }
    }
    const found = new Map<string, ImportedDeviceIdentitiesTable>();
    for (const part of chunks(keys)) {
      for (const row of await this.base(actor).where(anyKey(part)).execute()) found.set(row.id, row);
    }
    return [...found.values()].sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.id < b.id ? -1 : 1)).map(toImportedDeviceIdentity);
  }

  /** importDeviceIdentityList: each item checked on its own; one result per item, in order. */
  async importList(actor: Actor, inputs: IdentityInput[], overwrite: boolean): Promise<ImportOutcome[]> {
    const items: ImportItem[] = inputs.map((input) => {
      const item: ImportItem = { type: input.importedDeviceIdentityType, written: input.importedDeviceIdentifier, description: null, platform: input.platform };
      const parsed = parseIdentifier(input.importedDeviceIdentityType, input.importedDeviceIdentifier);
      if (!parsed.ok) return { ...item, error: `${parsed.problem}.` };
      const details = parseDetails(input.description);
      if (!details.ok) return { ...item, identifier: parsed.identifier, error: `${details.problem}.` };
      return { ...item, identifier: parsed.identifier, key: parsed.key, description: details.details };
    });
    return this.importItems(actor, items, overwrite, (i) => `item ${i + 1}`);
  }

  /** The admin centre's CSV upload (OpenEnroll extension): one identifier type per file. */
  async importCsv(actor: Actor, text: string, type: IdentityType, overwrite: boolean): Promise<CsvRowResult[]> {
    let rows;
    try {
      rows = parseIdentifierCsv(text, type);
    } catch (err) {
      if (err instanceof CorporateCsvError) throw badRequest(err.message);
      throw err;
    }
    const items: ImportItem[] = rows.map((r) => ({
      type,
      written: r.written,
      identifier: r.identifier,
      key: r.key,
      description: r.details,
      error: r.error,
    }));
    const outcomes = await this.importItems(actor, items, overwrite, (i) => `row ${rows[i]!.row}`);
    return rows.map((r, i) => {
      const o = outcomes[i]!;
      return {
        row: r.row,
        importedDeviceIdentifier: o.identity?.importedDeviceIdentifier ?? r.identifier ?? r.written,
        description: r.details,
        status: o.status,
        id: o.identity?.id ?? null,
        duplicateOfRow: o.duplicateOf === null ? null : rows[o.duplicateOf]!.row,
        existingDescription: o.existingDescription,
        error: o.error,
      };
    });
  }

  /**
   * The import both entry points share. Duplicates within the request: the first wins, later ones
   * fail naming it ("only the first duplicate will be compared", L1069). An identifier already stored
   * with other details is reported as a duplicate and keeps its details unless `overwrite`
   * ("Review duplicate identifiers"). Everything is written in one transaction, redone if another
   * request stored one of the identifiers meanwhile.
   */
  private async importItems(actor: Actor, items: ImportItem[], overwrite: boolean, label: (index: number) => string): Promise<ImportOutcome[]> {
    const failed = (error: string, duplicateOf: number | null = null): ImportOutcome => ({ status: 'failed', identity: null, duplicateOf, existingDescription: null, error });
    const outcomes: (ImportOutcome | undefined)[] = items.map((it) => (it.error ? failed(it.error) : undefined));
    const firstOf = new Map<string, number>();
    items.forEach((it, i) => {
      if (it.error || it.key === undefined) return;
      const k = mapKey({ type: it.type, key: it.key });
      const first = firstOf.get(k);
      if (first === undefined) firstOf.set(k, i);
      else outcomes[i] = failed(`'${it.identifier}' is a duplicate of ${label(first)}; only the first is imported.`, first);
    });
    const pending = items.map((_, i) => i).filter((i) => outcomes[i] === undefined);

    for (let attempt = 1; ; attempt++) {
      try {
        const done = await this.store.transaction((trx) => this.writeItems(trx, actor, items, pending, overwrite));
        done.forEach((o, k) => (outcomes[pending[k]!] = o));
        return outcomes as ImportOutcome[];
      } catch (err) {
        if (!isUniqueViolation(err) || attempt >= ATTEMPTS) throw err;
      }
    }
  }

  private async writeItems(trx: Trx, actor: Actor, items: ImportItem[], pending: number[], overwrite: boolean): Promise<ImportOutcome[]> {
    const keys = pending.map((i) => ({ type: items[i]!.type, key: items[i]!.key! }));
    const existing = new Map<string, ImportedDeviceIdentitiesTable>();
    for (const part of chunks(keys)) {
      const rows = await trx.selectFrom('imported_device_identities').selectAll().where('tenant_id', '=', actor.tenantId).where(anyKey(part)).execute();
      for (const r of rows) existing.set(mapKey({ type: r.identity_type as IdentityType, key: r.identifier_key }), r);
    }
    const now = this.clock.now().toISOString();
    const toInsert: NewIdentity[] = [];
    const result: ImportOutcome[] = [];
    const insertAt: number[] = [];
    for (const [k, i] of pending.entries()) {
      const item = items[i]!;
      const row = existing.get(mapKey(keys[k]!));
      if (!row) {
        insertAt.push(k);
        toInsert.push({ type: item.type, key: item.key!, identifier: item.identifier!, description: item.description, platform: item.platform });
        result.push({ status: 'created', identity: null, duplicateOf: null, existingDescription: null, error: null });
        continue;
      }
      const platformChanges = item.platform !== undefined && item.platform !== 'unknown' && item.platform !== row.platform;
      if (row.description === item.description && !platformChanges) {
        result.push({ status: 'unchanged', identity: toImportedDeviceIdentity(row), duplicateOf: null, existingDescription: null, error: null });
        continue;
      }
      if (!overwrite) {
        result.push({
          status: 'duplicate',
          identity: toImportedDeviceIdentity(row),
          duplicateOf: null,
          existingDescription: row.description,
          error: `'${row.identifier}' is already imported with other details; they were kept (import with overwrite to replace them).`,
        });
        continue;
      }
      const updated: ImportedDeviceIdentitiesTable = { ...row, description: item.description, platform: platformChanges ? item.platform! : row.platform, updated_at: now };
      await trx
        .updateTable('imported_device_identities')
        .set({ description: updated.description, platform: updated.platform, updated_at: now })
        .where('tenant_id', '=', actor.tenantId)
        .where('id', '=', row.id)
        .execute();
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Overwrite imported device identity',
        operation: 'Patch',
        resourceId: row.id,
        resourceDisplayName: row.identifier,
        before: { ...toImportedDeviceIdentity(row) },
        after: { ...toImportedDeviceIdentity(updated) },
      });
      result.push({ status: 'overwritten', identity: toImportedDeviceIdentity(updated), duplicateOf: null, existingDescription: row.description, error: null });
    }
    const inserted = await this.insert(trx, actor, toInsert);
    inserted.forEach((row, j) => (result[insertAt[j]!]!.identity = toImportedDeviceIdentity(row)));
    return result;
  }

  /** Inserts new identifiers, Enrolled at once when a device reporting them is already enrolled. */
  private async insert(trx: Trx, actor: Actor, items: NewIdentity[]): Promise<ImportedDeviceIdentitiesTable[]> {
    if (items.length === 0) return [];
    const now = this.clock.now().toISOString();
    const devices = await devicesForKeys(trx, actor.tenantId, items);
    const rows = items.map((it): ImportedDeviceIdentitiesTable => {
      const device = devices.get(mapKey(it));
      const devicePlatform = device ? identityPlatformOf(deviceContext(device)) : 'unknown';
      return {
        id: crypto.randomUUID(),
        tenant_id: actor.tenantId,
        identity_type: it.type,
        identifier: it.identifier,
        identifier_key: it.key,
        description: it.description,
        enrollment_state: device ? 'enrolled' : 'notContacted',
        platform: it.platform && it.platform !== 'unknown' ? it.platform : it.type === 'manufacturerModelSerial' && devicePlatform === 'unknown' ? 'windows' : devicePlatform,
        matched_device_id: device?.id ?? null,
        last_contacted_at: device?.last_sync_date_time ?? null,
        created_at: now,
        updated_at: now,
      };
    });
    // 12 columns: 40 rows stay well under SQLite's bound-parameter limit.
    for (const part of chunks(rows, 40)) await trx.insertInto('imported_device_identities').values(part).execute();
    for (const row of rows) {
      await this.audit.record(trx, actor, {
        ...AUDIT,
        activity: 'Create imported device identity',
        operation: 'Create',
        resourceId: row.id,
        resourceDisplayName: row.identifier,
        after: { ...toImportedDeviceIdentity(row) },
      });
    }
    return rows;
  }

  /**
   * Registered with the devices module, run in the device change's transaction: a device reporting
   * an identifier makes it Enrolled (and refreshes lastContactedDateTime at each check-in); an
   * identifier its device no longer reports, or whose device was deleted, becomes Unknown.
   */
  readonly deviceChangeListener: DeviceChangeListener = async (trx, { tenantId, before, after }) => {
    if (!after) {
      if (before) {
        await trx
          .updateTable('imported_device_identities')
          .set({ enrollment_state: 'unknown', matched_device_id: null })
          .where('tenant_id', '=', tenantId)
          .where('matched_device_id', '=', before.id)
          .execute();
      }
      return;
    }
    const keys = keysOfDevice(after);
    const identityChanged = !before || JSON.stringify(keysOfDevice(before)) !== JSON.stringify(keys);
    const contacted = !before || before.last_sync_date_time !== after.last_sync_date_time;
    if (!identityChanged && !contacted) return;
    if (before && identityChanged) {
      let q = trx
        .updateTable('imported_device_identities')
        .set({ enrollment_state: 'unknown', matched_device_id: null })
        .where('tenant_id', '=', tenantId)
        .where('matched_device_id', '=', after.id);
      if (keys.length > 0) q = q.where((eb) => eb.not(anyKey(keys)(eb)));
      await q.execute();
    }
    if (keys.length === 0) return;
    await trx
      .updateTable('imported_device_identities')
      .set({ enrollment_state: 'enrolled', matched_device_id: after.id, last_contacted_at: after.last_sync_date_time })
      .where('tenant_id', '=', tenantId)
      .where(anyKey(keys))
      .execute();
    if (identityChanged) {
      const platform = identityPlatformOf(deviceContext(after));
      if (platform !== 'unknown') {
        await trx
          .updateTable('imported_device_identities')
          .set({ platform })
          .where('tenant_id', '=', tenantId)
          .where('platform', '=', 'unknown')
          .where('matched_device_id', '=', after.id)
          .execute();
      }
    }
  };
}

interface NewIdentity extends MatchKey {
  identifier: string;
  description: string | null;
  platform?: IdentityPlatform | undefined;
}
