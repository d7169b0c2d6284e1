import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { createApiKey } from '../../src/auth/api-keys.js';
import type { Role } from '../../src/auth/principal.js';
import { parseCsr } from '../../src/pki/certificates.js';
import { createStore, type Store } from '../../src/store/db.js';
import { startAbmSimulator, type AbmSimulator } from '../../sim/apple-dep/index.js';
import { startApnsSimulator, type ApnsSimulator } from '../../sim/apns/index.js';
import { createAppleDevice, deviceOptionsFor, type AppleDevice } from '../../sim/apple-device/index.js';
import { createDeployment, ensureBuilt, startServe, TOKEN, type Deployment, type Server } from '../cli/helpers.js';
import { applePushCa } from '../helpers/apple.js';
import { deviceCa, freePort, IOS_PROFILE, simulatorEnv, TOKENS } from '../helpers/apple-device.js';
import { selfSignedTlsFiles } from '../helpers/tls.js';
import { applePushCertificate, tempDir } from '../pki/fixtures.js';

/**
 * Two real `openenroll serve` processes on one PostgreSQL schema, behind a load balancer in the test
 * process that terminates TLS at the public URL and sends each request to whichever node the test
 * says (by default the other one than last time). Apple's DEP API, APNs and the devices are the
 * simulators, also in the test process.
 */

export type NodeName = 'A' | 'B';
export type Routing = NodeName | 'alternate';

export interface Routed {
  node: NodeName;
  method: string;
  path: string;
  status: number;
}

export interface ApiAnswer {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export interface Cluster {
  nodes: Record<NodeName, Server>;
  /** https://localhost:<port>: the load balancer, what devices are given. */
  publicUrl: string;
  tlsCertPem: string;
  abm: AbmSimulator;
  apns: ApnsSimulator;
  /** The test's own connection to the shared schema. */
  store: Store;
  tenantId: string;
  adminKey: string;
  /** Every request the load balancer forwarded, in order. */
  routed: Routed[];
  /** Where the load balancer sends the next requests. */
  route(to: Routing): void;
  /** An admin API call straight to one node. */
  api(node: NodeName, method: string, path: string, body?: unknown, key?: string): Promise<ApiAnswer>;
  /** As api(), expecting `status`; the JSON body. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  ok(node: NodeName, method: string, path: string, body?: unknown, status?: number): Promise<any>;
  createKey(role?: Role): Promise<string>;
  /** Uploads a push certificate (on A) and connects an ADE token (created on A, uploaded on B) whose MDM server at Apple already holds `serials`; waits for the upload's sync. */
  connectAde(serials: string[]): Promise<{ tokenId: string; serverUuid: string; topic: string }>;
  /** A modern-authentication profile (configuration_web_url) made default on B; waits until Apple has it on every synced device. */
  defaultProfile(tokenId: string, serials: string[]): Promise<string>;
  /** The simulated device for a serial at Apple, trusting the load balancer's certificate. */
  device(serial: string): Promise<AppleDevice>;
  /** Polls `check` until it holds (or fails after `timeoutMs`). */
  until(what: string, check: () => Promise<boolean> | boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startCluster(opts: { env?: Record<string, string> } = {}): Promise<Cluster> {
  await ensureBuilt();
  const files = tempDir('openenroll-multinode-');
  const tls = await selfSignedTlsFiles();
  const abm = await startAbmSimulator();
  const apns = await startApnsSimulator({ caCertPem: (await applePushCa()).cert.pem });
  const dep: Deployment = await createDeployment();
  const lbPort = await freePort();
  const publicUrl = `https://localhost:${lbPort}`;
  const env: Record<string, string> = {
    ...dep.env,
    OPENENROLL_PUBLIC_URL: publicUrl,
    // The load balancer is on this host; nodes take its X-Forwarded-* headers.
    OPENENROLL_TRUST_PROXY: '127.0.0.1',
    ...(await simulatorEnv({ abm, apns, files, tls })),
    ...opts.env,
  };
  // Both start at once on the empty schema: one creates the tenant and prints the bootstrap key.
  const [a, b] = await Promise.all([startServe(env), startServe(env)]);
  const nodes: Record<NodeName, Server> = { A: a, B: b };
  const adminKey = [a, b].flatMap((s) => s.stdout().match(TOKEN) ?? [])[0];
  if (!adminKey) throw new Error(`no bootstrap key printed:\n${a.stdout()}\n${b.stdout()}`);
  const store = createStore({ databaseUrl: env.DATABASE_URL, pgSchema: dep.pgSchema });
  const tenantId = (await store.db.selectFrom('tenants').select('id').where('is_default', '=', 1).executeTakeFirstOrThrow()).id;

  // ---- the load balancer ----
  const routed: Routed[] = [];
  let routing: Routing = 'alternate';
  let last: NodeName = 'B';
  const lb = https.createServer({ cert: fs.readFileSync(tls.certFile), key: fs.readFileSync(tls.keyFile) }, (req, res) => {
    const node: NodeName = routing === 'alternate' ? (last = last === 'A' ? 'B' : 'A') : routing;
    const entry: Routed = { node, method: req.method ?? 'GET', path: (req.url ?? '/').split('?')[0]!, status: 0 };
    routed.push(entry);
    const upstream = http.request(
      {
        host: '127.0.0.1',
        port: nodes[node].port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, 'x-forwarded-for': req.socket.remoteAddress ?? '127.0.0.1', 'x-forwarded-proto': 'https', 'x-forwarded-host': req.headers.host ?? `localhost:${lbPort}` },
      },
      (up) => {
        entry.status = up.statusCode ?? 0;
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', (err) => {
      entry.status = 502;
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(String(err));
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => lb.listen(lbPort, '127.0.0.1', resolve));
  expect((lb.address() as AddressInfo).port).toBe(lbPort);

  const devices: AppleDevice[] = [];
  const api: Cluster['api'] = async (node, method, path, body, key = adminKey) => {
    const res = await fetch(`${nodes[node].url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  };
  const ok: Cluster['ok'] = async (node, method, path, body, status = 200) => {
    const res = await api(node, method, path, body);
    expect(res.status, `${method} ${path} on ${node}: ${res.text}`).toBe(status);
    return res.json;
  };
  const until: Cluster['until'] = async (what, check, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  const c: Cluster = {
    nodes,
    publicUrl,
    tlsCertPem: tls.certPem,
    abm,
    apns,
    store,
    tenantId,
    adminKey,
    routed,
    route(to) {
      routing = to;
    },
    api,
    ok,
    async createKey(role = 'administrator') {
      return (await createApiKey(store.db, { tenantId, displayName: `multinode-${role}`, role, scopeTagIds: null })).token;
    },
    async connectAde(serials) {
      const pushPath = '/beta/deviceManagement/applePushNotificationCertificate';
      const csr = (await ok('A', 'POST', `${pushPath}/generateApplePushNotificationCertificateSigningRequest`)).value as string;
      const { publicKeySpki } = await parseCsr(csr);
      const { cert, topic } = await applePushCertificate(await applePushCa(), publicKeySpki, { notBefore: new Date(Date.now() - 60_000) });
      await ok('A', 'PATCH', pushPath, { appleIdentifier: 'mdm-admins@contoso.com', certificate: cert.pem });

      const tokenId = (await ok('A', 'POST', TOKENS, { dataSharingConsentGranted: true }, 201)).id as string;
      const publicKey = (await ok('B', 'POST', `${TOKENS}/${tokenId}/generateEncryptionPublicKey`)).value as string;
      const { serverUuid } = abm.createMdmServer('OpenEnroll');
      abm.uploadPublicKey(serverUuid, publicKey);
      abm.addDevices(serials.map((s) => ({ serial_number: s, model: 'iPhone 15', device_family: 'iPhone' })));
      abm.assignDevicesToServer(serverUuid, { serials });
      await ok('B', 'POST', `${TOKENS}/${tokenId}/uploadDepToken`, { appleId: 'ade-admin@contoso.com', depToken: abm.downloadServerToken(serverUuid) }, 204);
      // The upload's sync runs on whichever node claims the job.
      await until('the first sync to bring the devices in', async () => {
        const rows = await store.db.selectFrom('dep_devices').select('serial_number').where('token_id', '=', tokenId).execute();
        const token = await store.db.selectFrom('dep_tokens').select('sync_status').where('id', '=', tokenId).executeTakeFirstOrThrow();
        return rows.length === serials.length && token.sync_status !== 'running';
      });
      return { tokenId, serverUuid, topic };
    },
    async defaultProfile(tokenId, serials) {
      const body = { '@odata.type': IOS_PROFILE, displayName: 'Corporate iPhones', requiresUserAuthentication: true, configurationWebUrl: true };
      const profileId = (await ok('A', 'POST', `${TOKENS}/${tokenId}/enrollmentProfiles`, body, 201)).id as string;
      await ok('B', 'POST', `${TOKENS}/${tokenId}/enrollmentProfiles/${profileId}/setDefaultProfile`, undefined, 204);
      await until('Apple to have the profile on every device', () => serials.every((s) => abm.device(s)?.profile_uuid));
      return profileId;
    },
    async device(serial) {
      const record = abm.device(serial);
      if (!record) throw new Error(`${serial} is not at Apple`);
      const d = createAppleDevice(deviceOptionsFor(record, { deviceCa: await deviceCa(), trustAnchors: [tls.certPem] }));
      devices.push(d);
      return d;
    },
    until,
    async close() {
      for (const d of devices) d.close();
      await Promise.all([a.stop(), b.stop()]);
      lb.closeAllConnections();
      await new Promise<void>((resolve) => lb.close(() => resolve()));
      await store.close();
      await apns.close();
      await abm.close();
      await dep.cleanup();
      files.cleanup();
    },
  };
  return c;
}
