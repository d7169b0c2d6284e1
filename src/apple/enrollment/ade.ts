import type { FastifyPluginAsync } from 'fastify';
import type { EnrollmentGate } from '../../enrollment-policy/gate/gate.js';
import type { TermsService } from '../../enrollment-policy/terms/service.js';
import type { Core } from '../../server/module.js';
import type { Executor } from '../../store/db.js';
import type { ProfileIssuer } from '../mdm/contracts.js';
import type { ReadyPushCertificate } from '../push-certificate/index.js';
import { AdeEnrollmentService } from './ade-enrollment.js';
import { adeEnrollmentRoutes } from './ade-routes.js';
import type { EnrollmentIntentStore } from './intents.js';
import { loadMachineInfoAnchors, type MachineInfoAnchors } from './machine-info.js';
import type { WebSignIn } from './web-signin-feature.js';

export { AdeEnrollmentService, AdeRefusal, type AdeDeviceContext } from './ade-enrollment.js';
export { ADE_OIDC_CALLBACK_PATH } from './ade-routes.js';
export { ASPEN_CONFIG } from './machine-info-post.js';

/** ADE enrollment: the profile's `url` and `configuration_web_url` (ade-routes.ts), behind the gate. */
export interface AdeEnrollmentFeature {
  service: AdeEnrollmentService;
  anchors: MachineInfoAnchors;
  routes: FastifyPluginAsync;
}

export interface AdeEnrollmentFeatureDeps {
  intents: EnrollmentIntentStore;
  gate: EnrollmentGate;
  terms: TermsService;
  webSignIn: WebSignIn;
  pushGate(db: Executor, tenantId: string, now?: Date): Promise<ReadyPushCertificate>;
  /** CA + SCEP's issuer, looked up per request (it is bound after this feature is built). */
  profileIssuer(): ProfileIssuer | undefined;
}

export function createAdeEnrollmentFeature(core: Core, deps: AdeEnrollmentFeatureDeps): AdeEnrollmentFeature {
  // Read at start-up: a bad OPENENROLL_APPLE_DEVICE_CA_FILE stops the server with a clear message.
  const anchors = loadMachineInfoAnchors(core.config.appleDeviceCaFile);
  const logger = core.logger.child({ component: 'apple-ade-enrollment' });
  const service = new AdeEnrollmentService({
    store: core.store,
    clock: core.clock,
    logger,
    intents: deps.intents,
    gate: deps.gate,
    pushGate: deps.pushGate,
    profileIssuer: deps.profileIssuer,
  });
  const routes = adeEnrollmentRoutes({
    service,
    anchors,
    store: core.store,
    clock: core.clock,
    logger,
    sessions: deps.webSignIn.sessions,
    throttle: deps.webSignIn.throttle,
    terms: deps.terms,
    oidc: deps.webSignIn.oidc,
    publicUrl: core.config.publicUrl,
  });
  return { service, anchors, routes };
}
