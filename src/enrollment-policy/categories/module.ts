import type { DeviceRecords } from '../../devices/service.js';
import type { Core, OpenEnrollModule } from '../../server/module.js';
import { deviceCategoryRoutes } from './routes.js';
import { DeviceCategoryService } from './service.js';

/**
 * Device categories (beta and v1.0) and managedDevices/{id}/deviceCategory. Enrollment flows record
 * the user's choice with `categories.setDeviceCategoryAtEnrollment(trx, tenantId, deviceId, categoryId)`.
 */
export function createDeviceCategoriesModule(core: Core, devices: DeviceRecords): OpenEnrollModule & { categories: DeviceCategoryService } {
  const categories = new DeviceCategoryService(core.store, core.audit, core.clock, devices);
  return {
    name: 'device-categories',
    categories,
    adminRoutes: [{ versions: ['beta', 'v1.0'], plugin: deviceCategoryRoutes(categories) }],
  };
}
