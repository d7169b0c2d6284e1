import type { Core, OpenEnrollModule } from '../../server/module.js';
import { demRoutes } from './routes.js';
import { DeviceEnrollmentManagerService } from './service.js';

/** Device enrollment managers (an OpenEnroll extension resource, beta only). */
export function createDemModule(core: Core): OpenEnrollModule & { managers: DeviceEnrollmentManagerService } {
  const managers = new DeviceEnrollmentManagerService(core.store, core.audit, core.clock);
  return {
    name: 'device-enrollment-managers',
    managers,
    adminRoutes: [{ versions: ['beta'], plugin: demRoutes(managers) }],
  };
}
