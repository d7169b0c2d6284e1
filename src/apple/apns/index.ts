import fs from 'node:fs';
import type { Core } from '../../server/module.js';
import type { Executor } from '../../store/db.js';
import type { ReadyPushCertificate } from '../push-certificate/index.js';
import { ApnsClient, type ApnsClientOptions } from './client.js';
import { ApnsPushNotifier, type ApnsNotifier, type ApnsNotifierDeps } from './notifier.js';

export { ApnsClient, ApnsTransportError } from './client.js';
export type { ApnsClientOptions, ApnsCredentials, ApnsRequest, ApnsResponse, ApnsSessionInfo } from './client.js';
export { ApnsPushNotifier, APNS_UNREGISTERED, clearApnsUnregistered } from './notifier.js';
export type { ApnsNotifier, ApnsNotifierDeps, PushSummary } from './notifier.js';

/** Reads OPENENROLL_APNS_CA_FILE once at start-up, so a bad file stops the server with a clear message. */
export function loadApnsCa(file: string | undefined): string | undefined {
  if (!file) return undefined;
  try {
    const pem = fs.readFileSync(file, 'utf8');
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM certificate in the file');
    return pem;
  } catch (err) {
    throw new Error(`APNs CA file (OPENENROLL_APNS_CA_FILE): ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

export interface ApnsFeature {
  notifier: ApnsNotifier;
  stop(): Promise<void>;
}

export interface ApnsFeatureDeps {
  /** The push certificate service's gate (409 GraphError when there is none usable). */
  pushCertificate(db: Executor, tenantId: string, now: Date): Promise<ReadyPushCertificate>;
  client?: Partial<Omit<ApnsClientOptions, 'logger' | 'baseUrl' | 'extraCaPem'>>;
  notifier?: Partial<Pick<ApnsNotifierDeps, 'retry' | 'expirationMs' | 'certificateBlockMs'>>;
  /** Device requests in progress on this node: pushes wait while there are OPENENROLL_APNS_PUSH_BACKLOG of them. */
  deviceLoad?: ApnsNotifierDeps['deviceLoad'];
}

export function createApnsFeature(core: Core, deps: ApnsFeatureDeps): ApnsFeature {
  const logger = core.logger.child({ component: 'apns' });
  const client = new ApnsClient({ ...deps.client, baseUrl: core.config.apns.url, extraCaPem: loadApnsCa(core.config.apns.caFile), logger });
  const notifier = new ApnsPushNotifier({
    ...deps.notifier,
    store: core.store,
    clock: core.clock,
    logger,
    client,
    metrics: core.metrics,
    pushCertificate: deps.pushCertificate,
    deviceLoad: deps.deviceLoad,
    pushBacklog: core.config.apns.pushBacklog,
  });
  return { notifier, stop: () => notifier.close() };
}
