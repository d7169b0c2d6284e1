import type { DepDevice } from '../dep-api.js';
import { platformOfAppleDevice } from '../admin/model.js';
import { depOpKind, isOpNewer, type DepSyncMode } from '../sync-policy.js';

/**
 * Pure: what one record from Apple (a fetch or sync page) does to our dep_devices row. The engine
 * reads the rows of a page's serials, asks `planRecord` for each, and writes the results in bulk.
 */

/** The dep_devices columns that mirror Apple's record. */
export interface AppleColumns {
  model: string | null;
  description: string | null;
  color: string | null;
  asset_tag: string | null;
  device_family: string | null;
  os: string | null;
  platform: string;
  apple_profile_status: string | null;
  apple_profile_uuid: string | null;
  apple_profile_assign_time: string | null;
  apple_profile_push_time: string | null;
  device_assigned_by: string | null;
  device_assigned_date: string | null;
}

export const APPLE_COLUMNS: readonly (keyof AppleColumns)[] = [
  'model',
  'description',
  'color',
  'asset_tag',
  'device_family',
  'os',
  'platform',
  'apple_profile_status',
  'apple_profile_uuid',
  'apple_profile_assign_time',
  'apple_profile_push_time',
  'device_assigned_by',
  'device_assigned_date',
];

/** What the engine reads of an existing row to plan a record. */
export interface ExistingDevice extends AppleColumns {
  token_id: string;
  serial_number: string;
  last_op_date: string | null;
  seen_at_apple: number;
  removed_from_apple_at: string | null;
  deleted_at: string | null;
  requested_profile_id: string | null;
  fetch_id: string | null;
}

const text = (v: string | undefined): string | null => (v === undefined || v === '' ? null : v);

/** Apple's times ("2024-05-01T10:00:00Z") as our ISO text with milliseconds; unreadable ones as given. */
export function appleTime(v: string | undefined): string | null {
  if (!v) return null;
  const t = Date.parse(v);
  return Number.isNaN(t) ? v : new Date(t).toISOString();
}

export function appleColumns(d: DepDevice): AppleColumns {
  return {
    model: text(d.model),
    description: text(d.description),
    color: text(d.color),
    asset_tag: text(d.asset_tag),
    device_family: text(d.device_family),
    os: text(d.os),
    platform: platformOfAppleDevice(d.device_family, d.os),
    apple_profile_status: text(d.profile_status),
    apple_profile_uuid: text(d.profile_uuid),
    apple_profile_assign_time: appleTime(d.profile_assign_time),
    apple_profile_push_time: appleTime(d.profile_push_time),
    device_assigned_by: text(d.device_assigned_by),
    device_assigned_date: appleTime(d.device_assigned_date),
  };
}

/**
 * `description` is the admin's (importedAppleDeviceIdentity.description, editable): Apple's only
 * fills it while empty, so it isn't compared.
 */
export const ADMIN_OWNED_COLUMNS: readonly (keyof AppleColumns)[] = ['description'];

export function sameAppleColumns(row: AppleColumns, next: AppleColumns): boolean {
  return APPLE_COLUMNS.every((k) => ADMIN_OWNED_COLUMNS.includes(k) || (row[k] ?? null) === next[k]);
}

/** When Apple removed the device: its op_date, unless unreadable or ahead of our clock. */
export function removedAt(opDate: string | undefined, now: Date): string {
  const t = opDate ? Date.parse(opDate) : NaN;
  return Number.isNaN(t) || t > now.getTime() ? now.toISOString() : new Date(t).toISOString();
}

export interface RecordContext {
  tokenId: string;
  /** 'fetch' pages list devices; 'sync' pages carry ops. */
  phase: 'fetch' | 'sync';
  /** For fetch pages: an unrestricted full sync may change existing rows; a restricted one only adds. */
  mode: DepSyncMode;
  now: Date;
}

export type RecordPlan =
  /** Nothing to write (stale op, unchanged, a deletion of a device we don't hold). */
  | { action: 'skip' }
  /** Only bookkeeping: the fetch listed the device (seen_at_apple, fetch_id). */
  | { action: 'seen' }
  /** A serial new here. */
  | { action: 'insert'; columns: AppleColumns; opType: string | null; opDate: string | null }
  /** Apple's view of a device we hold changed, or it came back. */
  | {
      action: 'update';
      columns: AppleColumns;
      opType: string | null;
      opDate: string | null;
      /** Deleted here by an admin and still (or again) assigned at Apple: it returns. */
      undelete: boolean;
      /** Worth offering to the default-profile assigner. */
      offerDefault: boolean;
    }
  /** Apple no longer has it on our server: "Removed from ABM/ASM". */
  | { action: 'remove'; at: string; opDate: string | null };

/**
 * What a record does:
 * - fetch, restricted (a full sync within 7 days of the last): only new serials are added;
 * - fetch, unrestricted: every listed device is refreshed, revived and undeleted;
 * - sync: `deleted` marks the device removed, others refresh it; an op older than what we hold
 *   is ignored. An `added` op newer than an admin's delete brings the device back (it was assigned
 *   again at Apple); a `modified` one doesn't (that waits for the full sync).
 * A device held under another of the tenant's tokens moves to this one (Apple moved it between
 * MDM servers) except on a restricted fetch.
 */
export function planRecord(d: DepDevice, existing: ExistingDevice | undefined, c: RecordContext): RecordPlan {
  const kind = c.phase === 'fetch' ? 'added' : depOpKind(d);
  const opType = c.phase === 'sync' ? (d.op_type ?? null) : null;
  const opDate = c.phase === 'sync' ? appleTime(d.op_date) : null;
  const ours = existing?.token_id === c.tokenId;
  if (kind === 'deleted') {
    if (!existing || !ours || !isOpNewer(existing.last_op_date, opDate)) return { action: 'skip' };
    return { action: 'remove', at: removedAt(d.op_date, c.now), opDate };
  }
  const columns = appleColumns(d);
  if (!existing) return { action: 'insert', columns, opType, opDate };
  if (c.phase === 'fetch' && c.mode === 'fullRestricted') return ours ? { action: 'seen' } : { action: 'skip' };
  if (c.phase === 'sync' && ours && !isOpNewer(existing.last_op_date, opDate)) return { action: 'skip' };

  const undelete =
    existing.deleted_at !== null &&
    (c.phase === 'fetch' || (kind === 'added' && opDate !== null && !Number.isNaN(Date.parse(opDate)) && opDate > existing.deleted_at));
  const revived = existing.removed_from_apple_at !== null;
  const profileChanged = existing.apple_profile_uuid !== columns.apple_profile_uuid || existing.apple_profile_status !== columns.apple_profile_status;
  const changed = !sameAppleColumns(existing, columns) || !ours || revived || undelete || (opType !== null && opDate !== existing.last_op_date);
  if (!changed) return existing.seen_at_apple === 1 && c.phase === 'sync' ? { action: 'skip' } : { action: 'seen' };
  // A device that moves token loses its profile choice (profiles belong to a token).
  const noChoice = existing.requested_profile_id === null || !ours;
  return { action: 'update', columns, opType, opDate, undelete, offerDefault: noChoice && (revived || undelete || !ours || profileChanged) };
}
