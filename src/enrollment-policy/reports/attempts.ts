import crypto from 'node:crypto';
import type { Executor, Trx } from '../../store/db.js';
import type { EnrollmentAttemptsTable } from '../../store/schema.js';
import type { AppliedPolicy, EnrollmentReasonCode } from '../evaluation/types.js';
import { failureCategory, reasonText } from './catalogue.js';

/** One enrollment decision, as the enrollment gate reports it. */
export interface EnrollmentAttemptInput {
  outcome: 'succeeded' | 'failed';
  reason?: EnrollmentReasonCode | undefined;
  /** The catalogue's explanation, or the decision's detail. */
  message?: string | undefined;
  /** The platform as the device reported it (e.g. iOS, Windows). */
  osPlatform: string;
  osVersion?: string | null | undefined;
  userId?: string | null | undefined;
  userPrincipalName?: string | null | undefined;
  /** The EnrollmentMethod (appleCompanyPortal, windowsAutopilot, …). */
  method: string;
  /** Shown to the user for support ("Get Support: activity ID"). */
  activityId: string;
  /** The enrolled device; required for a success to get its first-enrollment snapshot. */
  deviceId?: string | null | undefined;
  applied: readonly AppliedPolicy[];
  at: string | Date;
}

export interface RecordedAttempt {
  attemptId: string;
  /** True when this success was the device's first enrollment and its applied policies were kept. */
  snapshotWritten: boolean;
}

const clip = (v: string | null | undefined, max: number): string | null => (v === null || v === undefined ? null : v.length > max ? v.slice(0, max) : v);

function required(name: string, v: unknown, max: number): string {
  if (typeof v !== 'string' || v.trim() === '') throw new TypeError(`recordEnrollmentAttempt: ${name} is required`);
  return v.slice(0, max);
}

/**
 * Records an enrollment attempt in the caller's transaction: every failure becomes a row of the
 * failures report; a success keeps its applied policies, and the first success of a device is its
 * "policies at first enrollment" snapshot (later enrollments of the same device never replace it).
 */
export async function recordEnrollmentAttempt(trx: Trx, tenantId: string, input: EnrollmentAttemptInput): Promise<RecordedAttempt> {
  if (input.outcome !== 'succeeded' && input.outcome !== 'failed') throw new TypeError('recordEnrollmentAttempt: outcome must be succeeded or failed');
  const at = new Date(input.at);
  if (Number.isNaN(at.getTime())) throw new TypeError('recordEnrollmentAttempt: at is not a date');
  const failed = input.outcome === 'failed';
  const reason = failed ? (input.reason ?? null) : null;
  const row: EnrollmentAttemptsTable = {
    id: crypto.randomUUID(),
    tenant_id: tenantId,
    occurred_at: at.toISOString(),
    outcome: input.outcome,
    reason,
    failure_category: failed ? failureCategory(reason) : null,
    message: failed ? clip(input.message ?? reasonText(reason).title, 4000) : null,
    os_platform: required('osPlatform', input.osPlatform, 64),
    os_version: clip(input.osVersion, 64),
    user_id: clip(input.userId, 200),
    user_principal_name: clip(input.userPrincipalName, 256),
    method: required('method', input.method, 64),
    activity_id: required('activityId', input.activityId, 200),
    device_id: clip(input.deviceId, 200),
    applied: JSON.stringify(input.applied ?? []),
  };
  await trx.insertInto('enrollment_attempts').values(row).execute();
  let snapshotWritten = false;
  if (!failed && row.device_id) {
    const res = await trx
      .insertInto('enrollment_device_snapshots')
      .values({
        tenant_id: tenantId,
        device_id: row.device_id,
        attempt_id: row.id,
        user_principal_name: row.user_principal_name,
        enrolled_at: row.occurred_at,
        applied: row.applied,
      })
      .onConflict((oc) => oc.columns(['tenant_id', 'device_id']).doNothing())
      .executeTakeFirst();
    snapshotWritten = Number(res.numInsertedOrUpdatedRows ?? 0) > 0;
  }
  return { attemptId: row.id, snapshotWritten };
}

/** A deleted device's first-enrollment snapshot goes with it (a new enrollment is a new device). */
export async function forgetDevice(db: Executor, tenantId: string, deviceId: string): Promise<void> {
  await db.deleteFrom('enrollment_device_snapshots').where('tenant_id', '=', tenantId).where('device_id', '=', deviceId).execute();
}
