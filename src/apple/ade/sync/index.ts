import type { Core } from '../../../server/module.js';
import { DAY, MINUTE } from '../../../shared/time.js';
import type { AdeAssigner, DepApiFactory } from '../contracts.js';
import { SYNC_RUN_TIMEOUT_MS } from '../sync-policy.js';
import { ADE_CLEANUP_JOB, ADE_SYNC_JOB, AdeSyncEngine } from './engine.js';
import { AdeSyncJobs } from './scheduler.js';

export { ADE_CLEANUP_JOB, ADE_CLEANUP_JOB_KEY, ADE_SYNC_JOB, AdeSyncEngine, adeSyncJobKey, parseSyncPayload } from './engine.js';
export type { AdeSyncPayload, AdeSyncReport, AdeSyncTrigger } from './engine.js';
export { AdeSyncJobs } from './scheduler.js';

export interface AdeSyncFeatureOptions {
  /** A DEP client per token (the admin feature's, admin/dep-connection.ts). */
  depApiFor: DepApiFactory;
  /** Default profiles for new devices (the admin feature's AdeAssignments). */
  assigner: AdeAssigner;
  /** "All sync requests are given 15 minutes to finish"; shorter only in tests. */
  runTimeoutMs?: number;
}

export interface AdeSyncFeature {
  /** AdeSyncScheduler for the admin API (upload, manual sync, delete). */
  scheduler: AdeSyncJobs;
  engine: AdeSyncEngine;
  start(): Promise<void>;
}

/** Sync failures back off from a minute (the DEP client already retried inside the run), capped by the interval. */
export function adeSyncBackoffMs(attempt: number): number {
  const base = Math.min(60 * MINUTE, MINUTE * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/** The ADE sync: registers its job kinds; start() makes sure every uploaded token is scheduled. */
export function createAdeSyncFeature(core: Core, opts: AdeSyncFeatureOptions): AdeSyncFeature {
  const runTimeoutMs = opts.runTimeoutMs ?? SYNC_RUN_TIMEOUT_MS;
  const engine = new AdeSyncEngine({
    store: core.store,
    clock: core.clock,
    logger: core.logger.child({ component: 'ade-sync' }),
    audit: core.audit,
    depApiFor: opts.depApiFor,
    assigner: opts.assigner,
    runTimeoutMs,
  });
  const scheduler = new AdeSyncJobs({ store: core.store, jobs: core.jobs, clock: core.clock, audit: core.audit, intervalMs: core.config.adeSyncIntervalMs });
  core.jobs.register(ADE_SYNC_JOB, (payload, ctx) => engine.runJob(payload, ctx), { timeoutMs: runTimeoutMs, backoffMs: adeSyncBackoffMs });
  core.jobs.register(
    ADE_CLEANUP_JOB,
    async (_payload, ctx) => {
      await engine.cleanupReleased(ctx.job.tenantId, { assertLease: (db) => ctx.assertLease(db), requestId: `job-${ctx.job.id}` });
    },
    { timeoutMs: DAY / 24 },
  );
  return { scheduler, engine, start: () => scheduler.ensureScheduled() };
}
