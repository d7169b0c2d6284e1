import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import type { AppleModule } from '../../src/apple/module.js';
import { verifySignedData } from '../../src/pki/index.js';
import { parsePlistDict, type PlistValue } from '../../src/shared/plist.js';
import { ManualClock } from '../../src/shared/time.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { PUBLIC_URL, uploadPushCertificate } from '../helpers/apple.js';
import { tempDir } from '../pki/fixtures.js';
import { PASSWORD, testDeviceCa } from './enrollment-ade-support.js';

/** A Graph JSON body. */
export type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

export const SETTINGS = '/beta/deviceManagement/depOnboardingSettings';
export const PROFILE_TYPE = '#microsoft.graph.enrollmentProfile';

/**
 * Apple Configurator test pieces: an app on a ManualClock with an https public URL, a push
 * certificate and the test device CA trusted for MachineInfo; helpers for the pseudo setting.
 */
export interface ConfiguratorHarness {
  t: TestApp;
  clock: ManualClock;
  apple: AppleModule;
  tenantId: string;
  /** `/beta/deviceManagement/depOnboardingSettings/{tenantId}` (or another tenant's). */
  setting(tenantId?: string): string;
  request(opts: InjectOptions & { key?: string | null }): Promise<LightMyRequestResponse>;
  ok(opts: InjectOptions & { key?: string | null }, status?: number): Promise<Json>;
  profile(body?: Record<string, unknown>, key?: string): Promise<Json>;
  csv(text: string, query?: string, key?: string): Promise<LightMyRequestResponse>;
  createUser(upn: string, password?: string): Promise<string>;
  close(): Promise<void>;
}

export async function configuratorHarness(opts: { start?: string; pushCertificate?: boolean } = {}): Promise<ConfiguratorHarness> {
  const clock = new ManualClock(opts.start ?? '2026-05-04T08:00:00.000Z');
  const dir = tempDir('openenroll-configurator-');
  const caFile = dir.file('device-ca.pem', (await testDeviceCa()).cert.pem);
  const t = await createTestApp({ clock, env: { OPENENROLL_PUBLIC_URL: PUBLIC_URL, OPENENROLL_APPLE_DEVICE_CA_FILE: caFile } });
  if (opts.pushCertificate !== false) await uploadPushCertificate(t);
  const apple = t.app.modules.find((m) => m.name === 'apple') as AppleModule;
  const h: ConfiguratorHarness = {
    t,
    clock,
    apple,
    tenantId: t.tenantId,
    setting: (tenantId = t.tenantId) => `${SETTINGS}/${tenantId}`,
    request: (o) => t.request(o),
    async ok(o, status = 200) {
      const res = await t.request(o);
      expect(res.statusCode, `${o.method} ${o.url}: ${res.body}`).toBe(status);
      if (status === 204) return undefined;
      return String(res.headers['content-type']).startsWith('application/json') ? res.json() : res.body;
    },
    profile: (body = {}, key) => h.ok({ method: 'POST', url: `${h.setting()}/enrollmentProfiles`, payload: { '@odata.type': PROFILE_TYPE, displayName: 'Kiosks', ...body }, ...(key ? { key } : {}) }, 201),
    csv: (text, query = '', key) =>
      t.request({ method: 'POST', url: `${h.setting()}/importedAppleDeviceIdentities/importCsv${query}`, payload: text, headers: { 'content-type': 'text/csv' }, ...(key ? { key } : {}) }),
    async createUser(upn, password = PASSWORD) {
      const u = await h.ok({ method: 'POST', url: '/v1.0/users', payload: { displayName: upn.split('@')[0], userPrincipalName: upn, passwordProfile: { password, forceChangePasswordNextSignIn: false } } }, 201);
      return u.id as string;
    },
    async close() {
      await t.close();
      dir.cleanup();
    },
  };
  return h;
}

/** The plist of a signed profile (checks the signature). */
export function profilePlist(signed: Buffer): Record<string, PlistValue> {
  return parsePlistDict(verifySignedData(signed).content);
}

/** The SCEP challenge of an enrollment profile. */
export function challengeOf(plist: Record<string, PlistValue>): string {
  const scep = (plist.PayloadContent as Array<Record<string, PlistValue>>).find((p) => p.PayloadType === 'com.apple.security.scep')!;
  return (scep.PayloadContent as Record<string, PlistValue>).Challenge as string;
}

/** `n` serial,details rows. */
export function serialRows(n: number, prefix = 'C'): string {
  const rows: string[] = [];
  for (let i = 0; i < n; i++) rows.push(`${prefix}${String(i).padStart(9, '0')},device ${i}`);
  return rows.join('\r\n');
}
