import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { categoryNameProblem } from '../../src/enrollment-policy/categories/rules.js';
import type { DeviceCategoryService } from '../../src/enrollment-policy/categories/service.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { createTag, DEVICES, deviceRecords, enroll, serial } from '../devices/fixtures.js';

const BASE = '/beta/deviceManagement/deviceCategories';
const V1 = '/v1.0/deviceManagement/deviceCategories';

describe('category name rules', () => {
  it.each([
    ['HR', undefined],
    ['x'.repeat(128), undefined],
    ['x'.repeat(129), 'must be at most 128 characters.'],
    ['  ', 'must not be empty.'],
    ['unassigned', "'Unassigned' is reserved for devices without a category."],
    ['a\u0007b', 'must not contain control characters.'],
  ])('%j → %s', (name, problem) => {
    expect(categoryNameProblem(name)).toBe(problem);
  });
});

describe('device categories', () => {
  let t: TestApp;
  let n = 0;
  const name = (base: string) => `${base}-${++n}`;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  const req = (method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE', url: string, payload?: unknown, key?: string) =>
    t.request({ method, url, ...(payload !== undefined ? { payload: payload as object } : {}), ...(key ? { key } : {}) });
  const createCategory = async (displayName: string, extra: Record<string, unknown> = {}, key?: string) => {
    const res = await req('POST', BASE, { displayName, ...extra }, key);
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; displayName: string; roleScopeTagIds: string[] };
  };
  const ref = (categoryId: string) => ({ '@odata.id': `https://graph.microsoft.com/beta/deviceManagement/deviceCategories/${categoryId}` });
  const assign = (deviceId: string, categoryId: string, key?: string) => req('PUT', `${DEVICES}/${deviceId}/deviceCategory/$ref`, ref(categoryId), key);
  const device = async (deviceId: string) => (await req('GET', `${DEVICES}/${deviceId}`)).json();
  const members = async (groupId: string) => (await req('GET', `/v1.0/groups/${groupId}/members`)).json().value.map((m: { id: string }) => m.id);
  const dynamicGroup = async (rule: string) => {
    const res = await req('POST', '/v1.0/groups', {
      displayName: `Group ${rule}`,
      mailEnabled: false,
      mailNickname: `g${++n}`,
      securityEnabled: true,
      groupTypes: ['DynamicMembership'],
      membershipRule: rule,
      membershipRuleProcessingState: 'On',
    });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().id as string;
  };

  it('creates, reads, lists, patches and deletes on beta and v1.0, with scope tags', async () => {
    const created = await createCategory(name('Sales'), { description: 'Sales team' });
    expect(created).toEqual({
      '@odata.context': 'http://openenroll.test/beta/$metadata#deviceManagement/deviceCategories/$entity',
      '@odata.type': '#microsoft.graph.deviceCategory',
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      displayName: created.displayName,
      description: 'Sales team',
      roleScopeTagIds: ['0'],
    });
    const v1 = await req('GET', `${V1}/${created.id}`);
    expect(v1.json()).toMatchObject({ '@odata.context': 'http://openenroll.test/v1.0/$metadata#deviceManagement/deviceCategories/$entity', id: created.id });
    expect((await req('GET', `${V1}?$filter=displayName eq '${created.displayName.toUpperCase()}'`)).json().value).toHaveLength(1);
    expect((await req('GET', `${BASE}/$count`)).statusCode).toBe(200);
    const patched = await req('PATCH', `${V1}/${created.id}`, { description: null, id: created.id });
    expect(patched.json()).toMatchObject({ description: null, displayName: created.displayName });
    expect((await req('DELETE', `${V1}/${created.id}`)).statusCode).toBe(204);
    expect((await req('GET', `${BASE}/${created.id}`)).statusCode).toBe(404);
    const audit = await t.store.db.selectFrom('audit_events').select('activity').where('resource_id', '=', created.id).orderBy('activity_date_time').execute();
    expect(audit.map((a) => a.activity)).toEqual(['Create device category', 'Patch device category', 'Delete device category']);
  });

  it('keeps names unique without regard to case and refuses bad names', async () => {
    const hr = name('Finance');
    await createCategory(hr);
    const dup = await req('POST', BASE, { displayName: hr.toLowerCase() });
    expect(dup.statusCode).toBe(409);
    expect(dup.json().error.target).toBe('displayName');
    const other = await createCategory(name('Legal'));
    expect((await req('PATCH', `${BASE}/${other.id}`, { displayName: hr.toUpperCase() })).statusCode).toBe(409);
    for (const [displayName, message] of [
      ['x'.repeat(129), /at most 128/],
      ['Unassigned', /reserved/],
      ['', /displayName/],
    ] as const) {
      const res = await req('POST', BASE, { displayName });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({ target: 'displayName', message: expect.stringMatching(message) });
    }
    expect((await createCategory('y'.repeat(128))).displayName).toHaveLength(128);
    expect((await req('POST', BASE, { description: 'no name' })).statusCode).toBe(400);
  });

  it('assigns a category to a device by $ref, which feeds dynamic groups; rename and delete follow', async () => {
    const hrName = name('HR');
    const hr = await createCategory(hrName);
    const hrGroup = await dynamicGroup(`device.deviceCategory -eq "${hrName}"`);
    const unassignedGroup = await dynamicGroup('device.deviceCategory -eq "Unassigned"');
    const { device: d } = await enroll(t, { serialNumber: serial(), operatingSystem: 'iOS', deviceType: 'iPhone', deviceName: 'Phone' });
    expect(await members(hrGroup)).toEqual([]);

    expect((await assign(d.id, hr.id)).statusCode).toBe(204);
    expect((await device(d.id)).deviceCategoryDisplayName).toBe(hrName);
    expect(await members(hrGroup)).toEqual([d.id]);
    const nav = await req('GET', `${DEVICES}/${d.id}/deviceCategory`);
    expect(nav.json()).toMatchObject({ '@odata.type': '#microsoft.graph.deviceCategory', id: hr.id, displayName: hrName });
    expect((await req('GET', `${DEVICES}('${d.id}')/deviceCategory/$ref`)).json()['@odata.id']).toBe(`http://openenroll.test/beta/deviceManagement/deviceCategories/${hr.id}`);
    const audit = await t.store.db.selectFrom('audit_events').select(['activity', 'category']).where('resource_id', '=', d.id).where('activity', '=', 'Set managed device category').execute();
    expect(audit).toEqual([{ activity: 'Set managed device category', category: 'Device' }]);

    // Renaming reaches the device and its groups (the admin updates rules, as the seed warns).
    const renamed = `${hrName}-People`;
    const peopleGroup = await dynamicGroup(`device.deviceCategory -eq "${renamed}"`);
    expect((await req('PATCH', `${BASE}/${hr.id}`, { displayName: renamed })).statusCode).toBe(200);
    expect((await device(d.id)).deviceCategoryDisplayName).toBe(renamed);
    expect(await members(hrGroup)).toEqual([]);
    expect(await members(peopleGroup)).toEqual([d.id]);

    // Deleting the category leaves the device Unassigned.
    expect((await req('DELETE', `${BASE}/${hr.id}`)).statusCode).toBe(204);
    expect((await device(d.id)).deviceCategoryDisplayName).toBe('Unassigned');
    const row = await t.store.db.selectFrom('managed_devices').select(['device_category_id', 'device_category_display_name']).where('id', '=', d.id).executeTakeFirstOrThrow();
    expect(row).toEqual({ device_category_id: null, device_category_display_name: 'Unassigned' });
    expect(await members(peopleGroup)).toEqual([]);
    expect(await members(unassignedGroup)).toContain(d.id);
    expect((await req('GET', `${DEVICES}/${d.id}/deviceCategory`)).json()).toMatchObject({ id: '00000000-0000-0000-0000-000000000000', displayName: 'Unassigned' });
    expect((await req('GET', `${DEVICES}/${d.id}/deviceCategory/$ref`)).statusCode).toBe(404);
  });

  it('unassigns by DELETE $ref and refuses a reference that is not a category', async () => {
    const cat = await createCategory(name('Kiosk'));
    const { device: d } = await enroll(t, { serialNumber: serial(), operatingSystem: 'Android' });
    expect((await req('GET', `${DEVICES}/${d.id}/deviceCategory`)).json().displayName).toBe('Unassigned');
    await assign(d.id, cat.id);
    expect((await req('DELETE', `${DEVICES}/${d.id}/deviceCategory/$ref`)).statusCode).toBe(204);
    expect((await device(d.id)).deviceCategoryDisplayName).toBe('Unassigned');
    const wrong = await req('PUT', `${DEVICES}/${d.id}/deviceCategory/$ref`, { '@odata.id': `https://graph.microsoft.com/v1.0/users/${cat.id}` });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json().error.target).toBe('@odata.id');
    expect((await assign(d.id, 'no-such-category')).statusCode).toBe(404);
    expect((await assign('no-such-device', cat.id)).statusCode).toBe(404);
    expect((await req('PUT', `${DEVICES}/${d.id}/deviceCategory/$ref`, { '@odata.id': `https://graph.microsoft.com/beta/deviceManagement/deviceCategories('${cat.id}')` })).statusCode).toBe(204);
    // The device's own PATCH still treats the category as read-only.
    expect((await req('PATCH', `${DEVICES}/${d.id}`, { deviceCategoryDisplayName: 'x' })).statusCode).toBe(400);
  });

  it('sets the category chosen at enrollment in the enrollment transaction', async () => {
    const catName = name('Field');
    const cat = await createCategory(catName);
    const group = await dynamicGroup(`device.deviceCategory -eq "${catName}"`);
    const categories = (t.app.modules.find((m) => m.name === 'device-categories') as unknown as { categories: DeviceCategoryService }).categories;
    const deviceId = await t.store.transaction(async (trx) => {
      const { device } = await deviceRecords(t).upsert(trx, t.tenantId, { serialNumber: serial(), operatingSystem: 'Windows' });
      await categories.setDeviceCategoryAtEnrollment(trx, t.tenantId, device.id, cat.id);
      return device.id;
    });
    expect((await device(deviceId)).deviceCategoryDisplayName).toBe(catName);
    expect(await members(group)).toEqual([deviceId]);
    await expect(
      t.store.transaction(async (trx) => {
        const { device } = await deviceRecords(t).upsert(trx, t.tenantId, { serialNumber: serial() });
        await categories.setDeviceCategoryAtEnrollment(trx, t.tenantId, device.id, 'missing');
      }),
    ).rejects.toMatchObject({ statusCode: 400, options: { target: 'deviceCategoryId' } });
  });

  it('limits scoped administrators to categories and devices within their tags', async () => {
    const tag = await createTag(t, name('Region'));
    const scoped = await t.createKey('scopedAdministrator', [tag]);
    const hidden = await createCategory(name('Hidden'));
    const mine = await createCategory(name('Mine'), {}, scoped);
    expect(mine.roleScopeTagIds).toEqual([tag]);
    const list = (await req('GET', BASE, undefined, scoped)).json().value.map((c: { id: string }) => c.id);
    expect(list).toEqual([mine.id]);
    expect((await req('GET', `${BASE}/${hidden.id}`, undefined, scoped)).statusCode).toBe(404);
    expect((await req('DELETE', `${BASE}/${hidden.id}`, undefined, scoped)).statusCode).toBe(404);
    expect((await req('POST', BASE, { displayName: name('Elsewhere'), roleScopeTagIds: ['0'] }, scoped)).statusCode).toBe(403);

    const { device: mineDevice } = await enroll(t, { serialNumber: serial(), roleScopeTagIds: [tag] });
    const { device: otherDevice } = await enroll(t, { serialNumber: serial() });
    expect((await assign(mineDevice.id, hidden.id, scoped)).statusCode).toBe(404);
    expect((await assign(otherDevice.id, mine.id, scoped)).statusCode).toBe(404);
    expect((await assign(mineDevice.id, mine.id, scoped)).statusCode).toBe(204);

    // Tags the scoped admin can't see stay on a category it edits.
    await req('PATCH', `${BASE}/${mine.id}`, { roleScopeTagIds: [tag, '0'] });
    const edited = await req('PATCH', `${BASE}/${mine.id}`, { roleScopeTagIds: [tag] }, scoped);
    expect(edited.json().roleScopeTagIds).toEqual(['0', tag]);
  });

  it('needs enrollment permissions for categories and device permissions for a device category', async () => {
    const reader = await t.createKey('readOnlyOperator');
    const cat = await createCategory(name('Perm'));
    const { device: d } = await enroll(t, { serialNumber: serial() });
    expect((await req('GET', BASE, undefined, reader)).statusCode).toBe(200);
    expect((await req('POST', BASE, { displayName: name('Nope') }, reader)).statusCode).toBe(403);
    expect((await req('GET', `${DEVICES}/${d.id}/deviceCategory`, undefined, reader)).statusCode).toBe(200);
    expect((await assign(d.id, cat.id, reader)).statusCode).toBe(403);
    expect((await req('DELETE', `${DEVICES}/${d.id}/deviceCategory/$ref`, undefined, reader)).statusCode).toBe(403);
  });

  it('keeps tenants apart', async () => {
    const cat = await createCategory(name('Ours'));
    const { device: d } = await enroll(t, { serialNumber: serial() });
    const other = await t.createTenant('Other categories');
    const { device: theirDevice } = await enroll(t, { serialNumber: serial() }, other.tenantId);
    expect((await req('GET', `${BASE}/${cat.id}`, undefined, other.adminKey)).statusCode).toBe(404);
    expect((await req('PATCH', `${BASE}/${cat.id}`, { displayName: 'hijacked' }, other.adminKey)).statusCode).toBe(404);
    expect((await assign(theirDevice.id, cat.id, other.adminKey)).statusCode).toBe(404);
    expect((await assign(d.id, cat.id, other.adminKey)).statusCode).toBe(404);
    expect((await req('GET', `${DEVICES}/${d.id}/deviceCategory`, undefined, other.adminKey)).statusCode).toBe(404);
    // Names are unique per tenant only.
    expect((await req('POST', BASE, { displayName: cat.displayName }, other.adminKey)).statusCode).toBe(201);
  });
});
