import crypto from 'node:crypto';
import type { DeviceInput } from '../../src/devices/model.js';
import type { DeviceRecords, UpsertResult } from '../../src/devices/service.js';
import type { ManualClock } from '../../src/shared/time.js';
import type { TestApp } from '../helpers/app.js';

/** The app's own DeviceRecords service (the one its routes use). */
export function deviceRecords(t: TestApp): DeviceRecords {
  const m = t.app.modules.find((x) => x.name === 'devices') as unknown as { devices?: DeviceRecords } | undefined;
  if (!m?.devices) throw new Error('devices module is not registered');
  return m.devices;
}

export const manualClock = (t: TestApp) => t.clock as ManualClock;

/** Enrolls (upserts) a device in its own transaction, as enrollment code would. */
export async function enroll(t: TestApp, input: DeviceInput, tenantId = t.tenantId): Promise<UpsertResult> {
  return t.store.transaction((trx) => deviceRecords(t).upsert(trx, tenantId, input));
}

export const serial = () => `C02${crypto.randomBytes(4).toString('hex').toUpperCase()}`;

/** Creates a role scope tag through the API and returns its id. */
export async function createTag(t: TestApp, displayName: string, key?: string): Promise<string> {
  const res = await t.request({ method: 'POST', url: '/beta/deviceManagement/roleScopeTags', payload: { displayName }, ...(key ? { key } : {}) });
  if (res.statusCode !== 201) throw new Error(`creating tag ${displayName}: ${res.statusCode} ${res.body}`);
  return (res.json() as { id: string }).id;
}

export const DEVICES = '/beta/deviceManagement/managedDevices';
