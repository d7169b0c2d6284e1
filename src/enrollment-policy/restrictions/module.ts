import type { Core, OpenEnrollModule } from '../../server/module.js';
import { AssignmentFilterService } from './filters-service.js';
import { loadRestrictionPolicies } from './loader.js';
import { assignmentFilterRoutes, restrictionRoutes } from './routes.js';
import { RestrictionService } from './service.js';

export interface RestrictionsModule extends OpenEnrollModule {
  restrictions: RestrictionService;
  filters: AssignmentFilterService;
  /** For the enrollment gate: every restriction policy of a tenant, defaults included. */
  loadRestrictionPolicies: typeof loadRestrictionPolicies;
}

/** Device platform and device limit restrictions (deviceEnrollmentConfigurations) and assignment filters. */
export function createRestrictionsModule(core: Core): RestrictionsModule {
  const restrictions = new RestrictionService(core.store, core.audit, core.clock);
  const filters = new AssignmentFilterService(core.store, core.audit, core.clock);
  return {
    name: 'enrollmentRestrictions',
    restrictions,
    filters,
    loadRestrictionPolicies,
    adminRoutes: [
      {
        versions: ['beta'],
        plugin: async (app) => {
          await app.register(restrictionRoutes(restrictions, 'beta'));
          await app.register(assignmentFilterRoutes(filters));
        },
      },
      { versions: ['v1.0'], plugin: restrictionRoutes(restrictions, 'v1.0') },
    ],
  };
}

export { loadRestrictionPolicies };
