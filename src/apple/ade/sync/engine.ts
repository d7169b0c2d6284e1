import crypto from 'node:crypto';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { AuditLog } from '../../../audit/audit-log.js';
import { systemActor } from '../../../auth/principal.js';
import { JobTimeoutError, LeaseLostError, ShutdownError, type JobContext, type JobOutcome } from '../../../jobs/scheduler.js';
import type { Clock } from '../../../shared/time.js';
import type { Executor, Store, Trx } from '../../../store/db.js';
import type { DepDevicesTable, DepTokensTable } from '../../../store/schema.js';
import { DEP_TOKEN_TYPE } from '../admin/model.js';
import { AUDIT_AREA } from '../admin/token-access.js';
import type { AdeAssigner, DepApiFactory } from '../contracts.js';
import { DepApiError, type DepApi, type DepDevice, type DepDevicePage } from '../dep-api.js';
import { DEFAULT_DEP_RETRY_POLICY } from '../dep-client.js';
import {
  MAX_DEP_PAGE_LIMIT,
  SYNC_RUN_TIMEOUT_MS,
  adminActionMessage,
  classifyDepError,
  decideSyncMode,
  depPageLimit,
  mergeSyncOps,
  releasedDeviceCutoff,
  releasedDeviceDue,
  syncStateFromRow,
  type DecideSyncModeOptions,
  type DepSyncMode,
  type DepSyncModeReason,
  type DepSyncPhase,
} from '../sync-policy.js';
import { ADMIN_OWNED_COLUMNS, APPLE_COLUMNS, planRecord, type AppleColumns, type ExistingDevice, type RecordContext } from './device-records.js';

/**
 * The ADE sync engine: the I/O around sync-policy.ts. One run of the 'apple.ade.sync' job syncs
 * one token:
 *
 * - It pages through POST /server/devices (a full sync) and then POST /devices/sync (changes since),
 *   or only the latter (a delta). Each page is one transaction that writes the page's devices AND
 *   the cursor and phase, fenced on the job's lease, so a run cut short (crash, timeout, lost lease)
 *   leaves a consistent store and the next run carries on from the saved cursor.
 * - A full fetch stamps each device it lists with the fetch's id; when an unrestricted one
 *   completes, devices it didn't list are "Removed from ABM/ASM". The id survives restarts.
 * - Refusals an admin must fix (terms not signed, token rejected) are shown on the token and end
 *   the run without a retry loop; transient ones are recorded and retried by the job's backoff.
 * - Devices removed 45 days ago are deleted at the end of each sync and by a daily job per tenant.
 */

export const ADE_SYNC_JOB = 'apple.ade.sync';
export const ADE_CLEANUP_JOB = 'apple.ade.cleanup';
export const adeSyncJobKey = (tokenId: string) => `ade-sync:${tokenId}`;
export const ADE_CLEANUP_JOB_KEY = 'ade-cleanup';

export type AdeSyncTrigger = 'upload' | 'manual' | 'periodic';
export interface AdeSyncPayload {
  tenantId: string;
  tokenId: string;
  trigger: AdeSyncTrigger;
}

/** Rows written per INSERT: ~25 parameters a row stays far below both dialects' limits. */
const WRITE_CHUNK = 500;
/** Serials handed to the assigner at once when catching up. */
const CATCH_UP_BATCH = 1000;
/** Released devices deleted per transaction. */
const CLEANUP_BATCH = 500;
/** Profile and assignment columns that belong to a token: a device moving token loses them. */
const TOKEN_BOUND_COLUMNS = [
  'requested_profile_id',
  'requested_profile_assigned_at',
  'assigned_profile_id',
  'assigned_profile_revision',
  'assignment_result',
  'assignment_result_at',
] as const;

export interface AdeSyncEngineDeps {
  store: Store;
  clock: Clock;
  logger: Logger;
  audit: AuditLog;
  depApiFor: DepApiFactory;
  assigner: AdeAssigner;
  /** Shown in the timeout message; the job kind's timeoutMs enforces it. */
  runTimeoutMs?: number;
}

/** What a run did, for the log. */
export interface AdeSyncReport {
  tenantId: string;
  tokenId: string;
  trigger: AdeSyncTrigger;
  mode: DepSyncMode;
  reason: DepSyncModeReason;
  pages: number;
  records: number;
  inserted: number;
  updated: number;
  removed: number;
  offeredForDefaultProfile: number;
  fetchCompleted: boolean;
  ms: number;
}

export function parseSyncPayload(payload: unknown): AdeSyncPayload {
  const p = payload as Partial<AdeSyncPayload> | null;
  if (!p || typeof p.tenantId !== 'string' || typeof p.tokenId !== 'string') throw new TypeError('apple.ade.sync payload needs tenantId and tokenId');
  const trigger = p.trigger === 'upload' || p.trigger === 'manual' ? p.trigger : 'periodic';
  return { tenantId: p.tenantId, tokenId: p.tokenId, trigger };
}

export class AdeSyncEngine {
  constructor(private readonly deps: AdeSyncEngineDeps) {}

  /** The 'apple.ade.sync' job handler. */
  async runJob(payload: unknown, ctx: JobContext): Promise<JobOutcome> {
    const p = parseSyncPayload(payload);
    const { store, clock, logger } = this.deps;
    const token = await loadToken(store.db, p.tenantId, p.tokenId);
    // Deleting a token cancels its job; a run that raced the delete has nothing left to do.
    if (!token?.oauth_secret_id) {
      logger.info({ tenantId: p.tenantId, tokenId: p.tokenId }, 'ADE sync skipped: token gone or not uploaded');
      return;
    }
    const startedAt = clock.now();
    const trigger = effectiveTrigger(p.trigger, token, ctx.job.attempts);
    await store.transaction(async (trx) => {
      await ctx.assertLease(trx);
      await trx
        .updateTable('dep_tokens')
        .set({
          sync_status: 'running',
          last_sync_started_at: startedAt.toISOString(),
          // The schedule asked for this run: it is the last requested sync.
          ...(trigger === 'periodic' && ctx.job.attempts === 1 ? { last_sync_triggered_at: startedAt.toISOString() } : {}),
        })
        .where('tenant_id', '=', p.tenantId)
        .where('id', '=', p.tokenId)
        .execute();
    });

    const run = new SyncRun(this.deps, ctx, token, trigger, startedAt);
    try {
      await run.execute();
    } catch (err) {
      return this.afterFailure(ctx, run, err);
    }
    logger.info(run.report(), 'ADE sync finished');
    try {
      await this.cleanupReleased(p.tenantId, { tokenId: p.tokenId, assertLease: (db) => ctx.assertLease(db) });
    } catch (err) {
      // The daily cleanup job catches up; the sync itself succeeded.
      if (err instanceof LeaseLostError) throw err;
      logger.warn({ tenantId: p.tenantId, tokenId: p.tokenId, err: errorText(err) }, 'released ADE devices could not be cleaned up after sync');
    }
  }

  /**
   * Records a failed run on the token and decides what the job does next: a refusal an admin must
   * fix ends the run (the periodic schedule goes on, no retry loop); a long Retry-After reschedules
   * at that time; anything else is thrown so the scheduler retries with backoff.
   */
  private async afterFailure(ctx: JobContext, run: SyncRun, err: unknown): Promise<JobOutcome> {
    const reason: unknown = ctx.signal.aborted ? ctx.signal.reason : undefined;
    // Fenced out, or the node stops: not a failure of the sync, and nothing may be written.
    if (err instanceof LeaseLostError) throw err;
    if (reason instanceof LeaseLostError || reason instanceof ShutdownError) throw reason;
    const timedOut = reason instanceof JobTimeoutError;
    const action = timedOut ? 'retryLater' : classifyDepError(err);
    const limit = this.deps.runTimeoutMs ?? SYNC_RUN_TIMEOUT_MS;
    const within = limit >= 60_000 ? plural(Math.round(limit / 60_000), 'minute') : plural(Math.ceil(limit / 1000), 'second');
    const message = timedOut ? `The sync with Apple did not finish within ${within}.` : errorText(err);
    const adminMessage = adminActionMessage(err);
    const code = err instanceof DepApiError ? err.code : undefined;
    await run.recordFailure({
      message,
      errorCode: err instanceof DepApiError ? err.status : 0,
      // The code stays machine-readable next to the text (the token status reads it).
      appleStatus: adminMessage ? (code && !adminMessage.includes(code) ? `${adminMessage} (${code})` : adminMessage) : null,
    });
    this.deps.logger.warn({ ...run.report(), action, err: message }, 'ADE sync failed');
    if (action === 'needsAdmin') return;
    if (timedOut) throw reason;
    if (action === 'retryLater' && err instanceof DepApiError && err.retryAfterSeconds !== undefined && err.retryAfterSeconds * 1000 > DEFAULT_DEP_RETRY_POLICY.maxDelayMs) {
      // The client doesn't sleep that long inside a run; Apple's time is honoured by the schedule.
      return { rescheduleAt: new Date(this.deps.clock.now().getTime() + err.retryAfterSeconds * 1000) };
    }
    throw err;
  }

  /**
   * Deletes devices removed from ABM/ASM at least 45 days ago, one transaction per batch (with an
   * audit event naming them). Their managed device records, if enrolled, stay: releasing a device
   * in ABM doesn't unenroll it.
   */
  async cleanupReleased(tenantId: string, opts: { tokenId?: string; assertLease?: (db: Executor) => Promise<void>; requestId?: string } = {}): Promise<number> {
    const { store, clock, audit } = this.deps;
    const now = clock.now();
    const cutoff = releasedDeviceCutoff(now).toISOString();
    const actor = systemActor(tenantId, opts.requestId ?? `ade-cleanup-${crypto.randomUUID()}`);
    let total = 0;
    for (;;) {
      const deleted = await store.transaction(async (trx) => {
        await opts.assertLease?.(trx);
        let q = trx
          .selectFrom('dep_devices')
          .select(['id', 'token_id', 'serial_number', 'removed_from_apple_at'])
          .where('tenant_id', '=', tenantId)
          .where('removed_from_apple_at', 'is not', null)
          .where('removed_from_apple_at', '<=', cutoff);
        if (opts.tokenId) q = q.where('token_id', '=', opts.tokenId);
        const rows = await q.orderBy('removed_from_apple_at').orderBy('id').limit(CLEANUP_BATCH).execute();
        const due = rows.filter((r) => releasedDeviceDue(r.removed_from_apple_at, now));
        if (due.length === 0) return 0;
        await trx
          .deleteFrom('dep_devices')
          .where('tenant_id', '=', tenantId)
          .where(
            'id',
            'in',
            due.map((r) => r.id),
          )
          .execute();
        const byToken = new Map<string, string[]>();
        for (const r of due) byToken.set(r.token_id, [...(byToken.get(r.token_id) ?? []), r.serial_number]);
        for (const [tokenId, serials] of byToken) {
          await audit.record(trx, actor, {
            activity: 'Delete devices released from Apple Business Manager',
            operation: 'Delete',
            resourceType: DEP_TOKEN_TYPE,
            resourceId: tokenId,
            ...AUDIT_AREA,
            before: { releasedDeviceSerialNumbers: serials },
            after: { releasedDeviceSerialNumbers: null },
          });
        }
        return due.length;
      });
      total += deleted;
      if (deleted < CLEANUP_BATCH) break;
    }
    if (total > 0) this.deps.logger.info({ tenantId, tokenId: opts.tokenId, deleted: total }, 'deleted ADE devices released from ABM/ASM 45 days ago');
    return total;
  }
}

/** The request a run serves: a manual or upload request not yet served, else the schedule. */
function effectiveTrigger(requested: AdeSyncTrigger, token: DepTokensTable, attempt: number): AdeSyncTrigger {
  if (requested === 'periodic') return 'periodic';
  const asked = token.last_sync_triggered_at;
  const started = token.last_sync_started_at;
  // The job keeps the payload of its last enqueue; once served, later runs are the schedule's.
  if (asked && (!started || asked > started || attempt > 1)) return requested;
  return 'periodic';
}

async function loadToken(db: Executor, tenantId: string, tokenId: string): Promise<DepTokensTable | undefined> {
  return db.selectFrom('dep_tokens').selectAll().where('tenant_id', '=', tenantId).where('id', '=', tokenId).executeTakeFirst();
}

const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`;

function errorText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).slice(0, 2000);
}

/** The run's abort signal also cuts short a DEP call in flight (the factory's client doesn't see it). */
function abortable(api: DepApi, signal: AbortSignal): DepApi {
  const race = <T>(p: Promise<T>): Promise<T> => {
    if (signal.aborted) {
      p.catch(() => undefined);
      return Promise.reject(signal.reason as Error);
    }
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
      p.then(
        (v) => {
          signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        (e: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(e as Error);
        },
      );
    });
  };
  return {
    account: () => race(api.account()),
    fetchDevices: (cursor, limit) => race(api.fetchDevices(cursor, limit)),
    syncDevices: (cursor, limit) => race(api.syncDevices(cursor, limit)),
    deviceDetails: (serials) => race(api.deviceDetails(serials)),
    defineProfile: (profile) => race(api.defineProfile(profile)),
    getProfile: (uuid) => race(api.getProfile(uuid)),
    assignProfile: (uuid, serials) => race(api.assignProfile(uuid, serials)),
    removeProfile: (serials) => race(api.removeProfile(serials)),
    disownDevices: (serials) => race(api.disownDevices(serials)),
  };
}

interface PageResult {
  inserted: number;
  updated: number;
  removed: number;
  /** Serials without an admin's profile choice that are new here or changed at Apple. */
  offer: string[];
}

/** One run of one token's sync. */
class SyncRun {
  private readonly tenantId: string;
  private readonly tokenId: string;
  private mode: DepSyncMode = 'delta';
  private reason: DepSyncModeReason = 'delta';
  private insertedSinceAnalyze = 0;
  private analyzeThreshold = 2000;
  private readonly stats = { pages: 0, records: 0, inserted: 0, updated: 0, removed: 0, offered: 0, fetchCompleted: false };

  constructor(
    private readonly deps: AdeSyncEngineDeps,
    private readonly ctx: JobContext,
    private readonly token: DepTokensTable,
    private readonly trigger: AdeSyncTrigger,
    private readonly startedAt: Date,
  ) {
    this.tenantId = token.tenant_id;
    this.tokenId = token.id;
  }

  report(): AdeSyncReport {
    const s = this.stats;
    return {
      tenantId: this.tenantId,
      tokenId: this.tokenId,
      trigger: this.trigger,
      mode: this.mode,
      reason: this.reason,
      pages: s.pages,
      records: s.records,
      inserted: s.inserted,
      updated: s.updated,
      removed: s.removed,
      offeredForDefaultProfile: s.offered,
      fetchCompleted: s.fetchCompleted,
      ms: this.deps.clock.now().getTime() - this.startedAt.getTime(),
    };
  }

  async execute(): Promise<void> {
    const { store } = this.deps;
    const now = this.startedAt;
    let state = syncStateFromRow(this.token);
    let plan = decideSyncMode(state, now);
    this.mode = plan.mode;
    this.reason = plan.reason;
    let phase: DepSyncPhase = plan.endpoint;
    let cursor = plan.cursor;
    // A resumed fetch keeps its id, so devices listed before the restart still count as listed.
    let fetchId = phase === 'fetch' && cursor && this.token.fetch_id ? this.token.fetch_id : crypto.randomUUID();
    let cursorReset = false;

    const api = abortable(await this.deps.depApiFor(store.db, this.tenantId, this.tokenId), this.ctx.signal);
    const limits = await this.pageLimits(api);

    for (;;) {
      let page: DepDevicePage;
      try {
        page = phase === 'fetch' ? await api.fetchDevices(cursor, limits.fetch) : await api.syncDevices(cursor ?? '', limits.sync);
      } catch (err) {
        const action = classifyDepError(err);
        if (action === 'switchToSync' && phase === 'fetch' && cursor) {
          // The fetch behind this cursor already ended: carry on with its changes.
          phase = 'sync';
          await this.saveCursor(cursor, 'sync');
          continue;
        }
        if (action === 'resetCursor' && !cursorReset && err instanceof DepApiError) {
          // Once a run: a second refusal of a fresh cursor is Apple's problem, not ours to loop on.
          cursorReset = true;
          await this.saveCursor(null, 'fetch');
          state = { ...state, cursor: null, syncPhase: 'fetch' };
          plan = decideSyncMode(state, now, { cursorRejected: err.code as DecideSyncModeOptions['cursorRejected'] });
          this.mode = plan.mode;
          this.reason = plan.reason;
          phase = 'fetch';
          cursor = undefined;
          fetchId = crypto.randomUUID();
          continue;
        }
        throw err;
      }

      const completesFetch = phase === 'fetch' && !page.more_to_follow;
      const result = await store.transaction(async (trx) => {
        await this.ctx.assertLease(trx);
        const r = await this.applyPage(trx, page.devices, { phase, fetchId });
        if (completesFetch && this.mode === 'full') r.removed += await this.markUnlisted(trx, fetchId);
        const at = this.deps.clock.now().toISOString();
        await trx
          .updateTable('dep_tokens')
          .set({
            cursor: page.cursor,
            sync_phase: completesFetch ? 'sync' : phase,
            ...(phase === 'fetch' ? { fetch_id: fetchId } : {}),
            // Any completed full fetch satisfies "the next sync is full"; only an unrestricted one starts the 7 days.
            ...(completesFetch ? { next_sync_full: 0, ...(this.mode === 'full' ? { last_full_sync_at: at } : {}) } : {}),
          })
          .where('tenant_id', '=', this.tenantId)
          .where('id', '=', this.tokenId)
          .execute();
        return r;
      });
      this.stats.pages++;
      this.stats.records += page.devices.length;
      this.stats.inserted += result.inserted;
      this.stats.updated += result.updated;
      this.stats.removed += result.removed;
      if (completesFetch) this.stats.fetchCompleted = true;
      await this.refreshPlannerStatistics(result.inserted);
      if (result.offer.length > 0) await this.offerDefaultProfiles(result.offer, api);

      cursor = page.cursor;
      if (page.more_to_follow) continue;
      if (phase === 'fetch') {
        // Changes made at Apple while the fetch paged.
        phase = 'sync';
        continue;
      }
      break;
    }
    await this.catchUpDefaultProfiles(api);
    await this.finish();
  }

  /**
   * Devices stored by a page whose run died before the assigner saw them: no admin choice, never
   * assigned, and a default profile for their platform. The assigner skips those Apple already
   * holds the profile for, so this ends.
   */
  private async catchUpDefaultProfiles(api: DepApi): Promise<void> {
    const { db } = this.deps.store;
    const t = await db
      .selectFrom('dep_tokens')
      .select(['default_ios_profile_id', 'default_macos_profile_id'])
      .where('tenant_id', '=', this.tenantId)
      .where('id', '=', this.tokenId)
      .executeTakeFirst();
    const platforms = [...(t?.default_ios_profile_id ? ['ios'] : []), ...(t?.default_macos_profile_id ? ['macOS'] : [])];
    if (platforms.length === 0) return;
    let after = '';
    for (;;) {
      const rows = await db
        .selectFrom('dep_devices')
        .select('serial_number')
        .where('tenant_id', '=', this.tenantId)
        .where('token_id', '=', this.tokenId)
        .where('requested_profile_id', 'is', null)
        .where('assignment_result', 'is', null)
        .where('removed_from_apple_at', 'is', null)
        .where('deleted_at', 'is', null)
        .where('platform', 'in', platforms)
        .where('serial_number', '>', after)
        .orderBy('serial_number')
        .limit(CATCH_UP_BATCH)
        .execute();
      if (rows.length === 0) return;
      await this.offerDefaultProfiles(
        rows.map((r) => r.serial_number),
        api,
      );
      if (rows.length < CATCH_UP_BATCH) return;
      after = rows[rows.length - 1]!.serial_number;
    }
  }

  /**
   * PostgreSQL plans a page's lookups from table statistics; while a first sync grows dep_devices
   * from nothing to 100,000 rows, autovacuum's are too stale and the lookups scan the tenant's
   * rows. So a run that has doubled what it had inserted at the last refresh analyzes the table
   * (a sample; tens of milliseconds), as one does after a bulk load.
   */
  private async refreshPlannerStatistics(inserted: number): Promise<void> {
    if (this.deps.store.dialect !== 'postgres' || inserted === 0) return;
    this.insertedSinceAnalyze += inserted;
    if (this.insertedSinceAnalyze < this.analyzeThreshold) return;
    this.analyzeThreshold = Math.max(this.analyzeThreshold, this.insertedSinceAnalyze) * 2;
    this.insertedSinceAnalyze = 0;
    try {
      await sql`analyze dep_devices`.execute(this.deps.store.db);
    } catch (err) {
      // Only an optimisation (the role may not own the table).
      this.deps.logger.debug({ err: errorText(err) }, 'analyze dep_devices failed');
    }
  }

  /** Page sizes: Apple's advertised maximum (at most 1,000), read from /account once and kept on the token. */
  private async pageLimits(api: DepApi): Promise<{ fetch: number; sync: number }> {
    const clamp = (n: number) => Math.max(1, Math.min(MAX_DEP_PAGE_LIMIT, Math.floor(n)));
    const { fetch_limit, sync_limit } = this.token;
    if (fetch_limit && sync_limit) return { fetch: clamp(Number(fetch_limit)), sync: clamp(Number(sync_limit)) };
    const account = await api.account();
    const limits = { fetch: depPageLimit(account, '/server/devices'), sync: depPageLimit(account, '/devices/sync') };
    await this.deps.store.db
      .updateTable('dep_tokens')
      .set({ fetch_limit: limits.fetch, sync_limit: limits.sync })
      .where('tenant_id', '=', this.tenantId)
      .where('id', '=', this.tokenId)
      .execute();
    return limits;
  }

  private async saveCursor(cursor: string | null, phase: DepSyncPhase): Promise<void> {
    await this.deps.store.transaction(async (trx) => {
      await this.ctx.assertLease(trx);
      await trx
        .updateTable('dep_tokens')
        .set({ cursor, sync_phase: phase })
        .where('tenant_id', '=', this.tenantId)
        .where('id', '=', this.tokenId)
        .execute();
    });
  }

  /** Writes one page's devices (see planRecord) with a few bulk statements. */
  private async applyPage(trx: Trx, devices: readonly DepDevice[], page: { phase: DepSyncPhase; fetchId: string }): Promise<PageResult> {
    const now = this.deps.clock.now();
    const at = now.toISOString();
    const records = mergeSyncOps(devices);
    const existing = await this.readExisting(
      trx,
      records.map((r) => r.serial_number),
    );
    const c: RecordContext = { tokenId: this.tokenId, phase: page.phase, mode: this.mode, now };
    const fetchId = page.phase === 'fetch' ? page.fetchId : null;

    const inserts: DepDevicesTable[] = [];
    const updates: DepDevicesTable[] = [];
    const undeletes: DepDevicesTable[] = [];
    const seen: string[] = [];
    const removals = new Map<string, { at: string; opDate: string | null; serials: string[] }>();
    const offer: string[] = [];
    for (const d of records) {
      const plan = planRecord(d, existing.get(d.serial_number), c);
      switch (plan.action) {
        case 'skip':
          break;
        case 'seen':
          seen.push(d.serial_number);
          break;
        case 'insert':
          inserts.push(this.row(d.serial_number, plan.columns, plan.opType, plan.opDate, fetchId, at));
          offer.push(d.serial_number);
          break;
        case 'update':
          (plan.undelete ? undeletes : updates).push(this.row(d.serial_number, plan.columns, plan.opType, plan.opDate, fetchId, at));
          if (plan.offerDefault) offer.push(d.serial_number);
          break;
        case 'remove': {
          const key = `${plan.at}|${plan.opDate ?? ''}`;
          const group = removals.get(key) ?? { at: plan.at, opDate: plan.opDate, serials: [] };
          group.serials.push(d.serial_number);
          removals.set(key, group);
          break;
        }
      }
    }

    if (c.phase === 'fetch' && c.mode === 'fullRestricted') {
      // Only new serials; one written meanwhile stays as it is.
      for (const chunk of chunks(inserts)) await trx.insertInto('dep_devices').values(chunk).onConflict((oc) => oc.columns(['tenant_id', 'serial_number']).doNothing()).execute();
    } else {
      for (const chunk of chunks([...inserts, ...updates])) await this.upsert(trx, chunk, false);
      for (const chunk of chunks(undeletes)) await this.upsert(trx, chunk, true);
    }
    for (const chunk of chunks(seen)) {
      await trx
        .updateTable('dep_devices')
        .set({ seen_at_apple: 1, ...(fetchId ? { fetch_id: fetchId } : {}) })
        .where('tenant_id', '=', this.tenantId)
        .where('token_id', '=', this.tokenId)
        .where('serial_number', 'in', chunk)
        .execute();
    }
    let removed = 0;
    for (const group of removals.values()) {
      for (const chunk of chunks(group.serials)) {
        const res = await trx
          .updateTable('dep_devices')
          .set({
            removed_from_apple_at: sql<string>`coalesce(removed_from_apple_at, ${group.at})`,
            seen_at_apple: 0,
            last_op_type: 'deleted',
            last_op_date: group.opDate,
            updated_at: at,
          })
          .where('tenant_id', '=', this.tenantId)
          .where('token_id', '=', this.tokenId)
          .where('serial_number', 'in', chunk)
          .executeTakeFirst();
        removed += Number(res.numUpdatedRows);
      }
    }
    return { inserted: inserts.length, updated: updates.length + undeletes.length, removed, offer };
  }

  private async readExisting(trx: Trx, serials: string[]): Promise<Map<string, ExistingDevice>> {
    const out = new Map<string, ExistingDevice>();
    for (const chunk of chunks(serials)) {
      const rows = await trx
        .selectFrom('dep_devices')
        .select([
          ...APPLE_COLUMNS,
          'token_id',
          'serial_number',
          'last_op_date',
          'seen_at_apple',
          'removed_from_apple_at',
          'deleted_at',
          'requested_profile_id',
          'fetch_id',
        ])
        .where('tenant_id', '=', this.tenantId)
        .where('serial_number', 'in', chunk)
        .execute();
      for (const r of rows) out.set(r.serial_number, { ...r, seen_at_apple: Number(r.seen_at_apple), fetch_id: r.fetch_id ?? null });
    }
    return out;
  }

  private row(serial: string, columns: AppleColumns, opType: string | null, opDate: string | null, fetchId: string | null, at: string): DepDevicesTable {
    return {
      id: crypto.randomUUID(),
      tenant_id: this.tenantId,
      token_id: this.tokenId,
      serial_number: serial,
      ...columns,
      discovery_source: 'deviceEnrollmentProgram',
      last_op_type: opType,
      last_op_date: opDate,
      seen_at_apple: 1,
      requested_profile_id: null,
      requested_profile_assigned_at: null,
      assignment_result: null,
      assignment_result_at: null,
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
      created_at: at,
      updated_at: at,
      fetch_id: fetchId,
    };
  }

  /**
   * Inserts new serials and refreshes held ones in one statement. Only Apple's columns (not an
   * admin's description) and our bookkeeping are set; an admin's delete made meanwhile survives
   * unless `undelete`, and a device that moves here from another token loses that token's
   * profile choice.
   */
  private async upsert(trx: Trx, rows: DepDevicesTable[], undelete: boolean): Promise<void> {
    if (rows.length === 0) return;
    await trx
      .insertInto('dep_devices')
      .values(rows)
      .onConflict((oc) =>
        oc.columns(['tenant_id', 'serial_number']).doUpdateSet((eb) => {
          const set: Record<string, unknown> = {
            token_id: eb.ref('excluded.token_id'),
            last_op_type: sql`coalesce(excluded.last_op_type, dep_devices.last_op_type)`,
            last_op_date: sql`coalesce(excluded.last_op_date, dep_devices.last_op_date)`,
            seen_at_apple: 1,
            fetch_id: sql`coalesce(excluded.fetch_id, dep_devices.fetch_id)`,
            removed_from_apple_at: null,
            ...(undelete ? { deleted_at: null } : {}),
            updated_at: eb.ref('excluded.updated_at'),
          };
          for (const col of APPLE_COLUMNS) {
            set[col] = ADMIN_OWNED_COLUMNS.includes(col) ? sql`coalesce(${sql.ref(`dep_devices.${col}`)}, ${sql.ref(`excluded.${col}`)})` : eb.ref(`excluded.${col}`);
          }
          for (const col of TOKEN_BOUND_COLUMNS) set[col] = sql`case when dep_devices.token_id = excluded.token_id then ${sql.ref(`dep_devices.${col}`)} else null end`;
          return set as never;
        }),
      )
      .execute();
  }

  /** At the end of an unrestricted full fetch: devices once seen at Apple that it didn't list are gone there. */
  private async markUnlisted(trx: Trx, fetchId: string): Promise<number> {
    const res = await trx
      .updateTable('dep_devices')
      .set({ removed_from_apple_at: this.deps.clock.now().toISOString(), seen_at_apple: 0, updated_at: this.deps.clock.now().toISOString() })
      .where('tenant_id', '=', this.tenantId)
      .where('token_id', '=', this.tokenId)
      .where('seen_at_apple', '=', 1)
      .where('removed_from_apple_at', 'is', null)
      .where((eb) => eb.or([eb('fetch_id', 'is', null), eb('fetch_id', '<>', fetchId)]))
      .executeTakeFirst();
    return Number(res.numUpdatedRows);
  }

  /**
   * Hands new or changed serials without an admin's choice to the assigner, after the page's
   * commit. Its failure doesn't fail the sync: the devices are stored, and the assigner records
   * Apple's per-device answers.
   */
  private async offerDefaultProfiles(serials: string[], api: DepApi): Promise<void> {
    this.stats.offered += serials.length;
    try {
      await this.deps.assigner.assignDefaultProfiles(this.tenantId, this.tokenId, serials, api);
    } catch (err) {
      if (this.ctx.signal.aborted || err instanceof LeaseLostError) throw err;
      this.deps.logger.warn({ tenantId: this.tenantId, tokenId: this.tokenId, devices: serials.length, err: errorText(err) }, 'default ADE profile assignment failed during sync');
    }
  }

  private async finish(): Promise<void> {
    const at = this.deps.clock.now().toISOString();
    await this.deps.store.transaction(async (trx) => {
      await this.ctx.assertLease(trx);
      const count = await trx
        .selectFrom('dep_devices')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('tenant_id', '=', this.tenantId)
        .where('token_id', '=', this.tokenId)
        .where('seen_at_apple', '=', 1)
        .where('removed_from_apple_at', 'is', null)
        .where('deleted_at', 'is', null)
        .executeTakeFirstOrThrow();
      await trx
        .updateTable('dep_tokens')
        .set({
          sync_status: 'succeeded',
          last_successful_sync_at: at,
          synced_device_count: Number(count.n),
          apple_status: null,
          last_sync_error: null,
          last_sync_error_code: 0,
        })
        .where('tenant_id', '=', this.tenantId)
        .where('id', '=', this.tokenId)
        .execute();
    });
  }

  /** A failed delta makes the next sync a full one. Written only while this run holds the lease. */
  async recordFailure(f: { message: string; errorCode: number; appleStatus: string | null }): Promise<void> {
    try {
      await this.deps.store.transaction(async (trx) => {
        await this.ctx.assertLease(trx);
        await trx
          .updateTable('dep_tokens')
          .set({
            sync_status: 'failed',
            last_sync_error: f.message,
            last_sync_error_code: f.errorCode,
            apple_status: f.appleStatus,
            ...(this.mode === 'delta' ? { next_sync_full: 1 } : {}),
          })
          .where('tenant_id', '=', this.tenantId)
          .where('id', '=', this.tokenId)
          .execute();
      });
    } catch (err) {
      if (err instanceof LeaseLostError) return;
      this.deps.logger.warn({ tenantId: this.tenantId, tokenId: this.tokenId, err: errorText(err) }, 'could not record the failed ADE sync');
    }
  }
}

function chunks<T>(items: readonly T[], size = WRITE_CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
