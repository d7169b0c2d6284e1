import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { InjectOptions } from 'fastify';
import { expect } from 'vitest';
import { createSignedData } from '../../src/pki/signed.js';
import type { Store } from '../../src/store/db.js';
import { buildPlist } from '../../src/shared/plist.js';
import { HOUR, ManualClock, MINUTE } from '../../src/shared/time.js';
import { startAbmSimulator, type AbmSimulator } from '../../sim/apple-dep/index.js';
import { startApnsSimulator, type ApnsSimulator } from '../../sim/apns/index.js';
import { createAppleDevice, createDeviceCa, deviceOptionsFor, type AppleDevice, type AppleDeviceOptions, type DeviceCa } from '../../sim/apple-device/index.js';
import { tempDir, testCa, testLeaf, type TestIdentity } from '../pki/fixtures.js';
import { createTestApp, type TestApp } from './app.js';
import { applePushCa, uploadPushCertificate } from './apple.js';
import { selfSignedTlsFiles } from './tls.js';

/** Test pieces for the Apple device simulator: a tiny https server that plays a misbehaving MDM, and signed profiles. */

export interface FakeRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface FakeAnswer {
  status?: number;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

export interface FakeServer {
  url: string;
  /** The TLS certificate (PEM) a device must trust. */
  certPem: string;
  requests: FakeRequest[];
  handle(fn: (req: FakeRequest) => FakeAnswer | Promise<FakeAnswer>): void;
  close(): Promise<void>;
}

/** An https server on localhost with a self-signed certificate; answers with whatever the test says. */
export async function startFakeServer(): Promise<FakeServer> {
  const tls = await selfSignedTlsFiles();
  let handler: (req: FakeRequest) => FakeAnswer | Promise<FakeAnswer> = () => ({ status: 404 });
  const requests: FakeRequest[] = [];
  const server = https.createServer({ cert: fs.readFileSync(tls.certFile), key: fs.readFileSync(tls.keyFile) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: FakeRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks) };
      requests.push(r);
      Promise.resolve(handler(r)).then(
        (a) => res.writeHead(a.status ?? 200, a.headers).end(a.body),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://localhost:${port}`,
    certPem: tls.certPem,
    requests,
    handle(fn) {
      handler = fn;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A free TCP port (for OPENENROLL_PUBLIC_URL, which must be known before the server listens). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** An enrollment profile like OpenEnroll's (CA, SCEP, MDM payloads), as a plist dictionary to tamper with. */
export function enrollmentProfileDict(base: string, caDer?: Buffer): Record<string, unknown> {
  const uuid = () => crypto.randomUUID().toUpperCase();
  const scepUuid = uuid();
  return {
    PayloadType: 'Configuration',
    PayloadVersion: 1,
    PayloadIdentifier: 'com.example.enrollment',
    PayloadUUID: uuid(),
    PayloadDisplayName: 'Example MDM enrollment',
    PayloadOrganization: 'Example',
    PayloadContent: [
      ...(caDer ? [{ PayloadType: 'com.apple.security.root', PayloadVersion: 1, PayloadIdentifier: 'com.example.enrollment.ca', PayloadUUID: uuid(), PayloadContent: caDer }] : []),
      {
        PayloadType: 'com.apple.security.scep',
        PayloadVersion: 1,
        PayloadIdentifier: 'com.example.enrollment.scep',
        PayloadUUID: scepUuid,
        PayloadContent: { URL: `${base}/scep`, Challenge: 'secret', Keysize: 2048, 'Key Type': 'RSA', 'Key Usage': 5, Subject: [[['O', 'Example']], [['CN', 'device']]] },
      },
      {
        PayloadType: 'com.apple.mdm',
        PayloadVersion: 1,
        PayloadIdentifier: 'com.example.enrollment.mdm',
        PayloadUUID: uuid(),
        IdentityCertificateUUID: scepUuid,
        Topic: 'com.apple.mgmt.External.00000000-0000-0000-0000-000000000001',
        ServerURL: `${base}/mdm/server`,
        CheckInURL: `${base}/mdm/checkin`,
        SignMessage: true,
        AccessRights: 8191,
        CheckOutWhenRemoved: true,
      },
    ],
  };
}

/** The plist, CMS-signed by `signer` (product PKI, so the device's own verifier is tested against another implementation). */
export function signProfile(dict: Record<string, unknown>, signer: TestIdentity): Buffer {
  return createSignedData(Buffer.from(buildPlist(dict)), { certificatePem: signer.cert.pem, privateKeyPem: signer.keyPem });
}

/** A profile signer chaining to a test CA, and that CA (what a device must trust to call the profile verified). */
export async function profileSigner(): Promise<{ ca: TestIdentity; signer: TestIdentity }> {
  const ca = await testCa('Example Profile CA');
  return { ca, signer: await testLeaf(ca, { CN: 'Example profile signer' }) };
}

let sharedDeviceCa: Promise<DeviceCa> | undefined;
/** One simulated Apple iPhone Device CA per test file (key generation is slow). */
export function deviceCa(): Promise<DeviceCa> {
  sharedDeviceCa ??= createDeviceCa();
  return sharedDeviceCa;
}

/** An iPhone with sensible defaults. */
export async function testIphone(opts: Partial<AppleDeviceOptions> = {}): Promise<AppleDevice> {
  return createAppleDevice({
    platform: 'iOS',
    serial: opts.serial ?? `F${crypto.randomBytes(5).toString('hex').toUpperCase()}`,
    model: 'iPhone15,2',
    osVersion: '17.6.1',
    buildVersion: '21G93',
    deviceName: 'iPhone',
    imei: `35${String(crypto.randomInt(10 ** 12)).padStart(13, '0')}`,
    deviceCa: await deviceCa(),
    ...opts,
  });
}

// ---- the whole world: OpenEnroll over TLS, the ABM and APNs simulators, simulated devices ----

export const TOKENS = '/beta/deviceManagement/depOnboardingSettings';
export const MANAGED_DEVICES = '/beta/deviceManagement/managedDevices';
export const IOS_PROFILE = '#microsoft.graph.depIOSEnrollmentProfile';
export const MACOS_PROFILE = '#microsoft.graph.depMacOSEnrollmentProfile';
export const USER_PASSWORD = 'Corr3ct-Horse!';

export interface AdeWorld {
  t: TestApp;
  clock: ManualClock;
  abm: AbmSimulator;
  apns: ApnsSimulator;
  /** https://localhost:<port>, what devices are given. */
  publicUrl: string;
  /** The server's TLS certificate: devices trust it for TLS and, as the profile signer, for profile signatures. */
  tlsCertPem: string;
  topic: string;
  tokenId: string;
  serverUuid: string;
  /** A request (admin key unless told) that must answer `status`; the JSON body. */
  ok(opts: InjectOptions & { key?: string | null }, status?: number): Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  drain(): Promise<void>;
  /** An ADE profile of the token; the platform's default with isDefault. */
  profile(body: Record<string, unknown>, opts?: { isDefault?: boolean }): Promise<string>;
  createUser(upn: string, password?: string): Promise<string>;
  /** Devices at Apple for our MDM server, synced in (and assigned their default profile). */
  addDevices(devices: Array<{ serial: string; model?: string; device_family?: string }>): Promise<void>;
  /** The simulated device behind an ABM serial, trusting the server's TLS certificate. */
  device(serial: string, extra?: Partial<AppleDeviceOptions>): Promise<AppleDevice>;
  /** The managedDevice of a serial (admin API). */
  managedDevice(serial: string): Promise<Record<string, any> | undefined>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** The importedAppleDeviceIdentity of a serial (admin API). */
  adeDevice(serial: string): Promise<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
  close(): Promise<void>;
}

/** The server settings that point it at the simulators: Apple's DEP API, APNs, the device CA; the TLS certificate signs profiles. */
export async function simulatorEnv(w: {
  abm: { url: string };
  apns: { url: string; caPem: string };
  files: { file(name: string, content: string): string };
  tls: { certFile: string; keyFile: string };
}): Promise<Record<string, string>> {
  return {
    OPENENROLL_APPLE_DEP_URL: w.abm.url,
    OPENENROLL_APNS_URL: w.apns.url,
    OPENENROLL_APNS_CA_FILE: w.files.file('apns-ca.pem', w.apns.caPem),
    OPENENROLL_APPLE_DEVICE_CA_FILE: w.files.file('device-ca.pem', (await deviceCa()).certPem),
    OPENENROLL_PROFILE_SIGNING_CERT_FILE: w.tls.certFile,
    OPENENROLL_PROFILE_SIGNING_KEY_FILE: w.tls.keyFile,
  };
}

/**
 * OpenEnroll listening with TLS on localhost (OPENENROLL_PUBLIC_URL https://localhost:<port>), its DEP
 * URL the ABM simulator, its APNs URL the APNs simulator, the simulated device CA as MachineInfo anchor,
 * the TLS certificate as profile signer, a push certificate, and a token connected to an MDM server
 * at Apple. The clock starts an hour behind real time so certificates are valid for real TLS.
 */
export async function adeWorld(opts: { env?: Record<string, string>; store?: Store } = {}): Promise<AdeWorld> {
  const clock = new ManualClock(Date.now() - HOUR);
  const abm = await startAbmSimulator({ clock });
  const apns = await startApnsSimulator({ caCertPem: (await applePushCa()).cert.pem, clock });
  const tls = await selfSignedTlsFiles();
  const files = tempDir('openenroll-e2e-');
  const port = await freePort();
  const publicUrl = `https://localhost:${port}`;
  const t = await createTestApp({
    clock,
    env: {
      OPENENROLL_PUBLIC_URL: publicUrl,
      OPENENROLL_TLS_CERT_FILE: tls.certFile,
      OPENENROLL_TLS_KEY_FILE: tls.keyFile,
      ...(await simulatorEnv({ abm, apns, files, tls })),
      ...opts.env,
    },
    ...(opts.store ? { store: opts.store } : {}),
  });
  await t.app.server.listen({ port, host: '127.0.0.1' });
  const ok: AdeWorld['ok'] = async (o, status = 200) => {
    const res = await t.request(o);
    expect(res.statusCode, `${o.method} ${o.url}: ${res.body}`).toBe(status);
    if (status === 204) return undefined;
    return res.headers['content-type']?.toString().startsWith('application/json') ? res.json() : res.body;
  };
  const drain = () => t.app.core.jobs.drain();
  const { topic } = await uploadPushCertificate(t);

  // An ADE token: public key → MDM server at Apple → .p7m → upload (Apple has no devices for it yet).
  const tokenId = (await ok({ method: 'POST', url: TOKENS, payload: { dataSharingConsentGranted: true } }, 201)).id as string;
  const publicKey = (await ok({ method: 'POST', url: `${TOKENS}/${tokenId}/generateEncryptionPublicKey` })).value as string;
  const { serverUuid } = abm.createMdmServer('OpenEnroll');
  abm.uploadPublicKey(serverUuid, publicKey);
  await ok({ method: 'POST', url: `${TOKENS}/${tokenId}/uploadDepToken`, payload: { appleId: 'ade-admin@contoso.com', depToken: abm.downloadServerToken(serverUuid) } }, 204);
  await drain();

  const devices: AppleDevice[] = [];
  const w: AdeWorld = {
    t,
    clock,
    abm,
    apns,
    publicUrl,
    tlsCertPem: tls.certPem,
    topic,
    tokenId,
    serverUuid,
    ok,
    drain,
    async profile(body, o = {}) {
      const p = await ok({ method: 'POST', url: `${TOKENS}/${tokenId}/enrollmentProfiles`, payload: { '@odata.type': IOS_PROFILE, displayName: 'Profile', ...body } }, 201);
      if (o.isDefault) await ok({ method: 'POST', url: `${TOKENS}/${tokenId}/enrollmentProfiles/${p.id}/setDefaultProfile` }, 204);
      await drain();
      return p.id as string;
    },
    async createUser(upn, password = USER_PASSWORD) {
      const u = await ok({ method: 'POST', url: '/v1.0/users', payload: { accountEnabled: true, displayName: upn.split('@')[0], mailNickname: upn.split('@')[0], userPrincipalName: upn, passwordProfile: { password, forceChangePasswordNextSignIn: false } } }, 201);
      return u.id as string;
    },
    async addDevices(list) {
      abm.addDevices(list.map((d) => ({ serial_number: d.serial, ...(d.model ? { model: d.model } : {}), ...(d.device_family ? { device_family: d.device_family } : {}) })));
      abm.assignDevicesToServer(serverUuid, { serials: list.map((d) => d.serial) });
      // The sync engine allows a manual sync every 15 minutes.
      clock.advance(16 * MINUTE);
      await ok({ method: 'POST', url: `${TOKENS}/${tokenId}/syncWithAppleDeviceEnrollmentProgram` }, 204);
      await drain();
    },
    async device(serial, extra = {}) {
      const record = abm.device(serial);
      if (!record) throw new Error(`${serial} is not at Apple`);
      // The device keeps its own (real) time, as a device would; the server runs on the ManualClock.
      const d = createAppleDevice(deviceOptionsFor(record, { deviceCa: await deviceCa(), trustAnchors: [tls.certPem], ...extra }));
      devices.push(d);
      return d;
    },
    async managedDevice(serial) {
      const res = await ok({ method: 'GET', url: `${MANAGED_DEVICES}?$filter=serialNumber eq '${serial}'` });
      return (res.value as Array<Record<string, unknown>>)[0];
    },
    async adeDevice(serial) {
      const res = await ok({ method: 'GET', url: `${TOKENS}/${tokenId}/importedAppleDeviceIdentities?$filter=serialNumber eq '${serial}'` });
      const found = (res.value as Array<Record<string, unknown>>)[0];
      expect(found, `ADE device ${serial}`).toBeTruthy();
      return found!;
    },
    async close() {
      for (const d of devices) d.close();
      await t.close();
      await apns.close();
      await abm.close();
      files.cleanup();
    },
  };
  return w;
}
