import type { Core, OpenEnrollModule } from '../server/module.js';
import type { Executor } from '../store/db.js';
import { createAdeAdminFeature, createDepApiFactory, lateBoundSyncScheduler, type AdeAdminFeature } from './ade/admin/index.js';
import { adeAdminRoutes } from './ade/admin/routes.js';
import type { AdeSyncScheduler } from './ade/contracts.js';
import { createAdeSyncFeature } from './ade/sync/index.js';
import { createApnsFeature, type ApnsNotifier } from './apns/index.js';
import { createPushCertificateFeature, type PushCertificateService, type ReadyPushCertificate } from './push-certificate/index.js';
import { createScepFeature, type ScepFeature } from './scep/index.js';
import { createEnrollmentIntents } from './enrollment/intents.js';
import { createAdeEnrollmentFeature, type AdeEnrollmentFeature } from './enrollment/ade.js';
import { createWebSignIn, type WebSignIn } from './enrollment/web-signin-feature.js';
import { EnrollmentGate } from '../enrollment-policy/gate/gate.js';
import { TermsService } from '../enrollment-policy/terms/service.js';
import { createConfiguratorFeature, type ConfiguratorFeature } from './enrollment/configurator.js';
import { createUserInitiatedFeature, type UserInitiatedFeature } from './enrollment/user-initiated.js';
import { AppleEnrollmentTypeService } from '../enrollment-policy/apple-enrollment-types/service.js';
import type { EnrollmentIntents } from './mdm/contracts.js';
import { createMdmFeature, type MdmFeature } from './mdm/index.js';
import { DeviceRecords } from '../devices/service.js';
import { InFlight } from '../shared/concurrency.js';

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
  /** Wakes enrolled devices through APNs (src/apple/apns/): the MDM core's PushNotifier, plus pushAll/pushManagedDevices. */
  apns: ApnsNotifier;
  /** What served enrollment profiles are for (src/apple/enrollment/intents.ts). */
  enrollmentIntents: EnrollmentIntents;
  /** Tenant CA, SCEP server, device identities (the MDM core's IdentityVerifier) and the ProfileIssuer (src/apple/scep/, src/ca/). */
  scep: ScepFeature;
  /** Apple Configurator profiles, serials, profile URL and direct enrollment (src/apple/enrollment/configurator*.ts). */
  configurator: ConfiguratorFeature;
  /** The user-initiated enrollment page: device enrollment and User Enrollment (src/apple/enrollment/user-initiated*.ts). */
  userInitiated: UserInitiatedFeature;
  /** ADE enrollment: the profile's url and configuration_web_url (src/apple/enrollment/ade*.ts). */
  adeEnrollment: AdeEnrollmentFeature;
  /** Sign-in sessions, throttle and single sign-on shared by the enrollment pages (web-signin*.ts). */
  webSignIn: WebSignIn;
  /** The MDM core (src/apple/mdm/): check-in and command endpoints, the CommandQueue, the command admin API. */
  mdm: MdmFeature;
}

/** The enrollment policy the Apple front doors decide with; built here when the composition root doesn't pass it. */
export interface AppleModuleDeps {
  gate?: EnrollmentGate;
  terms?: TermsService;
  /** resolveAppleEnrollmentType for the user-initiated enrollment page. */
  enrollmentTypes?: AppleEnrollmentTypeService;
  /** The devices module's records, so its change listeners run for MDM enrollments (a bare instance when absent). */
  devices?: DeviceRecords;
}

export function createAppleModule(core: Core, deps: AppleModuleDeps = {}): AppleModule {
  const push = createPushCertificateFeature(core);
  // The ADE admin API and the sync engine call each other (ade/contracts.ts): the scheduler is bound late.
  const bound: { sync?: AdeSyncScheduler } = {};
  const ade = createAdeAdminFeature(core, {
    sync: lateBoundSyncScheduler(() => bound.sync),
    pushGate: (db, tenantId, now) => push.service.requireReadyPushCertificate(db, tenantId, now),
  });
  const sync = createAdeSyncFeature(core, { depApiFor: createDepApiFactory(core), assigner: ade.assigner });
  bound.sync = sync.scheduler;
  // MDM requests in progress on this node: the MDM routes count them, the push job paces by them.
  const deviceLoad = new InFlight();
  const apns = createApnsFeature(core, { pushCertificate: (db, tenantId, now) => push.service.requireReadyPushCertificate(db, tenantId, now), deviceLoad });
  const enrollmentIntents = createEnrollmentIntents(core.clock);
  const scep = createScepFeature(core);
  const terms = deps.terms ?? new TermsService(core.store, core.audit, core.clock);
  const gate = deps.gate ?? new EnrollmentGate(core.store, core.clock, terms);
  const webSignIn = createWebSignIn(core);
  const adeEnrollment = createAdeEnrollmentFeature(core, {
    intents: enrollmentIntents,
    gate,
    terms,
    webSignIn,
    pushGate: (db, tenantId, now) => push.service.requireReadyPushCertificate(db, tenantId, now),
    profileIssuer: () => scep.profileIssuer,
  });
  const configurator = createConfiguratorFeature(core, {
    intents: enrollmentIntents,
    profileIssuer: scep.profileIssuer,
    pushGate: (db, tenantId, now) => push.service.requireReadyPushCertificate(db, tenantId, now),
    gate,
    anchors: adeEnrollment.anchors,
    throttle: webSignIn.throttle,
  });
  const userInitiated = createUserInitiatedFeature(core, {
    intents: enrollmentIntents,
    gate,
    terms,
    enrollmentTypes: deps.enrollmentTypes ?? new AppleEnrollmentTypeService(core.store, core.audit, core.clock),
    webSignIn,
    profileIssuer: scep.profileIssuer,
    pushGate: (db, tenantId, now) => push.service.requireReadyPushCertificate(db, tenantId, now),
  });
  const mdm = createMdmFeature(core, {
    intents: enrollmentIntents,
    identities: scep.identities,
    push: apns.notifier,
    devices: deps.devices ?? new DeviceRecords(core.store, core.audit, core.clock),
    gate,
    load: deviceLoad,
  });
  return {
    name: 'apple',
    pushCertificates: push.service,
    requireReadyPushCertificate: (db, tenantId, now) => push.service.requireReadyPushCertificate(db, tenantId, now),
    ade,
    apns: apns.notifier,
    enrollmentIntents,
    scep,
    configurator,
    userInitiated,
    adeEnrollment,
    webSignIn,
    mdm,
    // Device-facing routes authenticate devices themselves (SCEP: challenge and signatures).
    async deviceRoutes(app) {
      await app.register(scep.deviceRoutes);
      await app.register(adeEnrollment.routes);
      await app.register(configurator.deviceRoutes);
      await app.register(userInitiated.routes);
      await app.register(mdm.deviceRoutes);
    },
    adminRoutes: [
      { versions: ['beta', 'v1.0'], plugin: push.routes },
      // depOnboardingSettings and what hangs off them exist on beta only.
      // Apple Configurator answers under the tenant's pseudo setting (depOnboardingSettings/{tenantId}).
      { versions: ['beta'], plugin: adeAdminRoutes({ tokens: ade.tokens, profiles: ade.profiles, devices: ade.devices, pseudoSetting: configurator.pseudoSetting }) },
      { versions: ['beta'], plugin: configurator.adminRoutes },
      { versions: ['beta'], plugin: mdm.adminRoutes.beta },
      { versions: ['beta', 'v1.0'], plugin: mdm.adminRoutes.all },
    ],
    async start() {
      await push.start();
      await ade.start();
      await sync.start();
    },
    async stop() {
      await apns.stop();
    },
  };
}
