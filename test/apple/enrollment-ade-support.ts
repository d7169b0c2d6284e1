import crypto from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import type { AppleModule } from '../../src/apple/module.js';
import { createSignedData, verifySignedData } from '../../src/pki/index.js';
import { buildPlist, parsePlistDict, type PlistValue } from '../../src/shared/plist.js';
import { adeHarness, TOKENS, type AdeHarness } from '../helpers/apple.js';
import { openssl, tempDir, testCa, testLeaf, type TestIdentity } from '../pki/fixtures.js';

/**
 * ADE enrollment test pieces: a test "Apple iPhone Device CA" configured as the MachineInfo anchor,
 * devices that sign their MachineInfo with an identity it issued, and an ABM-synced token.
 */

export const IOS = '#microsoft.graph.depIOSEnrollmentProfile';
export const MACOS = '#microsoft.graph.depMacOSEnrollmentProfile';
export const PASSWORD = 'Corr3ct-Horse!';

let deviceCa: Promise<TestIdentity> | undefined;
export function testDeviceCa(): Promise<TestIdentity> {
  deviceCa ??= testCa('Apple iPhone Device CA (test)');
  return deviceCa;
}

export interface TestDevice {
  serial: string;
  udid: string;
  product: string;
  identity: TestIdentity;
  /** MachineInfo keys (overridable per request). */
  info: Record<string, PlistValue>;
}

export async function testDevice(opts: { serial?: string; product?: string; version?: string; osVersion?: string | null; imei?: string; ca?: TestIdentity } = {}): Promise<TestDevice> {
  const ca = opts.ca ?? (await testDeviceCa());
  const serial = opts.serial ?? `F${crypto.randomBytes(5).toString('hex').toUpperCase()}`;
  const udid = `00008110-${crypto.randomBytes(8).toString('hex').toUpperCase()}`;
  const product = opts.product ?? 'iPhone15,2';
  const identity = await testLeaf(ca, { CN: udid, OU: 'Apple iPhone', O: 'Apple Inc.' });
  const info: Record<string, PlistValue> = { UDID: udid, SERIAL: serial, PRODUCT: product, VERSION: opts.version ?? '21A329', LANGUAGE: 'en' };
  if (opts.osVersion !== null) info.OS_VERSION = opts.osVersion ?? '17.0';
  if (opts.imei) info.IMEI = opts.imei;
  return { serial, udid, product, identity, info };
}

/** The device's MachineInfo, CMS-signed by its identity (SHA-256 with signed attributes). */
export function signedMachineInfo(d: TestDevice, over: Record<string, PlistValue | undefined> = {}): Buffer {
  const info = { ...d.info, ...over };
  for (const k of Object.keys(info)) if (info[k] === undefined) delete info[k];
  return createSignedData(Buffer.from(buildPlist(info)), { certificatePem: d.identity.cert.pem, privateKeyPem: d.identity.keyPem });
}

/** As Apple devices sign it: SHA-1, no signed attributes (openssl cms -noattr). */
export function appleStyleMachineInfo(d: TestDevice): Buffer {
  const dir = tempDir('openenroll-mi-');
  try {
    const cert = dir.file('cert.pem', d.identity.cert.pem);
    const key = dir.file('key.pem', d.identity.keyPem);
    return openssl(['cms', '-sign', '-binary', '-nodetach', '-noattr', '-md', 'sha1', '-signer', cert, '-inkey', key, '-outform', 'DER'], buildPlist(d.info));
  } finally {
    dir.cleanup();
  }
}

export interface AdeEnrollHarness extends AdeHarness {
  tokenId: string;
  serverUuid: string;
  /** Adds devices at Apple for this token's MDM server and syncs them in. */
  addDevices(devices: { serial: string; model?: string; os?: string; device_family?: string }[]): Promise<void>;
  profile(body: Record<string, unknown>, opts?: { isDefault?: boolean }): Promise<string>;
  /** POST the profile url. */
  post(profileId: string, body: Buffer, headers?: Record<string, string>, tenantId?: string): Promise<LightMyRequestResponse>;
  createUser(upn: string, password?: string): Promise<string>;
  attempts(tenantId?: string): Promise<{ reason: string | null; outcome: string; method: string; os_platform: string; message: string | null; activity_id: string; user_id: string | null }[]>;
  intents(tenantId?: string): Promise<Array<Record<string, unknown>>>;
  readonly caFile: string;
}

export const adeUrl = (tenantId: string, profileId: string) => `/enroll/apple/ade/${tenantId}/${profileId}`;

/** An app trusting the test device CA, with a push certificate and a connected, synced token. */
export async function adeEnrollHarness(opts: { env?: Record<string, string>; pushCertificate?: boolean } = {}): Promise<AdeEnrollHarness> {
  const ca = await testDeviceCa();
  const dir = tempDir('openenroll-ade-');
  const caFile = dir.file('device-ca.pem', ca.cert.pem);
  const h = await adeHarness({ env: { OPENENROLL_APPLE_DEVICE_CA_FILE: caFile, ...opts.env }, ...(opts.pushCertificate === false ? { pushCertificate: false } : {}) });
  const { tokenId, serverUuid } = await h.connectedToken();
  await h.drain();
  const close = h.close.bind(h);
  const e: AdeEnrollHarness = Object.assign(h, {
    tokenId,
    serverUuid,
    caFile,
    async addDevices(devices: { serial: string; model?: string; os?: string; device_family?: string }[]) {
      h.sim.addDevices(devices.map((d) => ({ serial_number: d.serial, ...(d.model ? { model: d.model } : {}), ...(d.os ? { os: d.os } : {}), ...(d.device_family ? { device_family: d.device_family } : {}) })));
      h.sim.assignDevicesToServer(serverUuid, { serials: devices.map((d) => d.serial) });
      h.clock.advance(16 * 60_000);
      await h.ok({ method: 'POST', url: `${TOKENS}/${tokenId}/syncWithAppleDeviceEnrollmentProgram` }, 204);
      await h.drain();
      for (const d of devices) {
        const row = await h.t.store.db.selectFrom('dep_devices').select('id').where('serial_number', '=', d.serial).executeTakeFirst();
        expect(row, `device ${d.serial} synced`).toBeTruthy();
      }
    },
    async profile(body: Record<string, unknown>, o: { isDefault?: boolean } = {}) {
      const p = await h.ok({ method: 'POST', url: `${TOKENS}/${tokenId}/enrollmentProfiles`, payload: { '@odata.type': IOS, displayName: 'Profile', ...body } }, 201);
      if (o.isDefault) await h.ok({ method: 'POST', url: `${TOKENS}/${tokenId}/enrollmentProfiles/${p.id}/setDefaultProfile` }, 204);
      return p.id as string;
    },
    post(profileId: string, body: Buffer, headers: Record<string, string> = {}, tenantId = h.t.tenantId) {
      return h.t.app.server.inject({ method: 'POST', url: adeUrl(tenantId, profileId), payload: body, headers: { 'content-type': 'application/pkcs7-signature', ...headers } });
    },
    async createUser(upn: string, password = PASSWORD) {
      const u = await h.ok({ method: 'POST', url: '/v1.0/users', payload: { displayName: upn.split('@')[0], userPrincipalName: upn, passwordProfile: { password, forceChangePasswordNextSignIn: false } } }, 201);
      return u.id as string;
    },
    async attempts(tenantId = h.t.tenantId) {
      return h.t.store.db
        .selectFrom('enrollment_attempts')
        .select(['reason', 'outcome', 'method', 'os_platform', 'message', 'activity_id', 'user_id'])
        .where('tenant_id', '=', tenantId)
        .orderBy('occurred_at')
        .execute();
    },
    async intents(tenantId = h.t.tenantId) {
      return (await h.t.store.db.selectFrom('enrollment_intents').selectAll().where('tenant_id', '=', tenantId).orderBy('created_at').execute()) as unknown as Array<Record<string, unknown>>;
    },
    async close() {
      await close();
      dir.cleanup();
    },
  });
  return e;
}

export const appleModule = (h: AdeHarness) => h.t.app.modules.find((m) => m.name === 'apple') as AppleModule;

/** The served profile: an aspen-config CMS SignedData whose plist has a com.apple.mdm payload. */
export function expectEnrollmentProfile(res: LightMyRequestResponse, topic?: string): Record<string, PlistValue> {
  expect(res.statusCode, res.body).toBe(200);
  expect(res.headers['content-type']).toBe('application/x-apple-aspen-config');
  const signed = verifySignedData(res.rawPayload);
  const profile = parsePlistDict(signed.content);
  expect(profile.PayloadType).toBe('Configuration');
  const payloads = profile.PayloadContent as Array<Record<string, PlistValue>>;
  const mdm = payloads.find((p) => p.PayloadType === 'com.apple.mdm');
  expect(mdm, 'com.apple.mdm payload').toBeTruthy();
  if (topic) expect(mdm!.Topic).toBe(topic);
  expect(payloads.some((p) => p.PayloadType === 'com.apple.security.scep')).toBe(true);
  return profile;
}

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}
