import crypto from 'node:crypto';
import { notFound } from '../../graph/errors.js';
import type { Trx } from '../../store/db.js';
import type { EnrollmentSessionsTable } from '../../store/schema.js';
import {
  ACTIONS,
  continueOrRestart,
  isExplicitAbandonment,
  SESSION_PLATFORMS,
  timeoutAt,
  type ActionName,
  type SessionPlatform,
  type UserAction,
} from './incomplete.js';

/*
 * Company Portal enrollment attempts for the incomplete user enrollments report. The user's
 * enrollment page (a later issue) calls these in its own transactions: start when the user signs
 * in to enroll, step on every screen, abandon on an explicit halt, complete when the device is
 * enrolled and compliant. Each call returns the attempt it belongs to, which changes when 30
 * minutes of inactivity ended the previous one.
 */

export interface StartInput {
  userId?: string | null;
  userPrincipalName?: string | null;
  platform: SessionPlatform;
  at: string | Date;
}

const iso = (at: string | Date, what: string): string => {
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) throw new TypeError(`${what}: at is not a date`);
  return d.toISOString();
};

function checkAction(actionName: string, platform: string): ActionName {
  const action = (ACTIONS as Record<string, (typeof ACTIONS)[ActionName]>)[actionName];
  if (!action) throw new TypeError(`unknown enrollment action '${actionName}'`);
  if (!(action.platforms as readonly string[]).includes(platform)) throw new TypeError(`enrollment action '${actionName}' doesn't exist on ${platform}`);
  return actionName as ActionName;
}

async function load(trx: Trx, tenantId: string, sessionId: string): Promise<EnrollmentSessionsTable> {
  const row = await trx.selectFrom('enrollment_sessions').selectAll().where('tenant_id', '=', tenantId).where('id', '=', sessionId).executeTakeFirst();
  if (!row) throw notFound(`Enrollment session '${sessionId}' was not found.`);
  return row;
}

async function end(trx: Trx, row: EnrollmentSessionsTable, set: Pick<EnrollmentSessionsTable, 'status' | 'ended_at' | 'end_action_name' | 'end_user_action'> & { device_id?: string | null }): Promise<void> {
  await trx.updateTable('enrollment_sessions').set(set).where('tenant_id', '=', row.tenant_id).where('id', '=', row.id).execute();
}

/** Closes an attempt that sat idle 30 minutes: incomplete where it stalled. */
const timeOut = (trx: Trx, row: EnrollmentSessionsTable) =>
  end(trx, row, { status: 'incomplete', ended_at: timeoutAt(row.last_activity_at), end_action_name: row.action_name, end_user_action: 'tookTooLong' });

async function insert(trx: Trx, tenantId: string, from: Pick<EnrollmentSessionsTable, 'user_id' | 'user_principal_name' | 'platform'>, actionName: ActionName, at: string): Promise<EnrollmentSessionsTable> {
  const row: EnrollmentSessionsTable = {
    id: crypto.randomUUID(),
    tenant_id: tenantId,
    user_id: from.user_id,
    user_principal_name: from.user_principal_name,
    platform: from.platform,
    started_at: at,
    last_activity_at: at,
    action_name: actionName,
    status: 'inProgress',
    ended_at: null,
    end_action_name: null,
    end_user_action: null,
    device_id: null,
  };
  await trx.insertInto('enrollment_sessions').values(row).execute();
  return row;
}

/** Activity on an attempt: the attempt itself, or a new one when it had ended or timed out. */
async function activity(trx: Trx, tenantId: string, sessionId: string, at: string, actionName?: ActionName): Promise<EnrollmentSessionsTable> {
  const row = await load(trx, tenantId, sessionId);
  const action = actionName ?? (row.action_name as ActionName);
  const { continues, timedOut } = continueOrRestart({ status: row.status as 'inProgress', lastActivityAt: row.last_activity_at, actionName: row.action_name as ActionName }, at);
  if (continues) {
    const last = at > row.last_activity_at ? at : row.last_activity_at;
    await trx.updateTable('enrollment_sessions').set({ last_activity_at: last, action_name: action }).where('tenant_id', '=', tenantId).where('id', '=', row.id).execute();
    return { ...row, last_activity_at: last, action_name: action };
  }
  if (timedOut) await timeOut(trx, row);
  return insert(trx, tenantId, row, action, at);
}

/**
 * A user starts enrolling (signs in on the enrollment page). Restarting while an earlier attempt
 * on the same platform is open ends that one as "returned to Set up access" (Postpone).
 */
export async function startEnrollmentSession(trx: Trx, tenantId: string, input: StartInput): Promise<{ sessionId: string }> {
  if (!(SESSION_PLATFORMS as readonly string[]).includes(input.platform)) throw new TypeError(`enrollment sessions are for ${SESSION_PLATFORMS.join(' and ')}`);
  const at = iso(input.at, 'startEnrollmentSession');
  if (input.userId) {
    const open = await trx
      .selectFrom('enrollment_sessions')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('user_id', '=', input.userId)
      .where('platform', '=', input.platform)
      .where('status', '=', 'inProgress')
      .execute();
    for (const row of open) {
      const { timedOut } = continueOrRestart({ status: 'inProgress', lastActivityAt: row.last_activity_at, actionName: row.action_name as ActionName }, at);
      if (timedOut) await timeOut(trx, row);
      else await end(trx, row, { status: 'incomplete', ended_at: at, end_action_name: 'PreEnrollmentWizard', end_user_action: 'postpone' });
    }
  }
  const row = await insert(trx, tenantId, { user_id: input.userId ?? null, user_principal_name: input.userPrincipalName ?? null, platform: input.platform }, 'PreEnrollmentWizard', at);
  return { sessionId: row.id };
}

/** The user reached a screen or flow (an action of the catalogue). */
export async function recordEnrollmentStep(trx: Trx, tenantId: string, sessionId: string, input: { actionName: string; at: string | Date }): Promise<{ sessionId: string }> {
  const at = iso(input.at, 'recordEnrollmentStep');
  const current = await load(trx, tenantId, sessionId);
  const row = await activity(trx, tenantId, sessionId, at, checkAction(input.actionName, current.platform));
  return { sessionId: row.id };
}

/**
 * The user halted enrollment: Cancel, Postpone, Ignore or Decline All on a screen that offers it,
 * or closed Company Portal. An attempt already idle for 30 minutes ended by timing out first.
 */
export async function abandonEnrollmentSession(
  trx: Trx,
  tenantId: string,
  sessionId: string,
  input: { userAction: UserAction; actionName?: string; at: string | Date },
): Promise<{ sessionId: string }> {
  const at = iso(input.at, 'abandonEnrollmentSession');
  const current = await load(trx, tenantId, sessionId);
  const actionName = checkAction(input.actionName ?? current.action_name, current.platform);
  if (!isExplicitAbandonment(actionName, input.userAction)) throw new TypeError(`'${input.userAction}' isn't an abandonment of ${actionName}`);
  const row = await activity(trx, tenantId, sessionId, at, actionName);
  await end(trx, row, { status: 'incomplete', ended_at: at, end_action_name: actionName, end_user_action: input.userAction });
  return { sessionId: row.id };
}

/** The device finished enrolling and shows as compliant: the attempt is complete. */
export async function completeEnrollmentSession(trx: Trx, tenantId: string, sessionId: string, input: { at: string | Date; deviceId?: string | null }): Promise<{ sessionId: string }> {
  const at = iso(input.at, 'completeEnrollmentSession');
  const row = await activity(trx, tenantId, sessionId, at);
  await end(trx, row, { status: 'completed', ended_at: at, end_action_name: null, end_user_action: null, device_id: input.deviceId ?? null });
  return { sessionId: row.id };
}
