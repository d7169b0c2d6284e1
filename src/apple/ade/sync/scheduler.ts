import type { AuditLog } from '../../../audit/audit-log.js';
import type { Actor } from '../../../auth/principal.js';
import { conflict, tooManyRequests } from '../../../graph/errors.js';
import { listJobs } from '../../../jobs/list-jobs.js';
import type { JobScheduler } from '../../../jobs/scheduler.js';
import { DAY, type Clock } from '../../../shared/time.js';
import type { Executor, Store } from '../../../store/db.js';
import { DEP_TOKEN_TYPE } from '../admin/model.js';
import { AUDIT_AREA, visibleToken } from '../admin/token-access.js';
import type { AdeSyncScheduler } from '../contracts.js';
import { decideManualSync, syncStateFromRow } from '../sync-policy.js';
import { ADE_CLEANUP_JOB, ADE_CLEANUP_JOB_KEY, ADE_SYNC_JOB, adeSyncJobKey, type AdeSyncPayload } from './engine.js';

export interface AdeSyncJobsDeps {
  store: Store;
  jobs: JobScheduler;
  clock: Clock;
  audit: AuditLog;
  /** The automatic delta sync interval (config.adeSyncIntervalMs). */
  intervalMs: number;
}

/**
 * AdeSyncScheduler on the durable job scheduler: one periodic 'apple.ade.sync' job per token
 * (dedupe key `ade-sync:{tokenId}`) and one daily 'apple.ade.cleanup' job per tenant. A manual
 * sync enqueues the token's job to run now; the dedupe key keeps its period, and a request that
 * arrives while it runs makes it run again afterwards, never alongside.
 */
export class AdeSyncJobs implements AdeSyncScheduler {
  constructor(private readonly deps: AdeSyncJobsDeps) {}

  async scheduleAfterUpload(trx: Executor, tenantId: string, tokenId: string): Promise<void> {
    const now = this.deps.clock.now();
    await trx.updateTable('dep_tokens').set({ last_sync_triggered_at: now.toISOString() }).where('tenant_id', '=', tenantId).where('id', '=', tokenId).execute();
    await this.enqueueSync(trx, { tenantId, tokenId, trigger: 'upload' }, now);
    await this.ensureCleanup(trx, tenantId, new Date(now.getTime() + DAY));
  }

  async requestManualSync(actor: Actor, tokenId: string): Promise<void> {
    const { store, clock } = this.deps;
    await store.transaction(async (trx) => {
      // Locked: of two requests at once, the second sees the first's (SQLite serialises writers anyway).
      const row = await visibleToken(store, actor, tokenId, trx, true);
      if (!row.oauth_secret_id) throw conflict(`The enrollment program token '${tokenId}' has no Apple server token uploaded yet; upload one before syncing.`);
      const now = clock.now();
      const decision = decideManualSync(syncStateFromRow(row), now);
      if (!decision.allowed) throw tooManyRequests(decision.message, decision.retryAfterSeconds);
      await trx
        .updateTable('dep_tokens')
        .set({ last_manual_sync_at: now.toISOString(), last_sync_triggered_at: now.toISOString() })
        .where('tenant_id', '=', actor.tenantId)
        .where('id', '=', tokenId)
        .execute();
      await this.enqueueSync(trx, { tenantId: actor.tenantId, tokenId, trigger: 'manual' }, now);
      await this.deps.audit.record(trx, actor, {
        activity: 'Sync with Apple Device Enrollment Program',
        operation: 'Action',
        resourceType: DEP_TOKEN_TYPE,
        resourceId: tokenId,
        resourceDisplayName: row.token_name,
        ...AUDIT_AREA,
        before: { lastSyncTriggeredDateTime: row.last_sync_triggered_at },
        after: { lastSyncTriggeredDateTime: now.toISOString() },
      });
    });
  }

  async cancel(trx: Executor, tenantId: string, tokenId: string): Promise<void> {
    await this.deps.jobs.cancel(trx, tenantId, adeSyncJobKey(tokenId));
  }

  /**
   * At start-up: every uploaded token has its periodic sync (a store restored from a backup may
   * lack the job) with the configured interval, and every tenant with tokens its daily cleanup.
   * Existing jobs keep their next run time.
   */
  async ensureScheduled(): Promise<void> {
    const { store, clock, intervalMs } = this.deps;
    const tokens = await store.db.selectFrom('dep_tokens').select(['tenant_id', 'id']).where('oauth_secret_id', 'is not', null).execute();
    if (tokens.length === 0) return;
    const jobs = await listJobs(store.db, { kind: ADE_SYNC_JOB, limit: Number.MAX_SAFE_INTEGER });
    const byKey = new Map(jobs.map((j) => [`${j.tenantId}/${j.dedupeKey}`, j]));
    const now = clock.now();
    for (const t of tokens) {
      const job = byKey.get(`${t.tenant_id}/${adeSyncJobKey(t.id)}`);
      if (job && job.intervalMs === intervalMs) continue;
      // A pending job runs at the earlier of its time and runAt: giving one interval from now keeps its time.
      const runAt = job ? new Date(now.getTime() + intervalMs) : now;
      const payload: AdeSyncPayload = { tenantId: t.tenant_id, tokenId: t.id, trigger: 'periodic' };
      await this.deps.jobs.enqueue(store.db, { tenantId: t.tenant_id, kind: ADE_SYNC_JOB, dedupeKey: adeSyncJobKey(t.id), intervalMs, runAt, ...(job ? {} : { payload }) });
    }
    for (const tenantId of new Set(tokens.map((t) => t.tenant_id))) await this.ensureCleanup(store.db, tenantId, new Date(now.getTime() + DAY));
  }

  private async enqueueSync(db: Executor, payload: AdeSyncPayload, runAt: Date): Promise<void> {
    await this.deps.jobs.enqueue(db, {
      tenantId: payload.tenantId,
      kind: ADE_SYNC_JOB,
      dedupeKey: adeSyncJobKey(payload.tokenId),
      payload,
      runAt,
      intervalMs: this.deps.intervalMs,
    });
  }

  private async ensureCleanup(db: Executor, tenantId: string, runAt: Date): Promise<void> {
    await this.deps.jobs.enqueue(db, { tenantId, kind: ADE_CLEANUP_JOB, dedupeKey: ADE_CLEANUP_JOB_KEY, payload: { tenantId }, runAt, intervalMs: DAY });
  }
}
