import type { Migration } from 'kysely';
import * as m0001 from './0001_foundation.js';
import * as m0002 from './0002_apple_ade.js';
import * as m0003 from './0003_enrollment_restrictions.js';
import * as m0004 from './0004_corporate_dem_categories.js';
import * as m0005 from './0005_terms_enrollment_types_reports.js';
import * as m0006 from './0006_ade_admin.js';
import * as m0007 from './0007_ade_sync.js';
import * as m0008 from './0008_apple_mdm.js';
import * as m0010 from './0010_mdm_core.js';
import * as m0011 from './0011_apple_enrollment.js';
import * as m0012 from './0012_apple_configurator.js';
import * as m0013 from './0013_rate_limit_counters.js';
import * as m0014 from './0014_dep_devices_by_managed_device.js';
import * as m0015 from './0015_mdm_queue_unpushed.js';

/**
 * The one ordered list of migrations for both dialects. Later capabilities append their own
 * module here; names sort in application order.
 */
export const migrations: Record<string, Migration> = {
  '0001_foundation': m0001,
  '0002_apple_ade': m0002,
  '0003_enrollment_restrictions': m0003,
  '0004_corporate_dem_categories': m0004,
  '0005_terms_enrollment_types_reports': m0005,
  '0006_ade_admin': m0006,
  '0007_ade_sync': m0007,
  '0008_apple_mdm': m0008,
  '0010_mdm_core': m0010,
  '0011_apple_enrollment': m0011,
  '0012_apple_configurator': m0012,
  '0013_rate_limit_counters': m0013,
  '0014_dep_devices_by_managed_device': m0014,
  '0015_mdm_queue_unpushed': m0015,
};
