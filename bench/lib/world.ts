import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { parseCsr } from '../../src/pki/certificates.js';
import { newKey, writeKeyringFile } from '../../src/secrets/keyring.js';
import { startAbmSimulator, type AbmSimulator } from '../../sim/apple-dep/index.js';
import { startApnsSimulator, type ApnsSimulator } from '../../sim/apns/index.js';
import { createDeviceCa, type DeviceCa } from '../../sim/apple-device/index.js';
import { freePort, startPgCluster, type PgCluster } from '../../test/helpers/pg-cluster.js';
import { selfSignedTlsFiles } from '../../test/helpers/tls.js';
import { applePushCertificate, testCa, type TestIdentity } from '../../test/pki/fixtures.js';
import { AdminApi, HttpsClient } from './https-client.js';
import { KeyPool } from './keys.js';
import { startServer, type ServerProcess } from './server.js';
import { waitFor } from './stats.js';

/**
 * Everything outside the server under test, made once per bench run: TLS files, the simulated
 * Apple device CA, the push certificate CA, the ABM (DEP) and APNs simulators, the device key pool,
 * and a throwaway PostgreSQL cluster (or DATABASE_URL) when PostgreSQL is benchmarked.
 */

export type StoreKind = 'sqlite' | 'postgres';

export interface Peers {
  dir: string;
  tls: { certFile: string; keyFile: string; certPem: string };
  deviceCa: DeviceCa;
  pushCa: TestIdentity;
  abm: AbmSimulator;
  apns: ApnsSimulator;
  keys: KeyPool;
  file(name: string, content: string): string;
  postgresUrl(): Promise<string>;
  close(): Promise<void>;
}

export async function startPeers(opts: { keyPoolSize: number; postgresUrl?: string }): Promise<Peers> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'openenroll-bench-'));
  const file = (name: string, content: string) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, content, { mode: 0o600 });
    return p;
  };
  const [tls, deviceCa, pushCa, keys] = await Promise.all([selfSignedTlsFiles(), createDeviceCa(), testCa('Apple Application Integration 2 Certification Authority (bench)'), KeyPool.create(opts.keyPoolSize)]);
  const abm = await startAbmSimulator();
  const apns = await startApnsSimulator({ caCertPem: pushCa.cert.pem, maxConcurrentStreams: 1000 });
  let cluster: Promise<PgCluster> | undefined;
  return {
    dir,
    tls,
    deviceCa,
    pushCa,
    abm,
    apns,
    keys,
    file,
    async postgresUrl() {
      if (opts.postgresUrl) return opts.postgresUrl;
      if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
      cluster ??= startPgCluster();
      return (await cluster).url;
    },
    async close() {
      await Promise.all([abm.close(), apns.close()]);
      if (cluster) await (await cluster).stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const TOKENS = '/beta/deviceManagement/depOnboardingSettings';

/** One store's server under test, set up through its admin API like an admin would. */
export interface Deployment {
  store: StoreKind;
  server: ServerProcess;
  http: HttpsClient;
  admin: AdminApi;
  env: Record<string, string>;
  /** SQLite file or PostgreSQL URL + schema, for the raw-insert ceiling. */
  storeLocation: { sqliteFile: string } | { url: string; schema: string };
  close(): Promise<void>;
}

/** Environment of the server under test: TLS, the simulators, generous admin rate limits (the fan-out is 10,000 admin calls). */
export async function startDeployment(peers: Peers, store: StoreKind, opts: { nodeArgs?: string[]; extraEnv?: Record<string, string> } = {}): Promise<Deployment> {
  const dataDir = fs.mkdtempSync(path.join(peers.dir, `${store}-`));
  const port = await freePort();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? os.tmpdir(),
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    OPENENROLL_DATA_DIR: dataDir,
    OPENENROLL_PUBLIC_URL: `https://localhost:${port}`,
    OPENENROLL_TLS_CERT_FILE: peers.tls.certFile,
    OPENENROLL_TLS_KEY_FILE: peers.tls.keyFile,
    OPENENROLL_APPLE_DEP_URL: peers.abm.url,
    OPENENROLL_APNS_URL: peers.apns.url,
    OPENENROLL_APNS_CA_FILE: peers.file('apns-ca.pem', peers.apns.caPem),
    OPENENROLL_APPLE_DEVICE_CA_FILE: peers.file('device-ca.pem', peers.deviceCa.certPem),
    // A publicly trusted certificate signing profiles is the deployment the docs recommend; here the TLS one.
    OPENENROLL_PROFILE_SIGNING_CERT_FILE: peers.tls.certFile,
    OPENENROLL_PROFILE_SIGNING_KEY_FILE: peers.tls.keyFile,
    OPENENROLL_RATE_LIMIT_MAX: '10000000',
    OPENENROLL_JOBS_POLL_MS: '100',
    ...opts.extraEnv,
  };
  let storeLocation: Deployment['storeLocation'] = { sqliteFile: path.join(dataDir, 'openenroll.db') };
  let dropSchema = async () => {};
  if (store === 'postgres') {
    const url = await peers.postgresUrl();
    const schema = `bench_${crypto.randomBytes(5).toString('hex')}`;
    const keyFile = path.join(dataDir, 'master.key');
    const { id, key } = newKey();
    writeKeyringFile(keyFile, { current: id, keys: { [id]: key.toString('base64') } });
    Object.assign(env, { DATABASE_URL: url, OPENENROLL_PG_SCHEMA: schema, OPENENROLL_MASTER_KEY_FILE: keyFile });
    storeLocation = { url, schema };
    dropSchema = async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`drop schema if exists "${schema}" cascade`);
      await client.end();
    };
  }
  const server = await startServer(env, { tlsCaPem: peers.tls.certPem, port, ...(opts.nodeArgs ? { nodeArgs: opts.nodeArgs } : {}) });
  const http = new HttpsClient(server.publicUrl, { ca: peers.tls.certPem, maxSockets: 32 });
  const admin = new AdminApi(http, server.bootstrapKey);
  await uploadPushCertificate(admin, peers.pushCa);
  return {
    store,
    server,
    http,
    admin,
    env,
    storeLocation,
    async close() {
      http.close();
      await server.stop();
      await dropSchema().catch(() => undefined);
    },
  };
}

/** The MDM push certificate: CSR from the API, "Apple" (the bench's CA) signs it, upload. */
async function uploadPushCertificate(admin: AdminApi, pushCa: TestIdentity): Promise<void> {
  const PATH = '/beta/deviceManagement/applePushNotificationCertificate';
  const csrPem = (await admin.call('POST', `${PATH}/generateApplePushNotificationCertificateSigningRequest`)).value as string;
  const { cert } = await applePushCertificate(pushCa, (await parseCsr(csrPem)).publicKeySpki);
  await admin.call('PATCH', PATH, { appleIdentifier: 'mdm-admins@contoso.com', certificate: cert.pem });
}

/**
 * An ADE token for a new MDM server at the ABM simulator: `addDevices` runs before the upload (so
 * the first sync finds them), the upload schedules that sync. Returns when the upload is accepted.
 */
export async function connectToken(d: Deployment, abm: AbmSimulator, name: string, addDevices: (serverUuid: string) => void): Promise<{ tokenId: string; serverUuid: string }> {
  const tokenId = (await d.admin.call('POST', TOKENS, { dataSharingConsentGranted: true })).id as string;
  const publicKey = (await d.admin.call('POST', `${TOKENS}/${tokenId}/generateEncryptionPublicKey`)).value as string;
  const { serverUuid } = abm.createMdmServer(name);
  abm.uploadPublicKey(serverUuid, publicKey);
  addDevices(serverUuid);
  await d.admin.call('POST', `${TOKENS}/${tokenId}/uploadDepToken`, { appleId: 'ade-admin@contoso.com', depToken: abm.downloadServerToken(serverUuid) });
  return { tokenId, serverUuid };
}

/** Waits for the token's sync to succeed with `devices` devices; the token entity. */
export async function awaitSync(d: Deployment, tokenId: string, devices: number, timeoutMs: number): Promise<Record<string, unknown>> {
  return waitFor(
    `the ADE sync of ${devices} devices`,
    async () => {
      const t = await d.admin.call('GET', `${TOKENS}/${tokenId}`);
      if (t.syncStatus === 'failed') throw new Error(`ADE sync failed: ${JSON.stringify(t)}`);
      return t.syncStatus === 'succeeded' && t.syncedDeviceCount === devices ? t : undefined;
    },
    timeoutMs,
    25,
  );
}
