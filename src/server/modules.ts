import { createAuditModule } from '../audit/module.js';
import { createDevicesModule } from '../devices/module.js';
import { createDirectoryModule } from '../directory/module.js';
import { createRbacModule } from '../rbac/module.js';
import type { Core, OpenEnrollModule } from './module.js';

/** The composition root: every capability module, in dependency order. */
export function createModules(core: Core): OpenEnrollModule[] {
  const rbac = createRbacModule(core);
  const directory = createDirectoryModule(core);
  const devices = createDevicesModule(core);
  // Dynamic device groups follow every device change, in the same transaction.
  devices.devices.onChange(directory.deviceChangeListener);
  return [rbac, directory, devices, createAuditModule(core)];
}
