import { createAppleModule } from '../apple/module.js';
import { createAuditModule } from '../audit/module.js';
import { createDevicesModule } from '../devices/module.js';
import { createDirectoryModule } from '../directory/module.js';
import { createRestrictionsModule } from '../enrollment-policy/restrictions/module.js';
import { createDeviceCategoriesModule } from '../enrollment-policy/categories/module.js';
import { createCorporateIdentifiersModule } from '../enrollment-policy/corporate-identifiers/module.js';
import { createDemModule } from '../enrollment-policy/dem/module.js';
import { createAppleEnrollmentTypesModule } from '../enrollment-policy/apple-enrollment-types/module.js';
import { createEnrollmentReportsModule } from '../enrollment-policy/reports/module.js';
import { createTermsModule } from '../enrollment-policy/terms/module.js';
import { createEnrollmentGateModule } from '../enrollment-policy/gate/module.js';
import { createRbacModule } from '../rbac/module.js';
import type { Core, OpenEnrollModule } from './module.js';

/** The composition root: every capability module, in dependency order. */
export function createModules(core: Core): OpenEnrollModule[] {
  const rbac = createRbacModule(core);
  const directory = createDirectoryModule(core);
  const devices = createDevicesModule(core);
  // Dynamic device groups follow every device change, in the same transaction.
  devices.devices.onChange(directory.deviceChangeListener);
  const corporateIdentifiers = createCorporateIdentifiersModule(core);
  // Corporate identifiers turn Enrolled (or Unknown) as the devices reporting them change.
  devices.devices.onChange(corporateIdentifiers.deviceChangeListener);
  const reports = createEnrollmentReportsModule(core);
  // A deleted device's first-enrollment policy snapshot goes with it.
  devices.devices.onChange(reports.deviceChangeListener);
  const terms = createTermsModule(core);
  const gate = createEnrollmentGateModule(core, { terms: terms.terms });
  return [
    rbac,
    directory,
    devices,
    createAppleModule(core),
    createRestrictionsModule(core),
    corporateIdentifiers,
    createDemModule(core),
    createDeviceCategoriesModule(core, devices.devices),
    terms,
    createAppleEnrollmentTypesModule(core),
    reports,
    gate,
    createAuditModule(core),
  ];
}
