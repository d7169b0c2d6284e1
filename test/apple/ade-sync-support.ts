import { createDepApiFactory } from '../../src/apple/ade/admin/dep-connection.js';
import { AdeAssignments } from '../../src/apple/ade/admin/assignment.js';
import { createAdeSyncFeature, type AdeSyncFeature } from '../../src/apple/ade/sync/index.js';
import { JobScheduler } from '../../src/jobs/scheduler.js';
import type { Core } from '../../src/server/module.js';
import { systemClock, type ManualClock } from '../../src/shared/time.js';
import type { DepDevicesTable, DepTokensTable } from '../../src/store/schema.js';
import type { AbmSimulator, AbmSimulatorOptions } from '../../sim/apple-dep/index.js';
import { adeHarness, type AdeHarness } from '../helpers/apple.js';
import type { TestApp } from '../helpers/app.js';
import { parseCsr } from '../../src/pki/certificates.js';
import { applePushCertificate, testCa } from '../pki/fixtures.js';

/**
 * The ADE admin harness (an app on a ManualClock, the ABM simulator on the same clock, a push
 * certificate) with one token uploaded through the API, and the sync feature on a scheduler of the
 * test's own.
 */
export interface SyncHarness {
  t: TestApp;
  sim: AbmSimulator;
  clock: ManualClock;
  serverUuid: string;
  tokenId: string;
  sync: AdeSyncFeature;
  jobs: JobScheduler;
  /** The admin API side (requests, profiles). */
  ade: AdeHarness;
  /** Another MDM server at Apple with its token uploaded here. */
  addToken(name: string): Promise<{ serverUuid: string; tokenId: string }>;
  /** Runs every due job to completion. */
  drain(): Promise<void>;
  token(): Promise<DepTokensTable>;
  /** The token's rows, by serial. */
  devices(): Promise<Map<string, DepDevicesTable>>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  sim?: AbmSimulatorOptions;
  /** Where the ManualClock starts. */
  start?: string;
  env?: Record<string, string>;
  /** Real time for the simulator (Retry-After waits are measured in it). */
  realTimeSim?: boolean;
  leaseMs?: number;
  runTimeoutMs?: number;
  /** The DEP client's per-request timeout (default: the product's). */
  depRequestTimeoutMs?: number;
}

export async function syncHarness(opts: HarnessOptions = {}): Promise<SyncHarness> {
  const ade = await adeHarness({
    start: opts.realTimeSim ? new Date().toISOString() : (opts.start ?? '2026-03-02T08:00:00.000Z'),
    sim: { ...opts.sim, ...(opts.realTimeSim ? { clock: systemClock } : {}) },
    ...(opts.env ? { env: opts.env } : {}),
  });
  const clock = ade.clock;
  const { t, sim } = ade;
  // The product's sync feature on a scheduler of the test's own (the app's isn't started), with
  // short DEP backoffs so failing runs don't sleep for seconds; Retry-After is still honoured.
  const jobs = new JobScheduler(t.store, { clock, leaseMs: opts.leaseMs ?? 30_000, logger: t.app.core.logger });
  const core: Core = { ...t.app.core, jobs };
  const depApiFor = createDepApiFactory(core, { retry: { baseDelayMs: 10 }, ...(opts.depRequestTimeoutMs ? { requestTimeoutMs: opts.depRequestTimeoutMs } : {}) });
  const assigner = new AdeAssignments({ store: core.store, clock, jobs, logger: core.logger, publicUrl: core.config.publicUrl, depApiFor });
  assigner.registerJobs();
  const sync = createAdeSyncFeature(core, { depApiFor, assigner, ...(opts.runTimeoutMs ? { runTimeoutMs: opts.runTimeoutMs } : {}) });
  // The token goes through the admin API as an admin uploads it (uploadDepToken schedules the first sync).
  const addToken = (name: string) => ade.connectedToken(name);
  const { serverUuid, tokenId } = await addToken('OpenEnroll');
  const h: SyncHarness = {
    t,
    sim,
    clock,
    serverUuid,
    tokenId,
    sync,
    jobs,
    addToken,
    ade,
    drain: () => jobs.drain(),
    token: () => t.store.db.selectFrom('dep_tokens').selectAll().where('id', '=', tokenId).executeTakeFirstOrThrow(),
    async devices() {
      const rows = await t.store.db.selectFrom('dep_devices').selectAll().where('tenant_id', '=', t.tenantId).where('token_id', '=', tokenId).execute();
      return new Map(rows.map((r) => [r.serial_number, r]));
    },
    async close() {
      await jobs.stop(0);
      await ade.close();
    },
  };
  return h;
}

// ---- the admin journey through the Graph API (in-process or against a spawned server) ----------

export type ApiCall = (method: string, url: string, body?: unknown) => Promise<{ status: number; json: () => Record<string, unknown>; text: string }>;

export function injectCall(t: TestApp, key?: string): ApiCall {
  return async (method, url, body) => {
    const res = await t.request({ method: method as 'GET', url, ...(body === undefined ? {} : { payload: body as Record<string, unknown> }), ...(key ? { key } : {}) });
    return { status: res.statusCode, text: res.body, json: () => res.json() as Record<string, unknown> };
  };
}

export function httpCall(baseUrl: string, key: string): ApiCall {
  return async (method, url, body) => {
    const res = await fetch(`${baseUrl}${url}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, text, json: () => JSON.parse(text) as Record<string, unknown> };
  };
}

async function ok(res: Awaited<ReturnType<ApiCall>>, what: string, status = [200, 201, 204]): Promise<Record<string, unknown>> {
  if (!status.includes(res.status)) throw new Error(`${what}: HTTP ${res.status} ${res.text}`);
  return res.status === 204 ? {} : res.json();
}

/** The MDM push certificate Apple enrollment needs: CSR from the API, "Apple" signs it, upload. */
export async function uploadPushCertificate(call: ApiCall): Promise<void> {
  const PATH = '/beta/deviceManagement/applePushNotificationCertificate';
  const csrPem = (await ok(await call('POST', `${PATH}/generateApplePushNotificationCertificateSigningRequest`), 'push CSR')).value as string;
  const ca = await testCa('Apple Application Integration 2 Certification Authority (test)');
  const csr = await parseCsr(csrPem);
  const { cert } = await applePushCertificate(ca, csr.publicKeySpki);
  await ok(await call('PATCH', PATH, { appleIdentifier: 'mdm-admins@contoso.com', certificate: cert.pem }), 'push certificate upload');
}

/**
 * Seed 001's token journey: 1. the public key; 2. ABM issues the .p7m for it; 3. upload. Returns the
 * token id and the MDM server at the simulator.
 */
export async function uploadTokenThroughApi(call: ApiCall, sim: AbmSimulator, serverName = 'OpenEnroll', beforeUpload?: (serverUuid: string) => void): Promise<{ tokenId: string; serverUuid: string }> {
  const BASE = '/beta/deviceManagement/depOnboardingSettings';
  const created = await ok(await call('POST', BASE, { dataSharingConsentGranted: true }), 'create token');
  const tokenId = created.id as string;
  const pem = (await ok(await call('POST', `${BASE}/${tokenId}/generateEncryptionPublicKey`), 'public key')).value as string;
  const { serverUuid } = sim.createMdmServer(serverName);
  sim.uploadPublicKey(serverUuid, pem);
  beforeUpload?.(serverUuid);
  const p7m = sim.downloadServerToken(serverUuid);
  await ok(await call('POST', `${BASE}/${tokenId}/uploadDepToken`, { appleId: 'mdm-admins@contoso.com', depToken: p7m }), 'upload token');
  return { tokenId, serverUuid };
}
