import type { FastifyPluginAsync } from 'fastify';
import type { DeviceRecords } from '../../devices/service.js';
import type { Core } from '../../server/module.js';
import type { InFlight } from '../../shared/concurrency.js';
import { MdmAdminService, mdmAdminRoutesAll, mdmAdminRoutesBeta } from './admin.js';
import type { CommandQueue, EnrollmentIntents, IdentityVerifier, PushNotifier } from './contracts.js';
import { MdmCommandQueue, PUSH_JOB } from './queue.js';
import { mdmDeviceRoutes } from './routes.js';
import { MdmService, type MdmServiceDeps } from './service.js';

export { MdmService, MdmRefusal, UNRECOGNIZED_DEVICE, UNLOCK_TOKEN_SECRET_KIND, BOOTSTRAP_TOKEN_SECRET_KIND } from './service.js';
export { MdmCommandQueue, PUSH_JOB, PENDING_STATUSES, FINAL_STATUSES } from './queue.js';
export { CHECKIN_CONTENT_TYPE, COMMAND_CONTENT_TYPE, MAX_CHECKIN_BYTES, MAX_REPORT_BYTES } from './routes.js';
export { APPLE_MDM_COMMAND_TYPE, APPLE_MDM_ENROLLMENT_TYPE, MdmAdminService } from './admin.js';
export { ADMIN_REQUEST_TYPES, DEVICE_INFORMATION_QUERIES, macPasswordHash } from './commands.js';
export { parseCheckin, parseReport, MessageError, CHECKIN_MESSAGE_TYPES, REPORT_STATUSES } from './messages.js';

/** What the MDM core needs from the rest of the server (all built elsewhere). */
export interface MdmFeatureDeps {
  intents: EnrollmentIntents;
  /** The tenant CA's device identities; revokeEnrollment is used when present (CheckOut, re-enrollment). */
  identities: MdmServiceDeps['identities'];
  /** APNs. */
  push: PushNotifier | undefined;
  /** The devices module's records: its change listeners (dynamic groups, identifiers, reports) must run. */
  devices: DeviceRecords;
  /** The enrollment gate (recordSuccess). */
  gate: MdmServiceDeps['gate'];
  /** Counts device requests in progress (the APNs notifier paces pushes by it). */
  load?: InFlight;
}

export interface MdmFeature {
  /** The CommandQueue of contracts.ts (also the core's own queue). */
  queue: MdmCommandQueue;
  service: MdmService;
  admin: MdmAdminService;
  /** CheckInURL and ServerURL: device-facing, outside the admin API. */
  deviceRoutes: FastifyPluginAsync;
  /** appleMdmCommands, appleMdmEnrollment, setDeviceName (beta) and syncDevice (beta and v1.0). */
  adminRoutes: { beta: FastifyPluginAsync; all: FastifyPluginAsync };
}

export function createMdmFeature(core: Core, deps: MdmFeatureDeps): MdmFeature {
  const logger = core.logger.child({ component: 'apple-mdm' });
  const push = () => deps.push;
  const queue = new MdmCommandQueue({ store: core.store, clock: core.clock, jobs: core.jobs, logger, push });
  core.jobs.register(PUSH_JOB, async (_payload, ctx) => queue.pushPending(ctx.job.tenantId, ctx.signal), { timeoutMs: 5 * 60_000 });
  const service = new MdmService({
    store: core.store,
    clock: core.clock,
    secrets: core.secrets,
    logger,
    intents: deps.intents,
    identities: deps.identities,
    devices: deps.devices,
    gate: deps.gate,
    queue,
    acceptUserAuthenticate: core.config.mdmAcceptUserAuthenticate,
  });
  const admin = new MdmAdminService({ store: core.store, clock: core.clock, audit: core.audit, devices: deps.devices, queue, push });
  return {
    queue,
    service,
    admin,
    deviceRoutes: mdmDeviceRoutes({
      store: core.store,
      clock: core.clock,
      service,
      identities: deps.identities as IdentityVerifier,
      trustProxy: core.config.trustProxy,
      clientCertHeader: core.config.mdmClientCertHeader,
      metrics: core.metrics,
      ...(deps.load ? { load: deps.load } : {}),
    }),
    adminRoutes: { beta: mdmAdminRoutesBeta(admin), all: mdmAdminRoutesAll(admin) },
  };
}

export type { CommandQueue };
