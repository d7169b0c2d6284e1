import crypto from 'node:crypto';
import type { Executor } from '../../src/store/db.js';
import type { ManagedDevicesTable } from '../../src/store/schema.js';
import type { TestApp } from '../helpers/app.js';

/**
 * Devices are written straight into managed_devices: the devices service is built apart, and the
 * directory only reads the table.
 */
export function deviceRow(tenantId: string, over: Partial<ManagedDevicesTable> = {}): ManagedDevicesTable {
  const now = '2026-01-01T00:00:00.000Z';
  return {
    id: crypto.randomUUID(),
    tenant_id: tenantId,
    device_name: 'DEVICE',
    managed_device_name: null,
    serial_number: null,
    imei: null,
    meid: null,
    udid: null,
    enrollment_id: null,
    azure_ad_device_id: null,
    operating_system: 'iOS',
    os_version: '17.4',
    model: 'iPad',
    manufacturer: 'Apple',
    device_type: 'iPad',
    managed_device_owner_type: 'company',
    device_enrollment_type: 'appleBulkWithUser',
    device_registration_state: 'registered',
    management_state: 'managed',
    management_agent: 'mdm',
    compliance_state: 'compliant',
    join_type: 'unknown',
    enrollment_profile_name: null,
    device_category_id: null,
    device_category_display_name: null,
    user_id: null,
    user_principal_name: null,
    user_display_name: null,
    email_address: null,
    enrolled_by_user_principal_name: null,
    is_supervised: 1,
    is_encrypted: 1,
    autopilot_enrolled: 0,
    wifi_mac_address: null,
    phone_number: null,
    notes: null,
    enrolled_date_time: now,
    last_sync_date_time: now,
    management_certificate_expiration_date: null,
    created_at: now,
    updated_at: now,
    ...over,
  };
}

export async function insertDevice(db: Executor, tenantId: string, over: Partial<ManagedDevicesTable> = {}): Promise<ManagedDevicesTable> {
  const row = deviceRow(tenantId, over);
  await db.insertInto('managed_devices').values(row).execute();
  return row;
}

type Json = Record<string, unknown>;

/** Small request helpers over a test app. */
export function api(t: TestApp, version: 'beta' | 'v1.0' = 'beta') {
  const url = (path: string) => `/${version}${path}`;
  return {
    get: (path: string, key?: string) => t.request({ method: 'GET', url: url(path), ...(key ? { key } : {}) }),
    post: (path: string, payload: unknown, key?: string) => t.request({ method: 'POST', url: url(path), payload: payload as Json, ...(key ? { key } : {}) }),
    patch: (path: string, payload: unknown, key?: string) => t.request({ method: 'PATCH', url: url(path), payload: payload as Json, ...(key ? { key } : {}) }),
    del: (path: string, key?: string) => t.request({ method: 'DELETE', url: url(path), ...(key ? { key } : {}) }),
    ref: (id: string, kind = 'directoryObjects') => ({ '@odata.id': `https://graph.microsoft.com/v1.0/${kind}/${id}` }),
  };
}

/** The header row of Entra's bulk-create template. */
export const TEMPLATE_HEADER =
  'Name [displayName] Required,User name [userPrincipalName] Required,Initial password [passwordProfile] Required,' +
  'Block sign in (Yes/No) [accountEnabled] Required,First name [givenName],Last name [surname],Job title [jobTitle],' +
  'Department [department],Usage location [usageLocation],Street address [streetAddress],State or province [state],' +
  'Country or region [country],Office [physicalDeliveryOfficeName],City [city],ZIP or postal code [postalCode],' +
  'Office phone [telephoneNumber],Mobile phone [mobile]';
