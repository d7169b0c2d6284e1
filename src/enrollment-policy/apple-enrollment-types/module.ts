import type { Core, OpenEnrollModule } from '../../server/module.js';
import { appleEnrollmentTypeRoutes } from './routes.js';
import { AppleEnrollmentTypeService } from './service.js';

export interface AppleEnrollmentTypesModule extends OpenEnrollModule {
  /** resolveAppleEnrollmentType for the enrollment gate and the user's enrollment page. */
  enrollmentTypes: AppleEnrollmentTypeService;
}

/** Apple enrollment type profiles ("Enrollment types", requirements -D §6, graph §11); beta only. */
export function createAppleEnrollmentTypesModule(core: Core): AppleEnrollmentTypesModule {
  const enrollmentTypes = new AppleEnrollmentTypeService(core.store, core.audit, core.clock);
  return {
    name: 'apple-enrollment-types',
    enrollmentTypes,
    adminRoutes: [{ versions: ['beta'], plugin: appleEnrollmentTypeRoutes(enrollmentTypes) }],
  };
}
