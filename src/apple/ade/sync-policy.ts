import { DAY, HOUR, MINUTE } from '../../shared/time.js';
import type { DepTokensTable } from '../../store/schema.js';
import { DepApiError, type DepAccount, type DepDevice } from './dep-api.js';

/**
 * The rules for syncing an ADE token with Apple, as pure functions of the token's sync state and
 * the time (requirements 004-D §2.9, 004-E §3.2). The sync engine does the I/O.
 *
 * - Manual sync: at most once per 15 minutes from the last manual request, and not while a sync
 *   runs (a run older than 15 minutes has timed out and no longer blocks).
 * - Automatic delta sync every 12 hours by default (the iOS article; macOS and ASM say 24 hours).
 * - Full sync at most once per 7 days; a full sync wanted sooner fetches everything but only adds
 *   serials not yet here ("fullRestricted"). A failed delta makes the next sync a full one.
 * - Devices released in ABM/ASM are deleted 45 days after they were seen removed.
 */

export const MANUAL_SYNC_MIN_INTERVAL_MS = 15 * MINUTE;
export const SYNC_RUN_TIMEOUT_MS = 15 * MINUTE;
export const FULL_SYNC_MIN_INTERVAL_MS = 7 * DAY;
/** 12 h, from the iOS/iPadOS ADE article; the macOS and ASM articles say 24 h (configurable). */
export const DEFAULT_AUTO_SYNC_INTERVAL_MS = 12 * HOUR;
/** Faster than the manual limit makes no sense; slower than a day is longer than any article says. */
export const MIN_AUTO_SYNC_INTERVAL_MS = 15 * MINUTE;
export const MAX_AUTO_SYNC_INTERVAL_MS = 24 * HOUR;
export const RELEASED_DEVICE_RETENTION_MS = 45 * DAY;
/** Apple's documented default page size when /account advertises none. */
export const DEFAULT_DEP_PAGE_LIMIT = 100;
/** Pages stay around half a megabyte even where Apple allows 5,000. */
export const MAX_DEP_PAGE_LIMIT = 1000;

export type DepSyncStatus = 'none' | 'running' | 'succeeded' | 'failed';
/** 'fetch' while POST /server/devices is paging, 'sync' once deltas are read from /devices/sync. */
export type DepSyncPhase = 'fetch' | 'sync';

/** The sync columns of dep_tokens. Times are ISO strings (as stored) or Dates. */
export interface DepSyncState {
  cursor: string | null;
  syncPhase: DepSyncPhase;
  syncStatus: DepSyncStatus;
  /** Set when a delta sync failed (or a full one was asked for). */
  nextSyncFull: boolean;
  lastManualSyncAt: Date | string | null;
  lastSyncStartedAt: Date | string | null;
  /** When the last unrestricted full sync finished; restricted ones don't count. */
  lastFullSyncAt: Date | string | null;
}

type SyncColumns = Pick<DepTokensTable, 'cursor' | 'sync_phase' | 'sync_status' | 'next_sync_full' | 'last_manual_sync_at' | 'last_sync_started_at' | 'last_full_sync_at'>;

/** Reads the state from a dep_tokens row; unknown phase or status values read as the defaults. */
export function syncStateFromRow(row: SyncColumns): DepSyncState {
  const statuses: readonly string[] = ['none', 'running', 'succeeded', 'failed'];
  return {
    cursor: row.cursor || null,
    syncPhase: row.sync_phase === 'sync' ? 'sync' : 'fetch',
    syncStatus: statuses.includes(row.sync_status) ? (row.sync_status as DepSyncStatus) : 'none',
    nextSyncFull: row.next_sync_full !== 0,
    lastManualSyncAt: row.last_manual_sync_at,
    lastSyncStartedAt: row.last_sync_started_at,
    lastFullSyncAt: row.last_full_sync_at,
  };
}

/** Milliseconds since the epoch, or null for a missing or unreadable time. */
function ms(t: Date | string | null | undefined): number | null {
  if (t === null || t === undefined || t === '') return null;
  const v = t instanceof Date ? t.getTime() : Date.parse(t);
  return Number.isNaN(v) ? null : v;
}

/** Time since `t`; a time in the future (another node's clock ahead of ours) counts as now. */
function elapsed(t: number, now: Date): number {
  return Math.max(0, now.getTime() - t);
}

// ---- run timeout -------------------------------------------------------------------------

/** "All sync requests are given 15 minutes to finish": at exactly 15 minutes the run has timed out. */
export function isRunTimedOut(startedAt: Date | string | null, now: Date, timeoutMs = SYNC_RUN_TIMEOUT_MS): boolean {
  const s = ms(startedAt);
  if (s === null) return true;
  return elapsed(s, now) >= timeoutMs;
}

/** When a run started at `startedAt` must be over. */
export function runDeadline(startedAt: Date | string, timeoutMs = SYNC_RUN_TIMEOUT_MS): Date {
  const s = ms(startedAt);
  if (s === null) throw new RangeError('runDeadline needs a valid start time');
  return new Date(s + timeoutMs);
}

/** A sync is running when the state says so and it hasn't timed out. */
export function isSyncRunning(state: Pick<DepSyncState, 'syncStatus' | 'lastSyncStartedAt'>, now: Date): boolean {
  return state.syncStatus === 'running' && !isRunTimedOut(state.lastSyncStartedAt, now);
}

// ---- manual sync -------------------------------------------------------------------------

export type ManualSyncDecision =
  | { allowed: true }
  | {
      allowed: false;
      reason: 'syncRunning' | 'tooSoon';
      /** 1–900: for a 429's Retry-After. */
      retryAfterSeconds: number;
      retryAt: Date;
      message: string;
    };

/**
 * May an admin's syncWithAppleDeviceEnrollmentProgram start now? The 15-minute window runs from
 * the last manual request; a running sync refuses too until it ends or times out. When both
 * apply, the later of the two times is given.
 */
export function decideManualSync(state: Pick<DepSyncState, 'syncStatus' | 'lastSyncStartedAt' | 'lastManualSyncAt'>, now: Date): ManualSyncDecision {
  const waits: { reason: 'syncRunning' | 'tooSoon'; until: number }[] = [];
  const started = ms(state.lastSyncStartedAt);
  if (started !== null && isSyncRunning(state, now)) waits.push({ reason: 'syncRunning', until: now.getTime() + SYNC_RUN_TIMEOUT_MS - elapsed(started, now) });
  const manual = ms(state.lastManualSyncAt);
  if (manual !== null && elapsed(manual, now) < MANUAL_SYNC_MIN_INTERVAL_MS) {
    waits.push({ reason: 'tooSoon', until: now.getTime() + MANUAL_SYNC_MIN_INTERVAL_MS - elapsed(manual, now) });
  }
  if (waits.length === 0) return { allowed: true };

  // A running sync explains the refusal best; the wait is the longest of the two.
  const reason = waits.some((w) => w.reason === 'syncRunning') ? 'syncRunning' : 'tooSoon';
  const until = Math.max(...waits.map((w) => w.until));
  const retryAfterSeconds = Math.max(1, Math.ceil((until - now.getTime()) / 1000));
  const retryAt = new Date(now.getTime() + retryAfterSeconds * 1000);
  const wait = describeWait(retryAfterSeconds);
  const message =
    reason === 'syncRunning'
      ? `A sync with Apple is already running for this token (started ${new Date(started ?? now.getTime()).toISOString()}). Sync is available again when it finishes, at the latest in ${wait}.`
      : `Sync with Apple can be requested at most once every 15 minutes; the last request was at ${new Date(manual ?? now.getTime()).toISOString()}. Try again in ${wait}.`;
  return { allowed: false, reason, retryAfterSeconds, retryAt, message };
}

function describeWait(seconds: number): string {
  if (seconds < 60) return `${seconds} second${seconds === 1 ? '' : 's'}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? '' : 's'}`;
}

// ---- sync mode ---------------------------------------------------------------------------

export type DepSyncMode = 'full' | 'delta' | 'fullRestricted';
export type DepSyncModeReason =
  /** Never fully synced: fetch everything. */
  | 'firstSync'
  /** A fetch was cut short (timeout, crash): carry on from its cursor. */
  | 'resumeFetch'
  /** Apple refused the cursor (EXPIRED_CURSOR / INVALID_CURSOR). */
  | 'cursorReset'
  /** No cursor to sync from. */
  | 'cursorMissing'
  /** The last delta sync failed (next_sync_full). */
  | 'previousSyncFailed'
  /** Seven days since the last full sync: reconcile everything (deleted devices come back). */
  | 'periodic'
  /** Changes since the cursor. */
  | 'delta';

export interface DepSyncPlan {
  mode: DepSyncMode;
  reason: DepSyncModeReason;
  /** Apple's endpoint to start with: POST /server/devices ('fetch') or /devices/sync ('sync'). */
  endpoint: DepSyncPhase;
  /** The cursor to send first; undefined starts a fetch from the beginning. */
  cursor?: string;
  /** For fullRestricted: when an unrestricted full sync is allowed again. */
  fullSyncAllowedAt?: Date;
}

export interface DecideSyncModeOptions {
  /** Apple just refused the stored cursor with this code; the caller has cleared it. */
  cursorRejected?: 'EXPIRED_CURSOR' | 'INVALID_CURSOR' | 'CURSOR_REQUIRED';
}

/** When an unrestricted full sync is next allowed (null: now). */
export function fullSyncAllowedAt(lastFullSyncAt: Date | string | null, now: Date): Date | null {
  const last = ms(lastFullSyncAt);
  if (last === null || elapsed(last, now) >= FULL_SYNC_MIN_INTERVAL_MS) return null;
  return new Date(now.getTime() + FULL_SYNC_MIN_INTERVAL_MS - elapsed(last, now));
}

/**
 * Which sync to run. Order: resume a cut-short fetch; a first sync; a refused or missing cursor;
 * a failed delta; seven days since the last full sync; else a delta. Every full sync wanted
 * within seven days of the last one is restricted to adding new serials.
 */
export function decideSyncMode(state: DepSyncState, now: Date, opts: DecideSyncModeOptions = {}): DepSyncPlan {
  const cursor = opts.cursorRejected ? null : state.cursor || null;
  const neverFull = ms(state.lastFullSyncAt) === null;
  const allowedAt = fullSyncAllowedAt(state.lastFullSyncAt, now);
  const full = (reason: DepSyncModeReason, resumeCursor?: string): DepSyncPlan => {
    const plan: DepSyncPlan = allowedAt === null ? { mode: 'full', reason, endpoint: 'fetch' } : { mode: 'fullRestricted', reason, endpoint: 'fetch', fullSyncAllowedAt: allowedAt };
    if (resumeCursor) plan.cursor = resumeCursor;
    return plan;
  };

  if (state.syncPhase === 'fetch' && cursor) return full('resumeFetch', cursor);
  if (neverFull) return full('firstSync');
  if (opts.cursorRejected) return full('cursorReset');
  if (!cursor) return full('cursorMissing');
  if (state.nextSyncFull) return full('previousSyncFailed');
  if (allowedAt === null) return full('periodic');
  return { mode: 'delta', reason: 'delta', endpoint: 'sync', cursor };
}

// ---- automatic sync ----------------------------------------------------------------------

/** Checks an admin's automatic sync interval. */
export function validateAutoSyncInterval(intervalMs: number): void {
  if (!Number.isInteger(intervalMs) || intervalMs < MIN_AUTO_SYNC_INTERVAL_MS || intervalMs > MAX_AUTO_SYNC_INTERVAL_MS) {
    throw new RangeError(`The automatic sync interval must be between ${MIN_AUTO_SYNC_INTERVAL_MS / MINUTE} minutes and ${MAX_AUTO_SYNC_INTERVAL_MS / HOUR} hours`);
  }
}

/** When the next automatic delta sync is due: one interval after the last run. */
export function nextAutomaticSyncAt(lastRunAt: Date | string, intervalMs = DEFAULT_AUTO_SYNC_INTERVAL_MS): Date {
  validateAutoSyncInterval(intervalMs);
  const last = ms(lastRunAt);
  if (last === null) throw new RangeError('nextAutomaticSyncAt needs a valid time');
  return new Date(last + intervalMs);
}

/** Due at exactly one interval; never run means due now. */
export function isAutomaticSyncDue(lastRunAt: Date | string | null, now: Date, intervalMs = DEFAULT_AUTO_SYNC_INTERVAL_MS): boolean {
  if (ms(lastRunAt) === null) return true;
  return nextAutomaticSyncAt(lastRunAt as Date | string, intervalMs).getTime() <= now.getTime();
}

// ---- released devices --------------------------------------------------------------------

/** A device released in ABM/ASM shows as removed, and is deleted once 45 days have passed (at exactly 45 days). */
export function releasedDeviceDue(removedAt: Date | string | null, now: Date): boolean {
  const r = ms(removedAt);
  if (r === null) return false;
  return elapsed(r, now) >= RELEASED_DEVICE_RETENTION_MS;
}

/** The cut-off for a sweep: devices removed at or before it are due. */
export function releasedDeviceCutoff(now: Date): Date {
  return new Date(now.getTime() - RELEASED_DEVICE_RETENTION_MS);
}

// ---- sync records ------------------------------------------------------------------------

export type DepOpKind = 'added' | 'modified' | 'deleted';

/**
 * What a record means. Fetch records carry no op_type and are taken as added (fleet's reading,
 * so an initial fetch gets profiles assigned); an unknown op_type is taken as modified.
 */
export function depOpKind(device: Pick<DepDevice, 'op_type'>): DepOpKind {
  const t = (device.op_type ?? '').trim().toLowerCase();
  if (t === '' || t === 'added') return 'added';
  if (t === 'deleted') return 'deleted';
  return 'modified';
}

/** Whether an incoming record is at least as new as what we hold (records without op_date always apply). */
export function isOpNewer(existingOpDate: string | null | undefined, incomingOpDate: string | null | undefined): boolean {
  const incoming = ms(incomingOpDate);
  const existing = ms(existingOpDate);
  if (incoming === null || existing === null) return true;
  return incoming >= existing;
}

/**
 * Apple's sync can list a serial several times; the record with the latest op_date is the device's
 * state. Ties and undated records go to the later one in Apple's order. Output keeps the order in
 * which serials first appear.
 */
export function mergeSyncOps<T extends Pick<DepDevice, 'serial_number' | 'op_date'>>(devices: readonly T[]): T[] {
  const bySerial = new Map<string, T>();
  for (const d of devices) {
    const held = bySerial.get(d.serial_number);
    if (!held || isOpNewer(held.op_date, d.op_date)) bySerial.set(d.serial_number, d);
  }
  return [...bySerial.values()];
}

// ---- errors ------------------------------------------------------------------------------

export type DepErrorAction =
  /** Transient (429, 5xx, network, timeout, a session refused twice): try again later. */
  | 'retryLater'
  /** The organisation must act in ABM/ASM (terms, access, token): show it on the token; no retry loop. */
  | 'needsAdmin'
  /** Apple refused the cursor: clear it and fetch everything. */
  | 'resetCursor'
  /** The fetch has nothing more: carry on with /devices/sync and the same cursor. */
  | 'switchToSync'
  /** Our request or Apple's answer is wrong; retrying won't help until something changes. */
  | 'fatal';

const RESET_CURSOR_CODES = new Set(['EXPIRED_CURSOR', 'INVALID_CURSOR', 'CURSOR_REQUIRED']);

/** What the sync engine does about an error from the DEP client. */
export function classifyDepError(err: unknown): DepErrorAction {
  if (err instanceof DepApiError) {
    if (err.code === 'EXHAUSTED_CURSOR') return 'switchToSync';
    if (RESET_CURSOR_CODES.has(err.code)) return 'resetCursor';
    if (err.needsAdmin) return 'needsAdmin';
    if (err.status === 0 || err.status === 401 || err.status === 429 || err.status >= 500) return 'retryLater';
    return 'fatal';
  }
  // The run's own abort or timeout.
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) return 'retryLater';
  return 'fatal';
}

/** The text shown on the token for an error that needs an admin; undefined for other errors. */
export function adminActionMessage(err: unknown): string | undefined {
  if (!(err instanceof DepApiError) || !err.needsAdmin) return undefined;
  switch (err.code) {
    case 'T_C_NOT_SIGNED':
      return 'Apple: the organisation has not accepted the latest Apple Business Manager / Apple School Manager terms and conditions. An administrator must sign in and accept them.';
    case 'ACCESS_DENIED':
      return 'Apple: this server token has no access to the request (ACCESS_DENIED). Check the MDM server in Apple Business Manager / Apple School Manager.';
    case 'FORBIDDEN':
      return 'Apple refused this server token (FORBIDDEN), for example because the account that created it was removed. Download a new token and renew it.';
    case 'token_expired':
      return 'The Apple server token has expired. Download a new token from Apple Business Manager / Apple School Manager and renew it.';
    default:
      return `Apple rejected the server token (${err.code}); it may have been replaced by a newer download. Download a new token and renew it.`;
  }
}

/** The page size to ask for at `uri`: Apple's advertised maximum from /account, at most 1,000. */
export function depPageLimit(account: Pick<DepAccount, 'urls'> | null | undefined, uri: '/server/devices' | '/devices/sync'): number {
  const advertised = account?.urls?.find((u) => u.uri === uri)?.limit?.maximum;
  if (typeof advertised !== 'number' || !Number.isInteger(advertised) || advertised < 1) return DEFAULT_DEP_PAGE_LIMIT;
  return Math.min(advertised, MAX_DEP_PAGE_LIMIT);
}
