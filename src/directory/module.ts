import type { DeviceChangeListener } from '../devices/events.js';
import type { Core, OpenEnrollModule } from '../server/module.js';
import { UserCsvImport } from './csv-import.js';
import { DynamicMembership } from './dynamic-membership.js';
import { groupRoutes } from './groups-routes.js';
import { GroupService } from './groups-service.js';
import { userRoutes } from './users-routes.js';
import { UserService } from './users-service.js';

export interface DirectoryModule extends OpenEnrollModule {
  users: UserService;
  groups: GroupService;
  /** Register with the devices module: keeps dynamic device groups in step with device records. */
  deviceChangeListener: DeviceChangeListener;
}

/** Users, groups, members, dynamic device groups and the CSV user import. */
export function createDirectoryModule(core: Core): DirectoryModule {
  const dynamic = new DynamicMembership(core.clock);
  const users = new UserService(core.store, core.audit, core.clock);
  const groups = new GroupService(core.store, core.audit, core.clock, users, dynamic);
  const csvImport = new UserCsvImport(core.store, users);
  return {
    name: 'directory',
    users,
    groups,
    deviceChangeListener: dynamic.deviceChangeListener,
    adminRoutes: (['beta', 'v1.0'] as const).map((version) => ({
      versions: [version],
      plugin: async (app) => {
        await app.register(userRoutes(users, csvImport, version));
        await app.register(groupRoutes(groups, version));
      },
    })),
  };
}
