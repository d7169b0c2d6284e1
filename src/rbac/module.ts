import type { Core, OpenEnrollModule } from '../server/module.js';
import { roleScopeTagRoutes } from './routes.js';
import { RoleScopeTagService } from './service.js';

export function createRbacModule(core: Core): OpenEnrollModule & { roleScopeTags: RoleScopeTagService } {
  const roleScopeTags = new RoleScopeTagService(core.store, core.audit, core.clock);
  return {
    name: 'rbac',
    roleScopeTags,
    adminRoutes: [{ versions: ['beta'], plugin: roleScopeTagRoutes(roleScopeTags) }],
  };
}
