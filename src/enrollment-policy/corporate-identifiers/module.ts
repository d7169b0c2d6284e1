import type { DeviceChangeListener } from '../../devices/events.js';
import type { Core, OpenEnrollModule } from '../../server/module.js';
import { corporateIdentifierRoutes } from './routes.js';
import { CorporateIdentifierService } from './service.js';

export interface CorporateIdentifiersModule extends OpenEnrollModule {
  identifiers: CorporateIdentifierService;
  /** Register with the devices module: identifiers follow the devices that report them. */
  deviceChangeListener: DeviceChangeListener;
}

/** Corporate device identifiers (Graph importedDeviceIdentities, beta only). */
export function createCorporateIdentifiersModule(core: Core): CorporateIdentifiersModule {
  const identifiers = new CorporateIdentifierService(core.store, core.audit, core.clock);
  return {
    name: 'corporate-identifiers',
    identifiers,
    deviceChangeListener: identifiers.deviceChangeListener,
    adminRoutes: [{ versions: ['beta'], plugin: corporateIdentifierRoutes(identifiers) }],
  };
}
