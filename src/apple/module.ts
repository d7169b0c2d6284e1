import type { Core, OpenEnrollModule } from '../server/module.js';
import type { Executor } from '../store/db.js';
import { createAdeAdminFeature, createDepApiFactory, lateBoundSyncScheduler, type AdeAdminFeature } from './ade/admin/index.js';
import type { AdeSyncScheduler } from './ade/contracts.js';
import { createAdeSyncFeature } from './ade/sync/index.js';
import { createPushCertificateFeature, type PushCertificateService, type ReadyPushCertificate } from './push-certificate/index.js';

/**
 * Apple device management: the MDM push certificate now; ADE tokens, profiles and enrollment add
 * their features here (a service, a routes plugin, a start hook each).
 */
export interface AppleModule extends OpenEnrollModule {
  pushCertificates: PushCertificateService;
  /**
   * The gate of every Apple enrollment: the topic, certificate and key, or a GraphError (409
   * PushCertificateRequired / PushCertificateExpired) stating why Apple enrollment can't start.
   */
  requireReadyPushCertificate(db: Executor, tenantId: string, now?: Date): Promise<ReadyPushCertificate>;
  /** The ADE admin API (tokens, profiles, devices) and its AdeAssigner. */
  ade: AdeAdminFeature;
}

export function createAppleModule(core: Core): AppleModule {
  const push = createPushCertificateFeature(core);
  // The ADE admin API and the sync engine call each other (ade/contracts.ts): the scheduler is bound late.
  const bound: { sync?: AdeSyncScheduler } = {};
  const ade = createAdeAdminFeature(core, {
    sync: lateBoundSyncScheduler(() => bound.sync),
    pushGate: (db, tenantId, now) => push.service.requireReadyPushCertificate(db, tenantId, now),
  });
  const sync = createAdeSyncFeature(core, { depApiFor: createDepApiFactory(core), assigner: ade.assigner });
  bound.sync = sync.scheduler;
  return {
    name: 'apple',
    pushCertificates: push.service,
    requireReadyPushCertificate: (db, tenantId, now) => push.service.requireReadyPushCertificate(db, tenantId, now),
    ade,
    adminRoutes: [
      { versions: ['beta', 'v1.0'], plugin: push.routes },
      // depOnboardingSettings and what hangs off them exist on beta only.
      { versions: ['beta'], plugin: ade.routes },
    ],
    async start() {
      await push.start();
      await ade.start();
      await sync.start();
    },
  };
}
