import type { Core, OpenEnrollModule } from '../../server/module.js';
import { termsRoutes } from './routes.js';
import { TermsService } from './service.js';

export interface TermsModule extends OpenEnrollModule {
  /** termsForUser / acceptTerms for the enrollment gate and the user's enrollment page. */
  terms: TermsService;
}

/** Terms and conditions (requirements -A §10, graph §7), on beta and v1.0. */
export function createTermsModule(core: Core): TermsModule {
  const terms = new TermsService(core.store, core.audit, core.clock);
  return {
    name: 'terms-and-conditions',
    terms,
    adminRoutes: (['beta', 'v1.0'] as const).map((version) => ({ versions: [version], plugin: termsRoutes(terms, version) })),
  };
}
