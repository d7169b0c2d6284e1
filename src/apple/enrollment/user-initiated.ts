import type { FastifyPluginAsync } from 'fastify';
import type { AppleEnrollmentTypeService } from '../../enrollment-policy/apple-enrollment-types/service.js';
import type { EnrollmentGate } from '../../enrollment-policy/gate/gate.js';
import type { TermsService } from '../../enrollment-policy/terms/service.js';
import type { Core } from '../../server/module.js';
import type { Executor } from '../../store/db.js';
import type { ProfileIssuer } from '../mdm/contracts.js';
import type { ReadyPushCertificate } from '../push-certificate/index.js';
import type { EnrollmentIntentStore } from './intents.js';
import { userInitiatedRoutes } from './user-initiated-routes.js';
import { UserInitiatedService } from './user-initiated-service.js';
import type { WebSignIn } from './web-signin-feature.js';

export { UserInitiatedService } from './user-initiated-service.js';
export { PAGE_SESSION_COOKIE } from './user-initiated-routes.js';
export * from './user-initiated-rules.js';

export interface UserInitiatedFeatureDeps {
  intents: EnrollmentIntentStore;
  gate: EnrollmentGate;
  terms: TermsService;
  enrollmentTypes: AppleEnrollmentTypeService;
  webSignIn: WebSignIn;
  profileIssuer: ProfileIssuer;
  pushGate(db: Executor, tenantId: string, now?: Date): Promise<ReadyPushCertificate>;
}

export interface UserInitiatedFeature {
  service: UserInitiatedService;
  /** The enrollment page (device-facing). */
  routes: FastifyPluginAsync;
}

/** User-initiated enrollment (device enrollment and Apple User Enrollment) from a web page (-D §1.2, §6, §7). */
export function createUserInitiatedFeature(core: Core, deps: UserInitiatedFeatureDeps): UserInitiatedFeature {
  const service = new UserInitiatedService({
    store: core.store,
    clock: core.clock,
    intents: deps.intents,
    gate: deps.gate,
    enrollmentTypes: deps.enrollmentTypes,
    profileIssuer: deps.profileIssuer,
    pushGate: deps.pushGate,
  });
  const routes = userInitiatedRoutes({ service, store: core.store, clock: core.clock, sessions: deps.webSignIn.sessions, throttle: deps.webSignIn.throttle, terms: deps.terms });
  return { service, routes };
}
