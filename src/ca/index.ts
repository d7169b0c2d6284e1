import type { Core } from '../server/module.js';
import { CertificateAuthority, loadConfiguredProfileSigner } from './authority.js';
import { DeviceIdentities } from './identities.js';

export {
  CertificateAuthority,
  CertificateAuthorityError,
  loadConfiguredProfileSigner,
  CA_KEY_SECRET_KIND,
  PROFILE_SIGNER_KEY_SECRET_KIND,
  CA_KEY_BITS,
  CA_VALIDITY_DAYS,
  SIGNER_VALIDITY_DAYS,
  SIGNER_RENEW_BEFORE_MS,
  type ProfileSigner,
  type TenantCa,
} from './authority.js';
export { DeviceIdentities, IDENTITY_VALIDITY_DAYS, MDM_IDENTITY_PURPOSE, type IssueIdentityInput, type IssuedIdentity } from './identities.js';

export interface TenantPki {
  authority: CertificateAuthority;
  /** Issues device identities; the IdentityVerifier of src/apple/mdm/contracts.ts. */
  identities: DeviceIdentities;
}

/** The tenant CA and device identities, with the configured profile signer (if any) loaded now. */
export function createTenantPki(core: Core): TenantPki {
  const logger = core.logger.child({ component: 'ca' });
  const authority = new CertificateAuthority({
    store: core.store,
    secrets: core.secrets,
    clock: core.clock,
    logger,
    configuredSigner: loadConfiguredProfileSigner(core.config.profileSigning, core.clock.now()),
  });
  return { authority, identities: new DeviceIdentities(authority, core.clock, logger) };
}
