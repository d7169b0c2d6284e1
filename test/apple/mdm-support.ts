import crypto from 'node:crypto';
import fs from 'node:fs';
import type { LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import type { Store } from '../../src/store/db.js';
import type { NewEnrollmentIntent } from '../../src/apple/mdm/contracts.js';
import type { AppleModule } from '../../src/apple/module.js';
import type { EnrollmentGate, EnrollmentRequest } from '../../src/enrollment-policy/gate/gate.js';
import { parseCsr, type CertificateInfo } from '../../src/pki/certificates.js';
import { generateRsaKeyPair } from '../../src/pki/keys.js';
import { createSignedData } from '../../src/pki/signed.js';
import { buildPlist, parsePlistDict, type PlistValue } from '../../src/shared/plist.js';
import { HOUR } from '../../src/shared/time.js';
import { startApnsSimulator, type ApnsSimulator } from '../../sim/apns/index.js';
import type { TestApp } from '../helpers/app.js';
import { adeHarness, applePushCa, type AdeHarness } from '../helpers/apple.js';
import { applePushCertificate, tempDir } from '../pki/fixtures.js';

/** Test pieces for the MDM core: an app with a push certificate of a known topic, device identities from the real tenant CA, signed messages. */

export const FIXTURE_TOPIC = 'com.apple.mgmt.External.e0bd1eac-1f17-4c8e-8a63-dd17d3dd35d9';
export const CHECKIN = 'application/x-apple-aspen-mdm-checkin';
export const COMMAND = 'application/x-apple-aspen-mdm';
export const MANAGED_DEVICES = '/beta/deviceManagement/managedDevices';
export const SHARED_FIXTURES = new URL('../fixtures/public/apple/', import.meta.url);
export const OUR_FIXTURES = new URL('./fixtures/mdm/', import.meta.url);

/** A fixture's exact bytes (what the device signed). */
export function fixture(name: string, dir: URL = name.startsWith('checkin-') && fs.existsSync(new URL(name, SHARED_FIXTURES)) ? SHARED_FIXTURES : OUR_FIXTURES): Buffer {
  return fs.readFileSync(new URL(name, dir));
}

/** A Graph JSON body. */
export type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface Identity {
  keyPem: string;
  cert: CertificateInfo;
}

export interface MdmHarness extends AdeHarness {
  apns: ApnsSimulator;
  tenantId: string;
  topic: string;
  gate: EnrollmentGate;
  /** An intent as a front door would write it. */
  intent(input?: Partial<NewEnrollmentIntent>, tenantId?: string): Promise<string>;
  /** A device identity certificate from the tenant CA, bound to an intent (as SCEP issues it). */
  identity(intentId: string | null, tenantId?: string): Promise<Identity>;
  /** A signed PUT to CheckInURL or ServerURL. */
  send(path: 'checkin' | 'server', body: Buffer | string | Record<string, PlistValue>, id: Identity | null, opts?: SendOptions): Promise<LightMyRequestResponse>;
  /** Uploads a push certificate with this topic for a tenant (through the admin API). */
  pushCertificate(topic: string, tenant?: { tenantId: string; adminKey: string }): Promise<void>;
  /** Everything an MDM message could change, to prove a refusal changed nothing. */
  snapshot(): Promise<string>;
}

export interface SendOptions {
  tenantId?: string;
  /** Replaces the computed Mdm-Signature (null: none). */
  signature?: string | null;
  contentType?: string;
  headers?: Record<string, string>;
  method?: 'PUT' | 'POST';
}

let sharedKey: Promise<{ privateKeyPem: string; publicKeyPem: string }> | undefined;
/** One RSA key for every test identity: certificates differ, generating keys is slow. */
export function deviceKey() {
  sharedKey ??= generateRsaKeyPair();
  return sharedKey;
}

export function sign(body: Buffer, id: Identity, at?: Date): string {
  return createSignedData(body, { certificatePem: id.cert.pem, privateKeyPem: id.keyPem, detached: true, ...(at ? { signingTime: at } : {}) }).toString('base64');
}

export function plistBody(dict: Record<string, PlistValue>): Buffer {
  return Buffer.from(buildPlist(dict), 'utf8');
}

/** The command a ServerURL answer carries, or null for an empty answer. */
export function commandIn(res: LightMyRequestResponse): { uuid: string; requestType: string; command: Record<string, PlistValue> } | null {
  expect(res.statusCode, res.body).toBe(200);
  if (res.body === '') return null;
  expect(res.headers['content-type']).toMatch(/^application\/xml/);
  const dict = parsePlistDict(res.body);
  const command = dict.Command as Record<string, PlistValue>;
  return { uuid: dict.CommandUUID as string, requestType: command.RequestType as string, command };
}

export async function mdmHarness(opts: { env?: Record<string, string>; topic?: string; store?: Store } = {}): Promise<MdmHarness> {
  const appleCa = await applePushCa();
  // Real time (give or take an hour): the APNs simulator checks client certificates with TLS.
  const start = new Date(Date.now() - HOUR);
  const apns = await startApnsSimulator({ caCertPem: appleCa.cert.pem });
  const tmp = tempDir('openenroll-mdm-');
  const h = await adeHarness({
    pushCertificate: false,
    start: start.toISOString(),
    env: { OPENENROLL_APNS_URL: apns.url, OPENENROLL_APNS_CA_FILE: tmp.file('apns-ca.pem', apns.caPem), ...opts.env },
    ...(opts.store ? { store: opts.store } : {}),
  });
  const t: TestApp = h.t;
  const apple = h.apple as AppleModule;
  const gate = (t.app.modules.find((m) => m.name === 'enrollment-gate') as unknown as { gate: EnrollmentGate }).gate;
  const topic = opts.topic ?? FIXTURE_TOPIC;

  const pushCertificate: MdmHarness['pushCertificate'] = async (uid, tenant) => {
    const path = '/beta/deviceManagement/applePushNotificationCertificate';
    const key = tenant ? { key: tenant.adminKey } : {};
    const csr = await t.request({ method: 'POST', url: `${path}/generateApplePushNotificationCertificateSigningRequest`, ...key });
    expect(csr.statusCode, csr.body).toBe(200);
    const { publicKeySpki } = await parseCsr(csr.json().value as string);
    const { cert } = await applePushCertificate(appleCa, publicKeySpki, { notBefore: h.clock.now(), uid });
    const res = await t.request({ method: 'PATCH', url: path, payload: { appleIdentifier: 'mdm-admins@contoso.com', certificate: cert.pem }, ...key });
    expect(res.statusCode, res.body).toBe(200);
  };
  await pushCertificate(topic);

  const m: MdmHarness = {
    ...h,
    apns,
    tenantId: t.tenantId,
    topic,
    gate,
    pushCertificate,
    async intent(input = {}, tenantId = t.tenantId) {
      const row = await t.store.transaction((trx) =>
        apple.enrollmentIntents.create(trx, {
          tenantId,
          source: 'userInitiated',
          enrollmentType: 'device',
          platform: 'iOS',
          ownership: 'personal',
          deviceEnrollmentType: 'userEnrollment',
          expiresAt: new Date(h.clock.now().getTime() + HOUR),
          ...input,
        }),
      );
      return row.id;
    },
    async identity(intentId, tenantId = t.tenantId) {
      const { privateKeyPem, publicKeyPem } = await deviceKey();
      const issued = await t.store.transaction((trx) =>
        apple.scep.identities.issueIdentityCertificate(trx, tenantId, { csrPublicKey: publicKeyPem, subject: { CN: `Device ${crypto.randomUUID()}` }, intentId }),
      );
      return { keyPem: privateKeyPem, cert: issued.certificate };
    },
    async send(path, body, id, o = {}) {
      const bytes = Buffer.isBuffer(body) ? body : typeof body === 'string' ? Buffer.from(body, 'utf8') : plistBody(body);
      const signature = o.signature === undefined ? (id ? sign(bytes, id, h.clock.now()) : null) : o.signature;
      return t.app.server.inject({
        method: o.method ?? 'PUT',
        url: `/mdm/apple/${o.tenantId ?? t.tenantId}/${path}`,
        headers: { 'content-type': o.contentType ?? (path === 'checkin' ? CHECKIN : COMMAND), ...(signature ? { 'mdm-signature': signature } : {}), ...o.headers },
        payload: bytes,
      });
    },
    async snapshot() {
      const db = t.store.db;
      const tables = await Promise.all([
        db.selectFrom('mdm_enrollments').selectAll().orderBy('id').execute(),
        db.selectFrom('mdm_commands').selectAll().orderBy('uuid').execute(),
        db.selectFrom('mdm_command_queue').selectAll().orderBy('enrollment_id').orderBy('command_uuid').execute(),
        db.selectFrom('managed_devices').selectAll().orderBy('id').execute(),
        db.selectFrom('enrollment_intents').selectAll().orderBy('id').execute(),
        db.selectFrom('issued_certificates').selectAll().orderBy('thumbprint_sha256').execute(),
        db.selectFrom('secrets').select(['id', 'kind', 'ciphertext']).orderBy('id').execute(),
        db.selectFrom('dep_devices').selectAll().orderBy('id').execute(),
        db.selectFrom('audit_events').select('id').orderBy('id').execute(),
        db.selectFrom('enrollment_attempts').selectAll().orderBy('id').execute(),
        db.selectFrom('jobs').select(['id', 'kind', 'status', 'run_at']).orderBy('id').execute(),
      ]);
      return JSON.stringify(tables);
    },
    async close() {
      await h.close();
      await apns.close();
      tmp.cleanup();
    },
  };
  return m;
}

/** An ADE request for the gate, as the ADE front door builds it. */
export function adeGateRequest(tenantId: string, opts: { platform?: 'ios' | 'mac'; serial: string; userId?: string | null; osVersion?: string; model?: string }): EnrollmentRequest {
  return {
    tenantId,
    platform: opts.platform ?? 'ios',
    method: 'appleAde',
    userDriven: opts.userId !== undefined && opts.userId !== null,
    userId: opts.userId ?? null,
    device: { osPlatform: opts.platform === 'mac' ? 'macOS' : 'iOS', osVersion: opts.osVersion ?? '17.4.1', manufacturer: 'Apple', model: opts.model ?? 'iPhone15,2', serialNumber: opts.serial },
  };
}
