import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRestrictionPolicies } from '../../src/enrollment-policy/restrictions/loader.js';
import { createTestApp, type TestApp } from '../helpers/app.js';

const BETA = '/beta/deviceManagement/deviceEnrollmentConfigurations';
const FILTERS = '/beta/deviceManagement/assignmentFilters';
const LIMIT = '#microsoft.graph.deviceEnrollmentLimitConfiguration';
const SINGLE = '#microsoft.graph.deviceEnrollmentPlatformRestrictionConfiguration';
const ALL_USERS = '#microsoft.graph.allLicensedUsersAssignmentTarget';
const GROUP = '#microsoft.graph.groupAssignmentTarget';
const EXCLUDE = '#microsoft.graph.exclusionGroupAssignmentTarget';

type Entity = Record<string, unknown> & { id: string };

describe('restriction assignments and assignment filters', () => {
  let t: TestApp;
  const req = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown, key?: string) =>
    t.request({ method, url, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }), ...(key ? { key } : {}) });
  const created = async (url: string, payload: unknown): Promise<Entity> => {
    const res = await req('POST', url, payload);
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as Entity;
  };
  const policy = (platformType: string, displayName = `${platformType} policy`) =>
    created(BETA, { '@odata.type': SINGLE, displayName, platformType, platformRestriction: { personalDeviceEnrollmentBlocked: true } });
  const filter = (platform: string, rule: string, displayName = `${platform} filter`) => created(FILTERS, { displayName, platform, rule });
  const group = async (displayName: string) => (await created('/v1.0/groups', { displayName, mailEnabled: false, mailNickname: displayName.replace(/\W/g, ''), securityEnabled: true })).id;
  const assign = (id: string, targets: Record<string, unknown>[]) =>
    req('POST', `${BETA}/${id}/assign`, { enrollmentConfigurationAssignments: targets.map((target) => ({ target })) });

  let sales: string;
  let contractors: string;

  beforeAll(async () => {
    t = await createTestApp();
    sales = await group('Sales');
    contractors = await group('Contractors');
  });
  afterAll(async () => t.close());

  it('assign replaces the whole set: groups, exclusions and all users', async () => {
    const p = await policy('windows');
    expect((await assign(p.id, [{ '@odata.type': GROUP, groupId: sales }, { '@odata.type': EXCLUDE, groupId: contractors }])).statusCode).toBe(204);
    const first = await req('GET', `${BETA}/${p.id}/assignments`);
    expect(first.json()['@odata.context']).toBe(`http://openenroll.test/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations('${p.id}')/assignments`);
    expect(first.json().value).toEqual([
      {
        '@odata.type': '#microsoft.graph.enrollmentConfigurationAssignment',
        id: `${p.id}_${sales}`,
        source: 'direct',
        sourceId: null,
        target: { '@odata.type': GROUP, groupId: sales, deviceAndAppManagementAssignmentFilterId: null, deviceAndAppManagementAssignmentFilterType: 'none' },
      },
      {
        '@odata.type': '#microsoft.graph.enrollmentConfigurationAssignment',
        id: `${p.id}_${contractors}`,
        source: 'direct',
        sourceId: null,
        target: { '@odata.type': EXCLUDE, groupId: contractors, deviceAndAppManagementAssignmentFilterId: null, deviceAndAppManagementAssignmentFilterType: 'none' },
      },
    ]);
    expect((await assign(p.id, [{ '@odata.type': ALL_USERS }])).statusCode).toBe(204);
    const second = (await req('GET', `${BETA}/${p.id}/assignments`)).json().value as Entity[];
    expect(second.map((a) => (a.target as Entity)['@odata.type'])).toEqual([ALL_USERS]);
    expect((await req('GET', `${BETA}/${p.id}`)).json().version).toBe(3);
    expect((await assign(p.id, [])).statusCode).toBe(204);
    expect((await req('GET', `${BETA}/${p.id}/assignments`)).json().value).toEqual([]);
    expect((await req('GET', `${BETA}/${p.id}/assignments/$count`)).body).toBe('0');
  });

  it('refuses unknown groups, the same group twice, all-devices targets and policy sets, changing nothing', async () => {
    const p = await policy('ios');
    expect((await assign(p.id, [{ '@odata.type': GROUP, groupId: sales }])).statusCode).toBe(204);
    const cases: [Record<string, unknown>[], string][] = [
      [[{ '@odata.type': GROUP, groupId: crypto.randomUUID() }], 'enrollmentConfigurationAssignments[0].target.groupId'],
      [[{ '@odata.type': GROUP, groupId: sales }, { '@odata.type': EXCLUDE, groupId: sales }], 'enrollmentConfigurationAssignments[1].target'],
      [[{ '@odata.type': ALL_USERS }, { '@odata.type': ALL_USERS }], 'enrollmentConfigurationAssignments[1].target'],
      [[{ '@odata.type': '#microsoft.graph.allDevicesAssignmentTarget' }], 'enrollmentConfigurationAssignments[0].target.@odata.type'],
      [[{ groupId: sales }], 'enrollmentConfigurationAssignments[0].target.@odata.type'],
    ];
    for (const [targets, target] of cases) {
      const res = await assign(p.id, targets);
      expect(res.statusCode, JSON.stringify(targets)).toBe(400);
      expect(res.json().error.target).toBe(target);
    }
    const policySet = await req('POST', `${BETA}/${p.id}/assign`, { enrollmentConfigurationAssignments: [{ source: 'policySets', target: { '@odata.type': ALL_USERS } }] });
    expect(policySet.json().error.target).toBe('enrollmentConfigurationAssignments[0].source');
    // A group of another tenant is unknown here.
    const other = await t.createTenant('Other groups');
    const theirGroup = (await req('POST', '/v1.0/groups', { displayName: 'Theirs', mailEnabled: false, mailNickname: 'theirs', securityEnabled: true }, other.adminKey)).json().id;
    expect((await assign(p.id, [{ '@odata.type': GROUP, groupId: theirGroup }])).statusCode).toBe(400);
    expect((await req('GET', `${BETA}/${p.id}/assignments`)).json().value.map((a: Entity) => a.id)).toEqual([`${p.id}_${sales}`]);
  });

  it('manages single assignments: create, get, patch the filter, delete', async () => {
    const p = await policy('mac');
    const f = await filter('macOS', '(device.model -startsWith "MacBook")');
    const a = await req('POST', `${BETA}/${p.id}/assignments`, { target: { '@odata.type': GROUP, groupId: sales } });
    expect(a.statusCode, a.body).toBe(201);
    const id = a.json().id as string;
    expect(id).toBe(`${p.id}_${sales}`);
    expect(a.json()['@odata.context']).toContain(`deviceEnrollmentConfigurations('${p.id}')/assignments/$entity`);
    expect((await req('POST', `${BETA}/${p.id}/assignments`, { target: { '@odata.type': EXCLUDE, groupId: sales } })).statusCode).toBe(409);
    expect((await req('GET', `${BETA}/${p.id}/assignments/${id}`)).json().target.groupId).toBe(sales);
    const patched = await req('PATCH', `${BETA}/${p.id}/assignments/${id}`, {
      target: { '@odata.type': GROUP, groupId: sales, deviceAndAppManagementAssignmentFilterId: f.id, deviceAndAppManagementAssignmentFilterType: 'include' },
    });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(patched.json().target).toMatchObject({ deviceAndAppManagementAssignmentFilterId: f.id, deviceAndAppManagementAssignmentFilterType: 'include' });
    expect((await req('PATCH', `${BETA}/${p.id}/assignments/${id}`, { target: { '@odata.type': GROUP, groupId: contractors } })).statusCode).toBe(400);
    expect((await req('DELETE', `${BETA}/${p.id}/assignments/${id}`)).statusCode).toBe(204);
    expect((await req('GET', `${BETA}/${p.id}/assignments/${id}`)).statusCode).toBe(404);
    expect((await req('DELETE', `${BETA}/${p.id}/assignments/${id}`)).statusCode).toBe(404);
    const audit = await t.store.db.selectFrom('audit_events').select('activity').where('resource_id', '=', p.id).execute();
    expect(audit.map((e) => e.activity)).toEqual(
      expect.arrayContaining(['Create enrollment restriction assignment', 'Patch enrollment restriction assignment', 'Delete enrollment restriction assignment']),
    );
  });

  it('attaches filters only where the platform allows them: never on Android or device limits', async () => {
    const windows = await policy('windows');
    const android = await policy('android');
    const work = await policy('androidForWork');
    const limit = await created(BETA, { '@odata.type': LIMIT, displayName: 'Limit', limit: 3 });
    const home = await filter('windows10AndLater', '(device.operatingSystemSKU -eq "Core")', 'Windows Home');
    const samsung = await filter('android', '(device.manufacturer -eq "Samsung")', 'Samsung');
    const withFilter = (filterId: string, type = 'exclude') => ({
      '@odata.type': ALL_USERS,
      deviceAndAppManagementAssignmentFilterId: filterId,
      deviceAndAppManagementAssignmentFilterType: type,
    });
    expect((await assign(windows.id, [withFilter(home.id)])).statusCode).toBe(204);
    const stored = (await req('GET', `${BETA}/${windows.id}/assignments`)).json().value[0].target;
    expect(stored).toMatchObject({ deviceAndAppManagementAssignmentFilterId: home.id, deviceAndAppManagementAssignmentFilterType: 'exclude' });
    for (const p of [android, work]) {
      const res = await assign(p.id, [withFilter(samsung.id)]);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.target).toBe('enrollmentConfigurationAssignments[0].target.deviceAndAppManagementAssignmentFilterId');
      expect(res.json().error.message).toContain("filters can't be used with Android enrollment restrictions");
    }
    expect((await assign(limit.id, [withFilter(home.id)])).json().error.message).toContain('device limit');
    // Platform mismatch, unknown filter.
    const ios = await policy('ios');
    expect((await assign(ios.id, [withFilter(home.id)])).json().error.message).toContain("needs a 'iOS' filter");
    expect((await assign(ios.id, [withFilter(crypto.randomUUID())])).json().error.message).toContain('was not found');
    // A filter using a property enrollment can't evaluate (device.deviceName on iOS).
    const byName = await filter('iOS', '(device.deviceName -startsWith "Kiosk")', 'By name');
    const res = await assign(ios.id, [withFilter(byName.id, 'include')]);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toContain('device.deviceName');
    const ok = await filter('iOS', '(device.deviceOwnership -eq "Corporate") and (device.osVersion -startsWith "17")', 'Corporate 17');
    expect((await assign(ios.id, [{ ...withFilter(ok.id, 'include'), '@odata.type': GROUP, groupId: sales }])).statusCode).toBe(204);
  });

  it('assignment filters: CRUD with Graph shape, validation, validateFilter, and protection while in use', async () => {
    const f = await filter('windows10AndLater', '(device.osVersion -startsWith "10.0.22")', 'Win 11');
    expect(f).toMatchObject({
      '@odata.context': 'http://openenroll.test/beta/$metadata#deviceManagement/assignmentFilters/$entity',
      '@odata.type': '#microsoft.graph.deviceAndAppManagementAssignmentFilter',
      displayName: 'Win 11',
      description: null,
      platform: 'windows10AndLater',
      rule: '(device.osVersion -startsWith "10.0.22")',
      assignmentFilterManagementType: 'devices',
      roleScopeTags: ['0'],
    });
    const list = (await req('GET', `${FILTERS}?$filter=platform eq 'windows10AndLater'&$count=true`)).json();
    expect(list.value.map((x: Entity) => x.displayName)).toEqual(expect.arrayContaining(['Win 11']));
    expect((await req('GET', `${FILTERS}/$count`)).statusCode).toBe(200);
    const bad = await req('POST', FILTERS, { displayName: 'Bad', platform: 'iOS', rule: "(device.model -eq 'iPad')" });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.target).toBe('rule');
    expect(bad.json().error.message).toContain('position');
    const valid = await req('POST', `${FILTERS}/validateFilter`, { deviceAndAppManagementAssignmentFilter: { rule: '(device.model -eq "x")', platform: 'iOS' } });
    expect(valid.json()).toMatchObject({ isValidRule: true });
    expect((await req('POST', `${FILTERS}/validateFilter`, { deviceAndAppManagementAssignmentFilter: { rule: 'device.model ==' } })).json().isValidRule).toBe(false);

    const p = await policy('windows', 'Uses Win 11');
    expect(
      (await assign(p.id, [{ '@odata.type': GROUP, groupId: sales, deviceAndAppManagementAssignmentFilterId: f.id, deviceAndAppManagementAssignmentFilterType: 'include' }])).statusCode,
    ).toBe(204);
    // While in use on a Windows restriction, its rule keeps to the Windows enrollment properties.
    const narrowed = await req('PATCH', `${FILTERS}/${f.id}`, { rule: '(device.model -eq "Surface")' });
    expect(narrowed.statusCode).toBe(400);
    expect(narrowed.json().error.target).toBe('rule');
    const edited = await req('PATCH', `${FILTERS}/${f.id}`, { rule: '(device.operatingSystemSKU -ne "Core")', description: 'Not Home' });
    expect(edited.json()).toMatchObject({ rule: '(device.operatingSystemSKU -ne "Core")', description: 'Not Home' });
    expect((await req('PATCH', `${FILTERS}/${f.id}`, { platform: 'iOS' })).json().error.target).toBe('platform');
    const inUse = await req('DELETE', `${FILTERS}/${f.id}`);
    expect(inUse.statusCode).toBe(409);
    await assign(p.id, []);
    expect((await req('DELETE', `${FILTERS}/${f.id}`)).statusCode).toBe(204);
    expect((await req('GET', `${FILTERS}/${f.id}`)).statusCode).toBe(404);
    const audit = await t.store.db.selectFrom('audit_events').select(['activity', 'category']).where('resource_id', '=', f.id).execute();
    expect(audit.map((e) => e.activity)).toEqual(['Create assignment filter', 'Patch assignment filter', 'Delete assignment filter']);
    expect(new Set(audit.map((e) => e.category))).toEqual(new Set(['Enrollment']));
  });

  it('serialises concurrent assigns and edits of one policy', async () => {
    const p = await policy('windows', 'Concurrent');
    const targets = [[{ '@odata.type': GROUP, groupId: sales }], [{ '@odata.type': GROUP, groupId: sales }, { '@odata.type': ALL_USERS }], [{ '@odata.type': EXCLUDE, groupId: contractors }]];
    const results = await Promise.all([...targets, ...targets].map((x) => assign(p.id, x)));
    for (const r of results) expect(r.statusCode, r.body).toBe(204);
    const final = (await req('GET', `${BETA}/${p.id}/assignments`)).json().value as Entity[];
    expect(targets.map((x) => x.length)).toContain(final.length);
    const edits = await Promise.all(Array.from({ length: 6 }, (_, i) => req('PATCH', `${BETA}/${p.id}`, { description: `edit ${i}` })));
    for (const r of edits) expect(r.statusCode).toBe(200);
    // 1 on creation, 6 assigns, 6 edits: every change counted once.
    expect((await req('GET', `${BETA}/${p.id}`)).json().version).toBe(13);
  });

  it('exports every policy for the engine, defaults included, with assignments and filter rules', async () => {
    const tenant = await t.createTenant('Loader');
    // Never read: the defaults aren't stored yet, and the loader still returns them.
    const fresh = await loadRestrictionPolicies(t.store.db, tenant.tenantId);
    expect(fresh.map((p) => [p.id, p.type, p.priority, p.isDefault])).toEqual([
      [`${tenant.tenantId}_DefaultPlatformRestrictions`, 'platformRestriction', 0, true],
      [`${tenant.tenantId}_DefaultLimit`, 'limit', 0, true],
    ]);
    const platformDefault = fresh[0]!;
    if (platformDefault.type !== 'platformRestriction') throw new Error('expected a platform restriction');
    expect(platformDefault.restrictions.mac).toEqual({ platformBlocked: false, personalDeviceEnrollmentBlocked: false, osMinimumVersion: null, osMaximumVersion: null, blockedManufacturers: [] });
    expect(platformDefault.restrictions.windowsPhone?.platformBlocked).toBe(true);
    expect(Object.keys(platformDefault.restrictions).sort()).toEqual(['android', 'androidForWork', 'ios', 'mac', 'windows', 'windowsPhone']);

    const key = tenant.adminKey;
    const g = (await req('POST', '/v1.0/groups', { displayName: 'Loader group', mailEnabled: false, mailNickname: 'lg', securityEnabled: true }, key)).json().id as string;
    const f = (await req('POST', FILTERS, { displayName: 'Corp', platform: 'iOS', rule: '(device.deviceOwnership -eq "Corporate")' }, key)).json().id as string;
    const ios = (await req('POST', BETA, { '@odata.type': SINGLE, displayName: 'iOS 15+', platformType: 'ios', platformRestriction: { osMinimumVersion: '15.0', osMaximumVersion: '' } }, key)).json();
    await req('POST', `${BETA}/${ios.id}/assign`, {
      enrollmentConfigurationAssignments: [
        { target: { '@odata.type': GROUP, groupId: g, deviceAndAppManagementAssignmentFilterId: f, deviceAndAppManagementAssignmentFilterType: 'include' } },
        { target: { '@odata.type': ALL_USERS } },
      ],
    }, key);
    const lim = (await req('POST', BETA, { '@odata.type': LIMIT, displayName: 'Ten', limit: 10 }, key)).json();
    await req('PATCH', `${BETA}/${tenant.tenantId}_DefaultLimit`, { limit: 2 }, key);

    const policies = await loadRestrictionPolicies(t.store.db, tenant.tenantId);
    expect(policies).toHaveLength(4);
    expect(policies.find((p) => p.id === `${tenant.tenantId}_DefaultLimit`)).toMatchObject({ type: 'limit', limit: 2, isDefault: true, assignments: [] });
    expect(policies.find((p) => p.id === lim.id)).toMatchObject({ type: 'limit', limit: 10, priority: 1, isDefault: false, assignments: [] });
    expect(policies.find((p) => p.id === ios.id)).toEqual({
      id: ios.id,
      displayName: 'iOS 15+',
      priority: 1,
      isDefault: false,
      type: 'platformRestriction',
      restrictions: { ios: { platformBlocked: false, personalDeviceEnrollmentBlocked: false, osMinimumVersion: '15.0', osMaximumVersion: null, blockedManufacturers: [] } },
      assignments: expect.arrayContaining([
        { target: { kind: 'group', groupId: g }, filter: { id: f, displayName: 'Corp', mode: 'include', rule: '(device.deviceOwnership -eq "Corporate")' } },
        { target: { kind: 'allUsers' } },
      ]),
    });
    // Inside a transaction too (the enrollment gate's).
    const inTrx = await t.store.transaction((trx) => loadRestrictionPolicies(trx, tenant.tenantId));
    expect(inTrx).toHaveLength(4);
  });
});
