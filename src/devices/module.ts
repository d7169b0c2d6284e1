import type { Core, OpenEnrollModule } from '../server/module.js';
import { deviceRoutes } from './routes.js';
import { DeviceRecords } from './service.js';

export function createDevicesModule(core: Core): OpenEnrollModule & { devices: DeviceRecords } {
  const devices = new DeviceRecords(core.store, core.audit, core.clock);
  return {
    name: 'devices',
    devices,
    adminRoutes: [{ versions: ['beta', 'v1.0'], plugin: deviceRoutes(devices) }],
  };
}
