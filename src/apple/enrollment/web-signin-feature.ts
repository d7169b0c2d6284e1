import type { Core } from '../../server/module.js';
import { EnrollmentOidc } from './web-signin-oidc.js';
import { SignInThrottle, WebSessions } from './web-signin.js';

/** The sign-in pieces every enrollment page shares, created once per server. */
export interface WebSignIn {
  sessions: WebSessions;
  throttle: SignInThrottle;
  /** Single sign-on, when OPENENROLL_ENROLLMENT_OIDC_CLIENT_ID (and OPENENROLL_OIDC_ISSUER) are set. */
  oidc: { client: EnrollmentOidc; tenantClaim: string } | undefined;
}

export function createWebSignIn(core: Pick<Core, 'clock' | 'config'>, fetchImpl: typeof fetch = fetch): WebSignIn {
  const cfg = core.config.enrollmentOidc;
  return {
    sessions: new WebSessions(core.clock),
    throttle: new SignInThrottle(core.clock),
    oidc: cfg ? { client: new EnrollmentOidc(cfg, fetchImpl), tenantClaim: cfg.tenantClaim } : undefined,
  };
}
