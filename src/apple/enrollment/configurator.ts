import type { FastifyPluginAsync } from 'fastify';
import type { EnrollmentGate } from '../../enrollment-policy/gate/gate.js';
import type { Core } from '../../server/module.js';
import type { Executor } from '../../store/db.js';
import type { PseudoSettingHandler } from '../ade/admin/routes.js';
import type { ProfileIssuer } from '../mdm/contracts.js';
import type { ReadyPushCertificate } from '../push-certificate/index.js';
import { configuratorDeviceRoutes } from './configurator-device-routes.js';
import { ConfiguratorEnrollmentService } from './configurator-enrollment.js';
import { configuratorAdminRoutes, configuratorPseudoSetting } from './configurator-routes.js';
import { ConfiguratorService } from './configurator-service.js';
import type { EnrollmentIntentStore } from './intents.js';
import type { MachineInfoAnchors } from './machine-info.js';
import type { SignInThrottle } from './web-signin.js';

export { ConfiguratorService, configuratorDeviceModel, configuratorProfileModel } from './configurator-service.js';
export { ConfiguratorEnrollmentService } from './configurator-enrollment.js';
export * from './configurator-rules.js';

export interface ConfiguratorFeatureDeps {
  intents: EnrollmentIntentStore;
  profileIssuer: ProfileIssuer;
  pushGate: (db: Executor, tenantId: string, now?: Date) => Promise<ReadyPushCertificate>;
  gate: EnrollmentGate;
  /** The trusted device CA that signs MachineInfo (shared with ADE enrollment). */
  anchors: MachineInfoAnchors;
  /** Sign-in throttle of the enrollment pages (Setup Assistant's Basic prompt counts too). */
  throttle: SignInThrottle;
}

export interface ConfiguratorFeature {
  service: ConfiguratorService;
  enrollment: ConfiguratorEnrollmentService;
  /** For the ADE routes: `depOnboardingSettings/{tenantId}/enrollmentProfiles…` and `…/importedAppleDeviceIdentities…`. */
  pseudoSetting: PseudoSettingHandler;
  /** The serial CSV upload (beta). */
  adminRoutes: FastifyPluginAsync;
  /** The profile URL (device-facing). */
  deviceRoutes: FastifyPluginAsync;
}

/** Apple Configurator (requirements -D §9, -E §4): profiles, serials, the profile URL and direct enrollment. */
export function createConfiguratorFeature(core: Core, deps: ConfiguratorFeatureDeps): ConfiguratorFeature {
  const service = new ConfiguratorService({
    store: core.store,
    audit: core.audit,
    clock: core.clock,
    publicUrl: core.config.publicUrl,
    intents: deps.intents,
    profileIssuer: deps.profileIssuer,
    pushGate: deps.pushGate,
    gate: deps.gate,
  });
  const enrollment = new ConfiguratorEnrollmentService({
    store: core.store,
    clock: core.clock,
    intents: deps.intents,
    gate: deps.gate,
    profileIssuer: deps.profileIssuer,
    pushGate: deps.pushGate,
  });
  return {
    service,
    enrollment,
    pseudoSetting: configuratorPseudoSetting(service),
    adminRoutes: configuratorAdminRoutes(service),
    deviceRoutes: configuratorDeviceRoutes({ service: enrollment, anchors: deps.anchors, store: core.store, clock: core.clock, throttle: deps.throttle, publicUrl: core.config.publicUrl }),
  };
}
