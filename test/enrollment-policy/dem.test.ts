import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDemEnrollment, demDeviceRecord } from '../../src/enrollment-policy/dem/rules.js';
import { demEnrolledCount, demEnrolledCounts, isDeviceEnrollmentManager } from '../../src/enrollment-policy/dem/service.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { deviceRow } from '../directory/helpers.js';
import { enroll, serial } from '../devices/fixtures.js';

const BASE = '/beta/deviceManagement/deviceEnrollmentManagers';

describe('device enrollment managers (OpenEnroll extension)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  const createUser = async (upn: string, key?: string) => {
    const res = await t.request({ method: 'POST', url: '/v1.0/users', payload: { userPrincipalName: upn, displayName: upn.split('@')[0] }, ...(key ? { key } : {}) });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().id as string;
  };
  const add = (payload: Record<string, unknown>, key?: string) => t.request({ method: 'POST', url: BASE, payload, ...(key ? { key } : {}) });
  const unique = () => crypto.randomBytes(4).toString('hex');

  it('adds a user by userPrincipalName or userId, lists, reads, counts and removes', async () => {
    const upn = `dem-${unique()}@contoso.com`;
    const userId = await createUser(upn);
    const res = await add({ userPrincipalName: upn.toUpperCase() });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toEqual({
      '@odata.context': 'http://openenroll.test/beta/$metadata#deviceManagement/deviceEnrollmentManagers/$entity',
      '@odata.type': '#microsoft.graph.openEnrollDeviceEnrollmentManager',
      id: userId,
      userId,
      userPrincipalName: upn,
      displayName: upn.split('@')[0],
      createdDateTime: t.clock.now().toISOString(),
      enrolledDeviceCount: 0,
    });
    expect((await t.request({ method: 'GET', url: `${BASE}/${upn}` })).json().id).toBe(userId);
    const list = (await t.request({ method: 'GET', url: `${BASE}?$filter=userPrincipalName eq '${upn}'` })).json();
    expect(list.value).toHaveLength(1);
    expect(await isDeviceEnrollmentManager(t.store.db, t.tenantId, userId)).toBe(true);

    const again = await add({ userId });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.target).toBe('userId');

    expect((await t.request({ method: 'DELETE', url: `${BASE}/${userId}` })).statusCode).toBe(204);
    expect((await t.request({ method: 'GET', url: `${BASE}/${userId}` })).statusCode).toBe(404);
    expect(await isDeviceEnrollmentManager(t.store.db, t.tenantId, userId)).toBe(false);
    expect((await add({ userId })).statusCode).toBe(201);
    const audit = await t.store.db.selectFrom('audit_events').select(['activity', 'category']).where('resource_id', '=', userId).where('category', '=', 'Enrollment').orderBy('activity_date_time').execute();
    expect(audit.map((a) => a.activity)).toEqual(['Create device enrollment manager', 'Delete device enrollment manager', 'Create device enrollment manager']);
  });

  it.each([
    [{ userPrincipalName: 'nobody@contoso.com' }, 'userPrincipalName', /No user with userPrincipalName 'nobody@contoso.com'/],
    [{ userId: 'not-a-user' }, 'userId', /No user with userId/],
    [{}, 'userPrincipalName', /exactly one/],
    [{ userId: 'x', userPrincipalName: 'y@contoso.com' }, 'userId', /exactly one/],
    [{ upn: 'x' }, 'upn', /not a known property/],
  ])('refuses %j naming %s', async (payload, target, message) => {
    const res = await add(payload);
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ target, message: expect.stringMatching(message) });
  });

  it('takes a 150th account and refuses the 151st; accounts of deleted users stop counting', async () => {
    const fresh = await t.createTenant('DEM limits');
    const key = fresh.adminKey;
    const upns = Array.from({ length: 151 }, (_, i) => `dem${i}@limits.test`);
    const imported = await t.request({
      method: 'POST',
      url: '/v1.0/users/importCsv',
      key,
      headers: { 'content-type': 'text/csv' },
      payload: `userPrincipalName,displayName\n${upns.map((u) => `${u},${u.split('@')[0]}`).join('\n')}`,
    });
    expect(imported.statusCode, imported.body).toBe(200);
    for (const upn of upns.slice(0, 150)) expect((await add({ userPrincipalName: upn }, key)).statusCode).toBe(201);
    expect((await t.request({ method: 'GET', url: `${BASE}/$count`, key })).body).toBe('150');
    const refused = await add({ userPrincipalName: upns[150] }, key);
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.message).toMatch(/already has 150 device enrollment managers/);

    // A page of 100 with a link to the rest.
    const page = (await t.request({ method: 'GET', url: BASE, key })).json();
    expect(page.value).toHaveLength(100);
    expect(page['@odata.nextLink']).toContain('$skiptoken=');

    expect((await t.request({ method: 'DELETE', url: `/v1.0/users/${upns[0]}`, key })).statusCode).toBe(204);
    expect((await t.request({ method: 'GET', url: `${BASE}/$count`, key })).body).toBe('149');
    expect((await add({ userPrincipalName: upns[150] }, key)).statusCode).toBe(201);
  });

  it('counts the devices a DEM enrolled (userless, by enrolledByUserPrincipalName), and the 1,000/1,001 boundary', async () => {
    const upn = `counter-${unique()}@contoso.com`;
    const userId = await createUser(upn);
    await add({ userId });
    // DEM devices as an enrollment path writes them, through DeviceRecords.
    const first = await enroll(t, { serialNumber: serial(), operatingSystem: 'iOS', deviceType: 'iPhone', ...demDeviceRecord({ userPrincipalName: upn.toUpperCase() }) });
    expect(first.device).toMatchObject({ userId: null, userPrincipalName: null, enrolledByUserPrincipalName: upn.toUpperCase(), deviceEnrollmentType: 'deviceEnrollmentManager', managedDeviceOwnerType: 'company' });
    await enroll(t, { serialNumber: serial(), operatingSystem: 'Android', deviceType: 'androidForWork', ...demDeviceRecord({ userPrincipalName: upn }) });
    // Not counted: a user-driven device of the same person, another DEM's device.
    await enroll(t, { serialNumber: serial(), deviceEnrollmentType: 'userEnrollment', userId, userPrincipalName: upn, enrolledByUserPrincipalName: upn });
    await enroll(t, { serialNumber: serial(), ...demDeviceRecord({ userPrincipalName: 'someone.else@contoso.com' }) });
    expect(await demEnrolledCounts(t.store.db, t.tenantId, userId)).toEqual({ devices: 2, androidWorkProfileDevices: 1 });
    expect((await t.request({ method: 'GET', url: `${BASE}/${userId}` })).json().enrolledDeviceCount).toBe(2);

    // Up to 999: one more is allowed; at 1,000 the 1,001st is refused.
    const rows = (n: number) => Array.from({ length: n }, () => deviceRow(t.tenantId, { device_enrollment_type: 'deviceEnrollmentManager', enrolled_by_user_principal_name: upn, device_type: 'desktop' }));
    for (const chunk of [rows(400), rows(400), rows(197)]) {
      for (let i = 0; i < chunk.length; i += 50) await t.store.db.insertInto('managed_devices').values(chunk.slice(i, i + 50)).execute();
    }
    const at999 = await demEnrolledCount(t.store.db, t.tenantId, userId);
    expect(at999).toBe(999);
    expect(checkDemEnrollment({ method: 'windowsBulk', enrolledCount: at999, androidWorkProfileCount: 1 }).allowed).toBe(true);
    await enroll(t, { serialNumber: serial(), ...demDeviceRecord({ userPrincipalName: upn }) });
    const at1000 = await demEnrolledCount(t.store.db, t.tenantId, userId);
    expect(at1000).toBe(1000);
    expect(checkDemEnrollment({ method: 'windowsBulk', enrolledCount: at1000, androidWorkProfileCount: 1 })).toMatchObject({ allowed: false, reason: 'demLimitReached' });
    expect((await t.request({ method: 'GET', url: `${BASE}/${userId}` })).json().enrolledDeviceCount).toBe(1000);
    expect(await demEnrolledCount(t.store.db, t.tenantId, 'no-such-user')).toBe(0);
  });

  it('lets only unscoped administrators manage DEMs; readers may list', async () => {
    const upn = `roles-${unique()}@contoso.com`;
    await createUser(upn);
    const reader = await t.createKey('readOnlyOperator');
    const scoped = await t.createKey('scopedAdministrator', ['0']);
    expect((await add({ userPrincipalName: upn }, reader)).statusCode).toBe(403);
    expect((await add({ userPrincipalName: upn }, scoped)).statusCode).toBe(403);
    expect((await t.request({ method: 'GET', url: BASE, key: reader })).statusCode).toBe(200);
    const created = await add({ userPrincipalName: upn });
    expect((await t.request({ method: 'DELETE', url: `${BASE}/${created.json().id}`, key: scoped })).statusCode).toBe(403);
    expect((await t.request({ method: 'GET', url: '/v1.0/deviceManagement/deviceEnrollmentManagers' })).statusCode).toBe(404);
  });

  it('keeps tenants apart', async () => {
    const upn = `iso-${unique()}@contoso.com`;
    const userId = await createUser(upn);
    await add({ userId });
    const other = await t.createTenant('Other DEM tenant');
    expect((await t.request({ method: 'GET', url: `${BASE}/${userId}`, key: other.adminKey })).statusCode).toBe(404);
    expect((await t.request({ method: 'DELETE', url: `${BASE}/${userId}`, key: other.adminKey })).statusCode).toBe(404);
    expect((await add({ userId }, other.adminKey)).statusCode).toBe(400); // not a user of that tenant
    expect((await t.request({ method: 'GET', url: BASE, key: other.adminKey })).json().value).toEqual([]);
    expect(await isDeviceEnrollmentManager(t.store.db, other.tenantId, userId)).toBe(false);
  });
});
