import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import type { Store } from '../../src/store/db.js';
import type { AppleModule } from '../../src/apple/module.js';
import { parseCsr } from '../../src/pki/certificates.js';
import { ManualClock } from '../../src/shared/time.js';
import { startAbmSimulator, type AbmSimulator, type AbmSimulatorOptions } from '../../sim/apple-dep/index.js';
import { applePushCertificate, testCa, type TestIdentity } from '../pki/fixtures.js';
import { createTestApp, type TestApp } from './app.js';

/** Test pieces for Apple features: a push certificate, and an app wired to the ABM simulator. */

let appleCa: Promise<TestIdentity> | undefined;
/** A CA standing in for Apple's push certificate issuer (one per test file). */
export function applePushCa(): Promise<TestIdentity> {
  appleCa ??= testCa('Apple Application Integration 2 Certification Authority (test)');
  return appleCa;
}

/** Uploads an Apple MDM push certificate for the tenant through the API, as an admin would. */
export async function uploadPushCertificate(t: TestApp, opts: { key?: string; now?: Date } = {}): Promise<{ topic: string }> {
  const path = '/beta/deviceManagement/applePushNotificationCertificate';
  const key = opts.key ? { key: opts.key } : {};
  const csr = await t.request({ method: 'POST', url: `${path}/generateApplePushNotificationCertificateSigningRequest`, ...key });
  expect(csr.statusCode, csr.body).toBe(200);
  const { publicKeySpki } = await parseCsr(csr.json().value as string);
  const { cert, topic } = await applePushCertificate(await applePushCa(), publicKeySpki, { notBefore: opts.now ?? t.clock.now() });
  const res = await t.request({ method: 'PATCH', url: path, payload: { appleIdentifier: 'mdm-admins@contoso.com', certificate: cert.pem }, ...key });
  expect(res.statusCode, res.body).toBe(200);
  return { topic };
}

export const TOKENS = '/beta/deviceManagement/depOnboardingSettings';
export const PUBLIC_URL = 'https://openenroll.test';

export interface AdeHarness {
  t: TestApp;
  sim: AbmSimulator;
  clock: ManualClock;
  apple: AppleModule;
  /** A request expected to succeed with `status`; returns the JSON body (or text). */
  ok(opts: InjectOptions & { key?: string | null }, status?: number): Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  request(opts: InjectOptions & { key?: string | null }): Promise<LightMyRequestResponse>;
  /** POST depOnboardingSettings with consent. */
  createToken(body?: Record<string, unknown>, key?: string): Promise<string>;
  /** generateEncryptionPublicKey → the PEM. */
  publicKey(tokenId: string, key?: string): Promise<string>;
  /** A new MDM server at Apple with this token's public key; returns the .p7m Apple gives. */
  mdmServerFor(tokenId: string, name: string, opts?: { expiresAt?: Date }): Promise<{ serverUuid: string; p7m: string }>;
  upload(tokenId: string, p7m: string, appleId?: string, key?: string): Promise<LightMyRequestResponse>;
  /** Create, key, MDM server, upload: a token ready to use. */
  connectedToken(name?: string, body?: Record<string, unknown>): Promise<{ tokenId: string; serverUuid: string }>;
  /** Runs every due job (sync, profile definition, assignment) to completion. */
  drain(): Promise<void>;
  close(): Promise<void>;
}

/**
 * An app on a ManualClock whose DEP URL is the ABM simulator (on the same clock), with an https
 * public URL (Apple only takes https enrollment URLs) and, unless told otherwise, a push certificate.
 */
export async function adeHarness(opts: { sim?: AbmSimulatorOptions; pushCertificate?: boolean; start?: string; env?: Record<string, string>; store?: Store } = {}): Promise<AdeHarness> {
  const clock = new ManualClock(opts.start ?? '2026-03-02T08:00:00.000Z');
  const sim = await startAbmSimulator({ clock, ...opts.sim });
  const t = await createTestApp({ clock, env: { OPENENROLL_APPLE_DEP_URL: sim.url, OPENENROLL_PUBLIC_URL: PUBLIC_URL, ...opts.env }, ...(opts.store ? { store: opts.store } : {}) });
  if (opts.pushCertificate !== false) await uploadPushCertificate(t);
  const apple = t.app.modules.find((m) => m.name === 'apple') as AppleModule;
  const h: AdeHarness = {
    t,
    sim,
    clock,
    apple,
    request: (o) => t.request(o),
    async ok(o, status = 200) {
      const res = await t.request(o);
      expect(res.statusCode, `${o.method} ${o.url}: ${res.body}`).toBe(status);
      if (status === 204) return undefined;
      return res.headers['content-type']?.toString().startsWith('application/json') ? res.json() : res.body;
    },
    async createToken(body = {}, key) {
      const e = await h.ok({ method: 'POST', url: TOKENS, payload: { dataSharingConsentGranted: true, ...body }, ...(key ? { key } : {}) }, 201);
      return e.id as string;
    },
    async publicKey(tokenId, key) {
      return (await h.ok({ method: 'POST', url: `${TOKENS}/${tokenId}/generateEncryptionPublicKey`, ...(key ? { key } : {}) })).value as string;
    },
    async mdmServerFor(tokenId, name, o = {}) {
      const pem = (await h.ok({ method: 'GET', url: `${TOKENS}/${tokenId}/getEncryptionPublicKey()` })).value as string;
      const { serverUuid } = sim.createMdmServer(name);
      sim.uploadPublicKey(serverUuid, pem);
      return { serverUuid, p7m: sim.downloadServerToken(serverUuid, o) };
    },
    upload: (tokenId, p7m, appleId = 'ade-admin@contoso.com', key) =>
      t.request({ method: 'POST', url: `${TOKENS}/${tokenId}/uploadDepToken`, payload: { appleId, depToken: p7m }, ...(key ? { key } : {}) }),
    async connectedToken(name = 'OpenEnroll', body = {}) {
      const tokenId = await h.createToken(body);
      await h.publicKey(tokenId);
      const { serverUuid, p7m } = await h.mdmServerFor(tokenId, name);
      const res = await h.upload(tokenId, p7m);
      expect(res.statusCode, res.body).toBe(204);
      return { tokenId, serverUuid };
    },
    drain: () => t.app.core.jobs.drain(),
    async close() {
      await t.close();
      await sim.close();
    },
  };
  return h;
}
