import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { JobScheduler } from '../jobs/scheduler.js';
import type { Metrics } from '../observability/metrics.js';
import type { Keyring } from '../secrets/keyring.js';
import type { SecretStore } from '../secrets/secret-store.js';
import type { Store } from '../store/db.js';
import type { Clock } from '../shared/time.js';
import type { ApiVersion } from '../graph/http.js';

/** What every capability module is given. */
export interface Core {
  config: Config;
  store: Store;
  clock: Clock;
  keyring: Keyring;
  secrets: SecretStore;
  audit: AuditLog;
  jobs: JobScheduler;
  logger: Logger;
  metrics: Metrics;
}

/**
 * A capability plugs into the server through this contract: admin routes (mounted under the
 * Graph versions it lists, behind admin authentication), device-facing routes (which
 * authenticate devices themselves), and start/stop hooks for background work.
 */
export interface OpenEnrollModule {
  name: string;
  adminRoutes?: { versions: readonly ApiVersion[]; plugin: FastifyPluginAsync }[];
  deviceRoutes?: FastifyPluginAsync;
  start?(): Promise<void>;
  stop?(): Promise<void>;
}
