import type { DeviceChangeListener } from '../../devices/events.js';
import type { Core, OpenEnrollModule } from '../../server/module.js';
import { forgetDevice, recordEnrollmentAttempt } from './attempts.js';
import { ReportExports } from './exports.js';
import { reportRoutes, troubleshootingRoutes } from './routes.js';
import { ReportData } from './service.js';
import { abandonEnrollmentSession, completeEnrollmentSession, recordEnrollmentStep, startEnrollmentSession } from './sessions.js';

export interface EnrollmentReportsModule extends OpenEnrollModule {
  /** For the enrollment gate: every decision, in the gate's transaction. */
  recordEnrollmentAttempt: typeof recordEnrollmentAttempt;
  /** For the user's enrollment page: Company Portal attempts (incomplete user enrollments). */
  sessions: {
    start: typeof startEnrollmentSession;
    step: typeof recordEnrollmentStep;
    abandon: typeof abandonEnrollmentSession;
    complete: typeof completeEnrollmentSession;
  };
  data: ReportData;
  exports: ReportExports;
  /** Register with the devices module: a deleted device's first-enrollment snapshot goes with it. */
  deviceChangeListener: DeviceChangeListener;
}

/** Enrollment reports (requirements -A §9, -E §8) and Graph's report export jobs. */
export function createEnrollmentReportsModule(core: Core): EnrollmentReportsModule {
  const data = new ReportData(core.store, core.clock);
  const exports = new ReportExports(core.store, core.audit, core.clock, core.jobs, data);
  exports.register();
  return {
    name: 'enrollment-reports',
    recordEnrollmentAttempt,
    sessions: { start: startEnrollmentSession, step: recordEnrollmentStep, abandon: abandonEnrollmentSession, complete: completeEnrollmentSession },
    data,
    exports,
    deviceChangeListener: async (trx, change) => {
      if (change.before && !change.after) await forgetDevice(trx, change.tenantId, change.before.id);
    },
    adminRoutes: [
      { versions: ['beta'], plugin: reportRoutes(data, exports) },
      { versions: ['beta', 'v1.0'], plugin: troubleshootingRoutes(data) },
    ],
  };
}
