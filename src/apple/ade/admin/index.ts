import type { FastifyPluginAsync } from 'fastify';
import type { Actor } from '../../../auth/principal.js';
import { serviceUnavailable } from '../../../graph/errors.js';
import type { Core } from '../../../server/module.js';
import type { Executor } from '../../../store/db.js';
import type { AdeSyncScheduler, DepApiFactory } from '../contracts.js';
import { AdeAssignments, appleProfileHash } from './assignment.js';
import { createDepApiFactory, depClientFor } from './dep-connection.js';
import { AdeDeviceService } from './device-service.js';
import { AdeProfileService } from './profile-service.js';
import { adeAdminRoutes } from './routes.js';
import { AdeTokenService, type PushGate } from './token-service.js';

export { AdeAssignments, ASSIGN_JOB, PROFILE_DEFINE_JOB, adeEnrollmentPath, adeEnrollmentUrls, appleProfileHash } from './assignment.js';
export { createDepApiFactory, depClientFor, readDepOAuthTokens, DepTokenNotUploadedError, DEP_OAUTH_SECRET_KIND } from './dep-connection.js';
export { deviceView } from './device-view.js';
export { AdeDeviceService, appleDeviceModel } from './device-service.js';
export { AdeProfileService, PROFILE_PASSWORD_SECRET_KIND, toProfileEntity } from './profile-service.js';
export { AdeTokenService, TOKEN_KEY_SECRET_KIND, type PushGate } from './token-service.js';
export { AUDIT_AREA, visibleToken, visibleTokens } from './token-access.js';
export * from './model.js';

/** Admin-side Apple calls retry briefly: a request shouldn't hang for minutes, and the durable jobs retry later. */
const INTERACTIVE_DEP_CLIENT = { retry: { maxRetries: 2, baseDelayMs: 500, maxDelayMs: 5000 }, requestTimeoutMs: 30_000 };

export interface AdeAdminFeatureOptions {
  /** The sync engine's scheduler (upload, manual sync, delete). */
  sync: AdeSyncScheduler;
  /** Apple enrollment's gate: AppleModule.requireReadyPushCertificate. */
  pushGate: PushGate;
  /** DEP clients for uploaded tokens; by default OPENENROLL_APPLE_DEP_URL with short retries. */
  depApiFor?: DepApiFactory;
}

export interface AdeAdminFeature {
  tokens: AdeTokenService;
  profiles: AdeProfileService;
  devices: AdeDeviceService;
  /** The AdeAssigner for the sync engine, and the profile definition / assignment jobs. */
  assigner: AdeAssignments;
  routes: FastifyPluginAsync;
  start(): Promise<void>;
}

/**
 * An AdeSyncScheduler bound once the sync engine exists (it needs this feature's assigner, this
 * feature needs its scheduler). Until then, the operations fail with a 503 rather than pretend.
 */
export function lateBoundSyncScheduler(get: () => AdeSyncScheduler | undefined): AdeSyncScheduler {
  const sync = () => {
    const s = get();
    if (!s) throw serviceUnavailable('The ADE sync engine is not available.');
    return s;
  };
  return {
    scheduleAfterUpload: (trx: Executor, tenantId: string, tokenId: string) => sync().scheduleAfterUpload(trx, tenantId, tokenId),
    requestManualSync: (actor: Actor, tokenId: string) => sync().requestManualSync(actor, tokenId),
    cancel: (trx: Executor, tenantId: string, tokenId: string) => sync().cancel(trx, tenantId, tokenId),
  };
}

/** The ADE admin API: depOnboardingSettings, their enrollmentProfiles and importedAppleDeviceIdentities (beta). */
export function createAdeAdminFeature(core: Core, opts: AdeAdminFeatureOptions): AdeAdminFeature {
  const logger = core.logger.child({ component: 'ade-admin' });
  const depApiFor = opts.depApiFor ?? createDepApiFactory(core, INTERACTIVE_DEP_CLIENT);
  const assigner = new AdeAssignments({ store: core.store, clock: core.clock, jobs: core.jobs, logger, publicUrl: core.config.publicUrl, depApiFor });
  assigner.registerJobs();
  const tokens = new AdeTokenService({
    store: core.store,
    secrets: core.secrets,
    audit: core.audit,
    clock: core.clock,
    jobs: core.jobs,
    logger,
    sync: opts.sync,
    pushGate: opts.pushGate,
    assignments: assigner,
    depClient: (t) => depClientFor(core, t, INTERACTIVE_DEP_CLIENT),
  });
  const profiles = new AdeProfileService({ store: core.store, secrets: core.secrets, audit: core.audit, clock: core.clock, assignments: assigner });
  const devices = new AdeDeviceService({ store: core.store, audit: core.audit, clock: core.clock, assignments: assigner });
  return {
    tokens,
    profiles,
    devices,
    assigner,
    routes: adeAdminRoutes({ tokens, profiles, devices }),
    /**
     * Profiles Apple doesn't have in their current form (never defined, failed, or the public URL
     * changed) and devices left PENDING get their jobs again, e.g. after a restore.
     */
    async start() {
      const db = core.store.db;
      let after = '';
      for (;;) {
        const rows = await db
          .selectFrom('dep_profiles as p')
          .innerJoin('dep_tokens as t', (j) => j.onRef('t.id', '=', 'p.token_id').onRef('t.tenant_id', '=', 'p.tenant_id'))
          .selectAll('p')
          .where('t.oauth_secret_id', 'is not', null)
          .where('p.id', '>', after)
          .orderBy('p.id')
          .limit(1000)
          .execute();
        if (rows.length === 0) break;
        after = rows[rows.length - 1]!.id;
        for (const r of rows) {
          let current: string | null = null;
          try {
            current = appleProfileHash(assigner.appleProfileOf(r.tenant_id, r));
          } catch {
            // Can't be built (no https public URL): one job records why; no retry storm at every start.
            if (r.apple_sync_error) continue;
          }
          if (!r.apple_profile_uuid || current !== r.apple_profile_hash) await assigner.scheduleDefine(db, r.tenant_id, r.id, 0);
        }
      }
      const pending = await db
        .selectFrom('dep_devices as d')
        .innerJoin('dep_tokens as t', (j) => j.onRef('t.id', '=', 'd.token_id').onRef('t.tenant_id', '=', 'd.tenant_id'))
        .select(['d.tenant_id', 'd.token_id'])
        .distinct()
        .where('t.oauth_secret_id', 'is not', null)
        .where('d.assignment_result', '=', 'PENDING')
        .where('d.deleted_at', 'is', null)
        .execute();
      for (const p of pending) await assigner.scheduleAssign(db, p.tenant_id, p.token_id, 0);
    },
  };
}
