import { createAuditModule } from '../audit/module.js';
import { createRbacModule } from '../rbac/module.js';
import type { Core, OpenEnrollModule } from './module.js';

/** The composition root: every capability module, in dependency order. */
export function createModules(core: Core): OpenEnrollModule[] {
  const rbac = createRbacModule(core);
  return [rbac, createAuditModule(core)];
}
