import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceChange } from '../../src/devices/events.js';
import type { DeviceInput } from '../../src/devices/model.js';
import { DAY } from '../../src/shared/time.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { DEVICES, deviceRecords, enroll, manualClock, serial } from './fixtures.js';

type Body = { value: Record<string, unknown>[]; '@odata.nextLink'?: string; '@odata.count'?: number; '@odata.context': string };

const SEED: DeviceInput[] = [
  { deviceName: 'alpha-ipad', serialNumber: 'SERA001', operatingSystem: 'iOS', managedDeviceOwnerType: 'company', deviceEnrollmentType: 'appleBulkWithUser', complianceState: 'compliant', deviceCategoryDisplayName: 'Kiosks', deviceType: 'iPad' },
  { deviceName: 'bravo-mac', serialNumber: 'SERB002', operatingSystem: 'macOS', managedDeviceOwnerType: 'personal', deviceEnrollmentType: 'userEnrollment', complianceState: 'noncompliant', deviceType: 'macMDM' },
  { deviceName: 'charlie-win', serialNumber: 'SERC003', operatingSystem: 'Windows', managedDeviceOwnerType: 'company', deviceEnrollmentType: 'windowsAzureADJoin', complianceState: 'compliant', deviceCategoryDisplayName: 'Laptops', deviceType: 'desktop' },
  { deviceName: 'delta-android', serialNumber: 'SERD004', operatingSystem: 'Android', managedDeviceOwnerType: 'unknown', deviceEnrollmentType: 'androidEnterpriseFullyManaged', complianceState: 'unknown', deviceType: 'androidEnterprise' },
  { deviceName: 'echo-ipad', serialNumber: 'SERE005', operatingSystem: 'iOS', managedDeviceOwnerType: 'personal', deviceEnrollmentType: 'userEnrollment', complianceState: 'inGracePeriod', deviceCategoryDisplayName: 'kiosks', deviceType: 'iPad' },
];

const names = (body: Body) => body.value.map((d) => d.deviceName);

describe('managedDevices: reading', () => {
  let t: TestApp;
  const get = async (url: string, key?: string) => {
    const res = await t.request({ method: 'GET', url, ...(key ? { key } : {}) });
    return res;
  };
  const list = async (query: string) => {
    const res = await get(`${DEVICES}?${query}`);
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as Body;
  };

  beforeAll(async () => {
    t = await createTestApp();
    manualClock(t).set('2026-01-01T00:00:00.000Z');
    for (const d of SEED) {
      await enroll(t, d);
      manualClock(t).advance(DAY);
    }
  });
  afterAll(async () => t.close());

  it('lists every device with Graph annotations and the full property set', async () => {
    const body = await list('');
    expect(body['@odata.context']).toBe('http://openenroll.test/beta/$metadata#deviceManagement/managedDevices');
    expect(names(body)).toHaveLength(5);
    const alpha = body.value.find((d) => d.deviceName === 'alpha-ipad')!;
    expect(alpha).toMatchObject({
      '@odata.type': '#microsoft.graph.managedDevice',
      serialNumber: 'SERA001',
      enrolledDateTime: '2026-01-01T00:00:00.000Z',
      lastSyncDateTime: '2026-01-01T00:00:00.000Z',
      managedDeviceOwnerType: 'company',
      ownerType: 'company',
      deviceEnrollmentType: 'appleBulkWithUser',
      roleScopeTagIds: ['0'],
      isSupervised: false,
      autopilotEnrolled: false,
      notes: null,
      udid: null,
      userId: null,
    });
    for (const prop of ['imei', 'meid', 'model', 'manufacturer', 'joinType', 'managementState', 'managementAgent', 'deviceRegistrationState', 'wiFiMacAddress', 'phoneNumber', 'enrollmentProfileName', 'enrolledByUserPrincipalName', 'managementCertificateExpirationDate', 'emailAddress', 'userDisplayName', 'userPrincipalName', 'azureADDeviceId']) {
      expect(alpha).toHaveProperty(prop);
    }
  });

  it('filters with eq/ne on enums, case-insensitively as Intune does', async () => {
    expect(new Set(names(await list("$filter=managedDeviceOwnerType eq 'company'")))).toEqual(new Set(['alpha-ipad', 'charlie-win']));
    expect(new Set(names(await list("$filter=managedDeviceOwnerType eq 'Personal'")))).toEqual(new Set(['bravo-mac', 'echo-ipad']));
    expect(new Set(names(await list("$filter=ownerType eq 'personal'")))).toEqual(new Set(['bravo-mac', 'echo-ipad']));
    expect(new Set(names(await list("$filter=deviceEnrollmentType eq 'userEnrollment'")))).toEqual(new Set(['bravo-mac', 'echo-ipad']));
    expect(new Set(names(await list("$filter=complianceState ne 'compliant'")))).toEqual(new Set(['bravo-mac', 'delta-android', 'echo-ipad']));
    expect(new Set(names(await list("$filter=complianceState eq 'compliant' or complianceState eq 'inGracePeriod'")))).toEqual(new Set(['alpha-ipad', 'charlie-win', 'echo-ipad']));
    expect(new Set(names(await list("$filter=deviceType eq 'iPad'")))).toEqual(new Set(['alpha-ipad', 'echo-ipad']));
  });

  it('filters on operatingSystem and deviceCategoryDisplayName ignoring case', async () => {
    expect(new Set(names(await list("$filter=operatingSystem eq 'ios'")))).toEqual(new Set(['alpha-ipad', 'echo-ipad']));
    expect(names(await list("$filter=operatingSystem ne 'iOS' and operatingSystem ne 'macOS' and operatingSystem ne 'Windows'"))).toEqual(['delta-android']);
    expect(new Set(names(await list("$filter=deviceCategoryDisplayName eq 'Kiosks'")))).toEqual(new Set(['alpha-ipad', 'echo-ipad']));
    // ne is true for devices without a category (OData null semantics).
    expect(new Set(names(await list("$filter=deviceCategoryDisplayName ne 'kiosks'")))).toEqual(new Set(['bravo-mac', 'charlie-win', 'delta-android']));
  });

  it('filters deviceName and serialNumber with eq, startswith and contains', async () => {
    expect(names(await list("$filter=deviceName eq 'ALPHA-IPAD'"))).toEqual(['alpha-ipad']);
    expect(new Set(names(await list("$filter=contains(deviceName,'ipad')")))).toEqual(new Set(['alpha-ipad', 'echo-ipad']));
    expect(names(await list("$filter=startswith(deviceName,'ch')"))).toEqual(['charlie-win']);
    expect(names(await list("$filter=serialNumber eq 'serd004'"))).toEqual(['delta-android']);
    expect(names(await list("$filter=startswith(serialNumber,'SERB')"))).toEqual(['bravo-mac']);
    expect(names(await list("$filter=contains(serialNumber,'E005')"))).toEqual(['echo-ipad']);
    // LIKE wildcards in the value are literal.
    expect(names(await list(`$filter=${encodeURIComponent("contains(deviceName,'%')")}`))).toEqual([]);
    expect(names(await list(`$filter=${encodeURIComponent("startswith(deviceName,'_lpha')")}`))).toEqual([]);
  });

  it('filters enrolledDateTime and lastSyncDateTime with lt and gt (exclusive at the boundary)', async () => {
    expect(names(await list('$filter=enrolledDateTime lt 2026-01-02T00:00:00Z'))).toEqual(['alpha-ipad']);
    expect(names(await list('$filter=enrolledDateTime gt 2026-01-04T00:00:00Z'))).toEqual(['echo-ipad']);
    expect(new Set(names(await list('$filter=lastSyncDateTime gt 2026-01-01T00:00:00Z and lastSyncDateTime lt 2026-01-04T00:00:00Z')))).toEqual(
      new Set(['bravo-mac', 'charlie-win']),
    );
    expect(names(await list('$filter=enrolledDateTime lt 2026-01-01T00:00:00.001Z'))).toEqual(['alpha-ipad']);
  });

  it('refuses filters the model does not allow, naming the property', async () => {
    const cases = [
      ["$filter=managedDeviceOwnerType eq 'corporate'", 'managedDeviceOwnerType'],
      ["$filter=deviceEnrollmentType gt 'unknown'", 'deviceEnrollmentType'],
      ["$filter=contains(operatingSystem,'OS')", 'operatingSystem'],
      ["$filter=notes eq 'x'", 'notes'],
      ["$filter=enrolledDateTime eq 'soon'", 'enrolledDateTime'],
      ["$filter=colour eq 'red'", 'colour'],
      ["$filter=roleScopeTagIds eq '0'", 'roleScopeTagIds'],
    ];
    for (const [q, target] of cases) {
      const res = await get(`${DEVICES}?${q}`);
      expect(res.statusCode, q).toBe(400);
      expect(res.json().error.code).toBe('BadRequest');
      expect(res.json().error.message).toContain(target);
    }
  });

  it('orders, pages with nextLink and counts', async () => {
    expect(names(await list('$orderby=deviceName desc'))).toEqual(['echo-ipad', 'delta-android', 'charlie-win', 'bravo-mac', 'alpha-ipad']);
    expect(names(await list('$orderby=enrolledDateTime'))).toEqual(['alpha-ipad', 'bravo-mac', 'charlie-win', 'delta-android', 'echo-ipad']);
    const first = await list('$orderby=deviceName&$top=2&$count=true');
    expect(names(first)).toEqual(['alpha-ipad', 'bravo-mac']);
    expect(first['@odata.count']).toBe(5);
    const seen = [...names(first)];
    let next = first['@odata.nextLink'];
    while (next) {
      const res = await get(next.replace('http://openenroll.test', ''));
      const page = res.json() as Body;
      seen.push(...names(page));
      next = page['@odata.nextLink'];
    }
    expect(seen).toEqual(['alpha-ipad', 'bravo-mac', 'charlie-win', 'delta-android', 'echo-ipad']);
    expect(names(await list('$orderby=deviceName&$skip=4'))).toEqual(['echo-ipad']);
    const none = await list('$top=0&$count=true');
    expect(none.value).toEqual([]);
    expect(none['@odata.count']).toBe(5);
  });

  it('answers $count as plain text, honouring $filter', async () => {
    const all = await get(`${DEVICES}/$count`);
    expect(all.statusCode).toBe(200);
    expect(all.headers['content-type']).toMatch(/^text\/plain/);
    expect(all.body).toBe('5');
    expect((await get(`${DEVICES}/$count?$filter=operatingSystem eq 'iOS'`)).body).toBe('2');
  });

  it('applies $select to lists and single devices', async () => {
    const body = await list('$select=deviceName,serialNumber&$orderby=deviceName&$top=1');
    expect(body['@odata.context']).toBe('http://openenroll.test/beta/$metadata#deviceManagement/managedDevices(deviceName,serialNumber)');
    expect(body.value[0]).toEqual({ '@odata.type': '#microsoft.graph.managedDevice', deviceName: 'alpha-ipad', serialNumber: 'SERA001' });
    const id = (await list("$filter=deviceName eq 'bravo-mac'")).value[0]!.id as string;
    const one = await get(`${DEVICES}/${id}?$select=id,notes,udid`);
    expect(one.json()).toEqual({
      '@odata.context': 'http://openenroll.test/beta/$metadata#deviceManagement/managedDevices(id,notes,udid)/$entity',
      '@odata.type': '#microsoft.graph.managedDevice',
      id,
      notes: null,
      udid: null,
    });
    expect((await get(`${DEVICES}/${id}?$select=nope`)).statusCode).toBe(400);
  });

  it('gets one device by key segment or OData key, and 404s unknown ids', async () => {
    const id = (await list("$filter=deviceName eq 'charlie-win'")).value[0]!.id as string;
    const res = await get(`${DEVICES}/${id}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      '@odata.context': 'http://openenroll.test/beta/$metadata#deviceManagement/managedDevices/$entity',
      '@odata.type': '#microsoft.graph.managedDevice',
      id,
      deviceName: 'charlie-win',
    });
    expect((await get(`/beta/deviceManagement/managedDevices('${id}')`)).json().id).toBe(id);
    const missing = await get(`${DEVICES}/00000000-0000-0000-0000-000000000000`);
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('ResourceNotFound');
  });

  it('serves the same collection under v1.0', async () => {
    const res = await get('/v1.0/deviceManagement/managedDevices?$count=true&$top=1');
    expect(res.statusCode).toBe(200);
    expect(res.json()['@odata.context']).toBe('http://openenroll.test/v1.0/$metadata#deviceManagement/managedDevices');
    expect(res.json()['@odata.count']).toBe(5);
    expect(res.json()['@odata.nextLink']).toMatch(/^http:\/\/openenroll\.test\/v1\.0\/deviceManagement\/managedDevices\?.*\$skiptoken=/);
  });

  it('returns the deviceManagement singleton under beta and v1.0', async () => {
    for (const v of ['beta', 'v1.0']) {
      const res = await get(`/${v}/deviceManagement`);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({
        '@odata.context': `http://openenroll.test/${v}/$metadata#deviceManagement`,
        '@odata.type': '#microsoft.graph.deviceManagement',
        id: 'deviceManagement',
        intuneAccountId: t.tenantId,
        maximumDepTokens: 2000,
      });
    }
    const reader = await t.createKey('readOnlyOperator');
    expect((await get('/beta/deviceManagement', reader)).statusCode).toBe(200);
    expect((await t.request({ method: 'GET', url: '/beta/deviceManagement', key: null })).statusCode).toBe(401);
    const other = await t.createTenant('Other');
    expect((await get('/beta/deviceManagement', other.adminKey)).json().intuneAccountId).toBe(other.tenantId);
  });
});

describe('managedDevices: changing', () => {
  let t: TestApp;
  const changes: DeviceChange[] = [];
  beforeAll(async () => {
    t = await createTestApp();
    deviceRecords(t).onChange(async (_trx, change) => void changes.push(change));
  });
  afterAll(async () => t.close());

  const patch = (id: string, payload: unknown, key?: string) =>
    t.request({ method: 'PATCH', url: `${DEVICES}/${id}`, payload: payload as Record<string, unknown>, ...(key ? { key } : {}) });
  const auditOf = async (id: string) => {
    const res = await t.request({ method: 'GET', url: `/beta/deviceManagement/auditEvents?$filter=resources/resourceId eq '${id}'&$orderby=activityDateTime` });
    expect(res.statusCode).toBe(200);
    return (res.json() as Body).value;
  };

  it('patches the admin-writable properties, returns the device and audits before and after', async () => {
    const { device } = await enroll(t, { serialNumber: serial(), deviceName: 'lobby-ipad', managedDeviceOwnerType: 'personal' });
    changes.length = 0;
    const res = await patch(device.id, {
      '@odata.type': '#microsoft.graph.managedDevice',
      managedDeviceName: 'Lobby kiosk',
      notes: 'Front desk',
      managedDeviceOwnerType: 'company',
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({
      '@odata.context': 'http://openenroll.test/beta/$metadata#deviceManagement/managedDevices/$entity',
      id: device.id,
      managedDeviceName: 'Lobby kiosk',
      notes: 'Front desk',
      managedDeviceOwnerType: 'company',
      ownerType: 'company',
    });
    const again = (await t.request({ method: 'GET', url: `${DEVICES}/${device.id}` })).json();
    expect(again).toMatchObject({ managedDeviceName: 'Lobby kiosk', notes: 'Front desk', managedDeviceOwnerType: 'company' });

    expect(changes).toHaveLength(1);
    expect(changes[0]!.before).toMatchObject({ managed_device_owner_type: 'personal', notes: null });
    expect(changes[0]!.after).toMatchObject({ managed_device_owner_type: 'company', notes: 'Front desk' });

    const events = await auditOf(device.id);
    const patchEvent = events.find((e) => e.activity === 'Patch managed device')!;
    expect(patchEvent).toMatchObject({ category: 'Device', componentName: 'DeviceManagement', activityOperationType: 'Patch', activityResult: 'Success' });
    expect(patchEvent.correlationId).toBe(res.headers['request-id']);
    const resources = patchEvent.resources as { resourceId: string; modifiedProperties: { displayName: string; oldValue: string | null; newValue: string | null }[] }[];
    expect(resources[0]!.resourceId).toBe(device.id);
    expect(resources[0]!.modifiedProperties).toEqual(
      expect.arrayContaining([
        { displayName: 'notes', oldValue: null, newValue: 'Front desk' },
        { displayName: 'managedDeviceOwnerType', oldValue: 'personal', newValue: 'company' },
        { displayName: 'managedDeviceName', oldValue: device.managedDeviceName, newValue: 'Lobby kiosk' },
      ]),
    );
    expect(resources[0]!.modifiedProperties.map((p) => p.displayName)).not.toContain('serialNumber');
  });

  it('resets managedDeviceName to the generated name when patched to null', async () => {
    const { device } = await enroll(t, { serialNumber: serial(), deviceType: 'iPhone', userPrincipalName: 'lee@contoso.com' });
    await patch(device.id, { managedDeviceName: 'Custom' });
    const res = await patch(device.id, { managedDeviceName: null });
    expect(res.json().managedDeviceName).toBe(device.managedDeviceName);
  });

  it('keeps only a partial phone number once a device becomes personal', async () => {
    const { device } = await enroll(t, { serialNumber: serial(), managedDeviceOwnerType: 'company', phoneNumber: '+14255550100' });
    const res = await patch(device.id, { ownerType: 'personal' });
    expect(res.json()).toMatchObject({ managedDeviceOwnerType: 'personal', phoneNumber: '*******0100' });
    // Back to corporate doesn't bring the number back.
    expect((await patch(device.id, { managedDeviceOwnerType: 'company' })).json().phoneNumber).toBe('*******0100');
  });

  it('refuses read-only and unknown properties with a 400 naming them, changing nothing', async () => {
    const { device } = await enroll(t, { serialNumber: serial(), deviceName: 'ro' });
    for (const [payload, target, message] of [
      [{ serialNumber: 'X' }, 'serialNumber', "Property 'serialNumber' is read-only and can't be changed."],
      [{ deviceName: 'renamed', notes: 'n' }, 'deviceName', "Property 'deviceName' is read-only"],
      [{ enrolledDateTime: '2020-01-01T00:00:00Z' }, 'enrolledDateTime', 'read-only'],
      [{ complianceState: 'compliant' }, 'complianceState', 'read-only'],
      [{ deviceEnrollmentType: 'userEnrollment' }, 'deviceEnrollmentType', 'read-only'],
      [{ jailBroken: 'False' }, 'jailBroken', 'read-only'],
      [{ favouriteColour: 'red' }, 'favouriteColour', 'not a known property'],
      [{ managedDeviceOwnerType: 'corporate' }, 'managedDeviceOwnerType', "'company' or 'personal'"],
      [{ notes: 42 }, 'notes', 'string'],
    ] as const) {
      const res = await patch(device.id, payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error.code).toBe('BadRequest');
      expect(res.json().error.target).toBe(target);
      expect(res.json().error.message).toContain(message);
    }
    const after = (await t.request({ method: 'GET', url: `${DEVICES}/${device.id}` })).json();
    expect(after).toMatchObject({ deviceName: 'ro', notes: null, serialNumber: device.serialNumber });
    expect((await t.request({ method: 'PATCH', url: `${DEVICES}/${device.id}`, payload: 'not json', headers: { 'content-type': 'application/json' } })).statusCode).toBe(400);
    expect((await t.request({ method: 'PATCH', url: `${DEVICES}/${device.id}`, payload: '[1]', headers: { 'content-type': 'application/json' } })).statusCode).toBe(400);
  });

  it('changes scope tags, refusing unknown ones', async () => {
    const tag = (await t.request({ method: 'POST', url: '/beta/deviceManagement/roleScopeTags', payload: { displayName: 'Paris' } })).json().id as string;
    const { device } = await enroll(t, { serialNumber: serial() });
    const res = await patch(device.id, { roleScopeTagIds: [tag, '0'] });
    expect(res.statusCode).toBe(200);
    expect(res.json().roleScopeTagIds).toEqual(['0', tag]);
    const bad = await patch(device.id, { roleScopeTagIds: ['4242'] });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.target).toBe('roleScopeTagIds');
    // An empty list puts the device back on Default, as on creation.
    expect((await patch(device.id, { roleScopeTagIds: [] })).json().roleScopeTagIds).toEqual(['0']);
  });

  it('404s a PATCH or DELETE of an unknown device', async () => {
    expect((await patch('nope', { notes: 'x' })).statusCode).toBe(404);
    expect((await t.request({ method: 'DELETE', url: `${DEVICES}/nope` })).statusCode).toBe(404);
  });

  it('deletes a device: 204, gone, tags removed, listeners told, audited with the old values', async () => {
    const { device } = await enroll(t, { serialNumber: serial(), deviceName: 'to-delete' });
    changes.length = 0;
    const res = await t.request({ method: 'DELETE', url: `${DEVICES}/${device.id}` });
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe('');
    expect((await t.request({ method: 'GET', url: `${DEVICES}/${device.id}` })).statusCode).toBe(404);
    expect((await t.request({ method: 'DELETE', url: `${DEVICES}/${device.id}` })).statusCode).toBe(404);
    expect(await t.store.db.selectFrom('object_scope_tags').selectAll().where('object_id', '=', device.id).execute()).toEqual([]);
    expect(changes).toHaveLength(1);
    expect(changes[0]!.before).toMatchObject({ id: device.id, device_name: 'to-delete' });
    expect(changes[0]!.after).toBeNull();
    const del = (await auditOf(device.id)).find((e) => e.activity === 'Delete managed device')!;
    expect(del.activityOperationType).toBe('Delete');
    const props = (del.resources as { modifiedProperties: { displayName: string; oldValue: string | null; newValue: string | null }[] }[])[0]!.modifiedProperties;
    expect(props).toContainEqual({ displayName: 'deviceName', oldValue: 'to-delete', newValue: null });
    // Enrolling the same hardware again makes a new record.
    const back = await enroll(t, { serialNumber: device.serialNumber });
    expect(back.created).toBe(true);
  });

  it('rolls a PATCH back when a listener fails', async () => {
    const { device } = await enroll(t, { serialNumber: serial() });
    const off = deviceRecords(t).onChange(async () => {
      throw new Error('boom');
    });
    try {
      const res = await patch(device.id, { notes: 'never saved' });
      expect(res.statusCode).toBe(500);
      expect(res.json().error.message).not.toContain('boom');
    } finally {
      off();
    }
    expect((await t.request({ method: 'GET', url: `${DEVICES}/${device.id}` })).json().notes).toBeNull();
    expect((await auditOf(device.id)).map((e) => e.activity)).toEqual(['Create managed device']);
  });

  it('lists the primary user as a collection of users', async () => {
    const now = t.clock.now().toISOString();
    await t.store.db
      .insertInto('users')
      .values({
        id: 'u-adele',
        tenant_id: t.tenantId,
        user_principal_name: 'AdeleV@contoso.com',
        upn_lower: 'adelev@contoso.com',
        display_name: 'Adele Vance',
        given_name: 'Adele',
        surname: 'Vance',
        mail: 'AdeleV@contoso.com',
        mail_nickname: 'AdeleV',
        account_enabled: 1,
        job_title: null,
        department: 'Retail',
        office_location: null,
        mobile_phone: null,
        usage_location: 'US',
        user_type: 'Member',
        employee_id: null,
        password_hash: 'secret-hash',
        force_change_password: 0,
        device_enrollment_limit: null,
        created_at: now,
        updated_at: now,
      })
      .execute();
    const { device } = await enroll(t, { serialNumber: serial(), userId: 'u-adele', userPrincipalName: 'AdeleV@contoso.com' });
    const res = await t.request({ method: 'GET', url: `${DEVICES}/${device.id}/users` });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      '@odata.context': 'http://openenroll.test/beta/$metadata#users',
      value: [
        expect.objectContaining({ '@odata.type': '#microsoft.graph.user', id: 'u-adele', userPrincipalName: 'AdeleV@contoso.com', displayName: 'Adele Vance', accountEnabled: true }),
      ],
    });
    expect(res.body).not.toContain('secret-hash');
    const selected = await t.request({ method: 'GET', url: `/v1.0/deviceManagement/managedDevices('${device.id}')/users?$select=displayName` });
    expect(selected.json().value).toEqual([{ '@odata.type': '#microsoft.graph.user', displayName: 'Adele Vance' }]);

    const userless = await enroll(t, { serialNumber: serial() });
    expect((await t.request({ method: 'GET', url: `${DEVICES}/${userless.device.id}/users` })).json().value).toEqual([]);
    expect((await t.request({ method: 'GET', url: `${DEVICES}/nope/users` })).statusCode).toBe(404);
  });
});

describe('managedDevices: tenants and roles', () => {
  let t: TestApp;
  let other: { tenantId: string; adminKey: string };
  let mine: string;
  beforeAll(async () => {
    t = await createTestApp();
    other = await t.createTenant('Fabrikam');
    mine = (await enroll(t, { serialNumber: 'TENANT-A-1', deviceName: 'contoso-1' })).device.id;
    await enroll(t, { serialNumber: 'TENANT-B-1', deviceName: 'fabrikam-1' }, other.tenantId);
  });
  afterAll(async () => t.close());

  it("keeps another tenant's devices invisible: absent from lists and counts, 404 on every operation", async () => {
    const key = other.adminKey;
    const listed = await t.request({ method: 'GET', url: `${DEVICES}?$count=true`, key });
    expect(listed.json()['@odata.count']).toBe(1);
    expect(names(listed.json())).toEqual(['fabrikam-1']);
    expect((await t.request({ method: 'GET', url: `${DEVICES}/$count`, key })).body).toBe('1');
    expect((await t.request({ method: 'GET', url: `${DEVICES}?$filter=serialNumber eq 'TENANT-A-1'`, key })).json().value).toEqual([]);
    expect((await t.request({ method: 'GET', url: `${DEVICES}/${mine}`, key })).statusCode).toBe(404);
    expect((await t.request({ method: 'GET', url: `${DEVICES}/${mine}/users`, key })).statusCode).toBe(404);
    expect((await t.request({ method: 'PATCH', url: `${DEVICES}/${mine}`, payload: { notes: 'x' }, key })).statusCode).toBe(404);
    expect((await t.request({ method: 'DELETE', url: `${DEVICES}/${mine}`, key })).statusCode).toBe(404);
    // Still there, untouched, for its own tenant.
    const own = await t.request({ method: 'GET', url: `${DEVICES}/${mine}` });
    expect(own.json()).toMatchObject({ deviceName: 'contoso-1', notes: null });
    expect(names((await t.request({ method: 'GET', url: DEVICES })).json())).toEqual(['contoso-1']);
  });

  it('lets a readOnlyOperator read but not change devices', async () => {
    const reader = await t.createKey('readOnlyOperator');
    expect((await t.request({ method: 'GET', url: DEVICES, key: reader })).statusCode).toBe(200);
    expect((await t.request({ method: 'GET', url: `${DEVICES}/${mine}`, key: reader })).statusCode).toBe(200);
    expect((await t.request({ method: 'GET', url: `${DEVICES}/$count`, key: reader })).statusCode).toBe(200);
    const p = await t.request({ method: 'PATCH', url: `${DEVICES}/${mine}`, payload: { notes: 'x' }, key: reader });
    expect(p.statusCode).toBe(403);
    expect(p.json().error.code).toBe('Forbidden');
    expect((await t.request({ method: 'DELETE', url: `${DEVICES}/${mine}`, key: reader })).statusCode).toBe(403);
    expect((await t.request({ method: 'GET', url: `${DEVICES}/${mine}` })).json().notes).toBeNull();
  });

  it('lets a scopedAdministrator change devices', async () => {
    const scoped = await t.createKey('scopedAdministrator', ['0']);
    const res = await t.request({ method: 'PATCH', url: `${DEVICES}/${mine}`, payload: { notes: 'by scoped admin' }, key: scoped });
    expect(res.statusCode).toBe(200);
    expect(res.json().notes).toBe('by scoped admin');
  });

  it('refuses callers without a key', async () => {
    expect((await t.request({ method: 'GET', url: DEVICES, key: null })).statusCode).toBe(401);
    expect((await t.request({ method: 'DELETE', url: `${DEVICES}/${mine}`, key: null })).statusCode).toBe(401);
  });
});
