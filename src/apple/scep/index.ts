import type { FastifyPluginAsync } from 'fastify';
import { createTenantPki, type CertificateAuthority, type DeviceIdentities } from '../../ca/index.js';
import type { Core } from '../../server/module.js';
import { EnrollmentProfileIssuer } from './profile-issuer.js';
import { scepRoutes } from './routes.js';
import { ScepService } from './service.js';

export { CA_CAPABILITIES, MAX_PKI_MESSAGE_BYTES, ScepService, identitySubject, type ScepAnswer } from './service.js';
export { EnrollmentProfileIssuer } from './profile-issuer.js';
export { buildEnrollmentProfile, profileIdentifiers, ACCESS_RIGHTS_ALL, SERVER_CAPABILITIES } from './profile.js';
export { checkChallenge, claimChallenge, createChallenge, hashChallenge, ONE_TIME_CHALLENGE_MS } from './challenges.js';
export { buildCertRep, certificatesOnly, csrChallengePassword, readPkiMessage, MESSAGE_TYPES, SCEP_OID } from './pki-message.js';

export interface ScepFeature {
  authority: CertificateAuthority;
  /** Issues, verifies (IdentityVerifier), binds and revokes device identity certificates. */
  identities: DeviceIdentities;
  profileIssuer: EnrollmentProfileIssuer;
  service: ScepService;
  /** /scep/{tenantId}[/pkiclient.exe]: device-facing, outside the admin API. */
  deviceRoutes: FastifyPluginAsync;
}

/** The tenant CA, the SCEP server and the enrollment profile issuer. */
export function createScepFeature(core: Core): ScepFeature {
  const { authority, identities } = createTenantPki(core);
  const service = new ScepService({ store: core.store, clock: core.clock, logger: core.logger, authority, identities });
  const profileIssuer = new EnrollmentProfileIssuer({ authority, clock: core.clock, logger: core.logger.child({ component: 'enrollment-profile' }), publicUrl: core.config.publicUrl });
  return { authority, identities, profileIssuer, service, deviceRoutes: scepRoutes(service) };
}
