import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.js';

const BETA = '/beta/deviceManagement/deviceEnrollmentConfigurations';
const V1 = '/v1.0/deviceManagement/deviceEnrollmentConfigurations';
const LIMIT = '#microsoft.graph.deviceEnrollmentLimitConfiguration';
const SINGLE = '#microsoft.graph.deviceEnrollmentPlatformRestrictionConfiguration';
const MULTI = '#microsoft.graph.deviceEnrollmentPlatformRestrictionsConfiguration';

type Entity = Record<string, unknown> & { id: string; priority: number };
type Body = { value: Entity[]; '@odata.count'?: number; '@odata.context': string };

const limitBody = (displayName: string, limit = 5, extra: Record<string, unknown> = {}) => ({ '@odata.type': LIMIT, displayName, limit, ...extra });
const platformBody = (displayName: string, platformType: string, platformRestriction: Record<string, unknown> = {}) => ({
  '@odata.type': SINGLE,
  displayName,
  description: '',
  platformType,
  platformRestriction: { platformBlocked: false, personalDeviceEnrollmentBlocked: false, ...platformRestriction },
  roleScopeTagIds: ['0'],
});

describe('deviceEnrollmentConfigurations: CRUD and shapes', () => {
  let t: TestApp;
  const req = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown, key?: string) =>
    t.request({ method, url, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }), ...(key ? { key } : {}) });
  const list = async (query = '', key?: string): Promise<Body> => {
    const res = await req('GET', `${BETA}${query ? `?${query}` : ''}`, undefined, key);
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as Body;
  };
  const create = async (body: unknown, url = BETA): Promise<Entity> => {
    const res = await req('POST', url, body);
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as Entity;
  };

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  it('a tenant starts with exactly one default of each type, at priority 0', async () => {
    const body = await list();
    expect(body['@odata.context']).toBe('http://openenroll.test/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations');
    expect(body.value).toHaveLength(2);
    const limit = body.value.find((c) => c['@odata.type'] === LIMIT)!;
    expect(limit).toEqual({
      '@odata.type': LIMIT,
      id: `${t.tenantId}_DefaultLimit`,
      displayName: 'All users and all devices',
      description: 'This is the default Device Limit Restriction applied with the lowest priority to all users regardless of group membership.',
      priority: 0,
      createdDateTime: '0001-01-01T00:00:00.000Z',
      lastModifiedDateTime: '0001-01-01T00:00:00.000Z',
      version: 0,
      roleScopeTagIds: ['0'],
      deviceEnrollmentConfigurationType: 'limit',
      limit: 5,
    });
  });

  it('returns the legacy all-platform default with one restriction per platform, macOS allowed and Windows Mobile blocked', async () => {
    const res = await req('GET', `${BETA}/${t.tenantId}_DefaultPlatformRestrictions`);
    expect(res.statusCode).toBe(200);
    const d = res.json();
    expect(d['@odata.context']).toBe('http://openenroll.test/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations/$entity');
    expect(d['@odata.type']).toBe(MULTI);
    expect(d).toMatchObject({ priority: 0, deviceEnrollmentConfigurationType: 'platformRestrictions', displayName: 'All users and all devices', version: 0 });
    const allowed = { platformBlocked: false, personalDeviceEnrollmentBlocked: false, blockedManufacturers: [], blockedSkus: [] };
    for (const p of ['iosRestriction', 'windowsRestriction', 'androidRestriction', 'androidForWorkRestriction', 'macRestriction']) {
      expect(d[p], p).toEqual({ ...allowed, osMinimumVersion: '', osMaximumVersion: '' });
    }
    for (const p of ['macOSRestriction', 'windowsHomeSkuRestriction', 'tvosRestriction', 'visionOSRestriction']) {
      expect(d[p], p).toEqual({ ...allowed, osMinimumVersion: null, osMaximumVersion: null });
    }
    expect(d.windowsMobileRestriction).toEqual({ ...allowed, platformBlocked: true, osMinimumVersion: '', osMaximumVersion: '' });
    // The OData key form and the qualified type both work.
    expect((await req('GET', `${BETA}('${t.tenantId}_DefaultLimit')`)).json().limit).toBe(5);
  });

  it('creates a limit restriction with limits 1 and 15, and refuses 0 and 16 naming limit', async () => {
    for (const limit of [1, 15]) {
      const c = await create(limitBody(`Limit ${limit}`, limit));
      expect(c).toMatchObject({ '@odata.type': LIMIT, limit, deviceEnrollmentConfigurationType: 'limit', roleScopeTagIds: ['0'], version: 1 });
      expect(c.id).toMatch(/^[0-9a-f-]{36}_Limit$/);
      expect(c['@odata.context']).toBe('http://openenroll.test/beta/$metadata#deviceManagement/deviceEnrollmentConfigurations/$entity');
    }
    for (const limit of [0, 16]) {
      const res = await req('POST', BETA, limitBody('Bad', limit));
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'BadRequest', target: 'limit' });
      expect(res.json().error.message).toContain("'limit'");
    }
    const c = await list("$filter=deviceEnrollmentConfigurationType eq 'limit'&$orderby=priority");
    expect(c.value.map((x) => [x.displayName, x.priority])).toEqual([
      ['All users and all devices', 0],
      ['Limit 1', 1],
      ['Limit 15', 2],
    ]);
  });

  it('creates single-platform restrictions with the Graph example body', async () => {
    const c = await create(platformBody('Block Personal', 'windows', { personalDeviceEnrollmentBlocked: true, osMinimumVersion: '', osMaximumVersion: '', blockedManufacturers: [] }));
    expect(c).toMatchObject({
      '@odata.type': SINGLE,
      displayName: 'Block Personal',
      deviceEnrollmentConfigurationType: 'singlePlatformRestriction',
      platformType: 'windows',
      priority: 1,
      platformRestriction: { platformBlocked: false, personalDeviceEnrollmentBlocked: true, osMinimumVersion: '', osMaximumVersion: '', blockedManufacturers: [], blockedSkus: [] },
    });
    expect(c.id).toMatch(/^[0-9a-f-]{36}_SinglePlatformRestriction$/);
    const ios = await create(platformBody('iOS 15-16', 'ios', { osMinimumVersion: '15.0.0', osMaximumVersion: '16.9.9' }));
    expect(ios.priority).toBe(1); // priorities are per platform
    const android = await create(platformBody('No Samsung', 'android', { blockedManufacturers: ['Samsung, LG'] }));
    expect(android.platformRestriction).toMatchObject({ blockedManufacturers: ['Samsung', 'LG'] });
  });

  it('refuses OS versions in the wrong format or on macOS, and manufacturer lists off Android', async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['ios', { osMinimumVersion: '16.4.1.2' }, 'platformRestriction.osMinimumVersion'],
      ['windows', { osMaximumVersion: '10.0' }, 'platformRestriction.osMaximumVersion'],
      ['android', { osMinimumVersion: '14', osMaximumVersion: '13.0' }, 'platformRestriction.osMaximumVersion'],
      ['mac', { osMinimumVersion: '14.0' }, 'platformRestriction.osMinimumVersion'],
      ['ios', { blockedManufacturers: ['Apple'] }, 'platformRestriction.blockedManufacturers'],
    ];
    const before = (await list()).value.length;
    for (const [platform, restriction, target] of cases) {
      const res = await req('POST', BETA, platformBody('Bad', platform, restriction));
      expect(res.statusCode, `${platform} ${JSON.stringify(restriction)}`).toBe(400);
      expect(res.json().error.target).toBe(target);
    }
    expect((await list()).value).toHaveLength(before);
  });

  it('refuses creating the legacy multi-platform type', async () => {
    const res = await req('POST', BETA, { '@odata.type': MULTI, displayName: 'All platforms' });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.target).toBe('@odata.type');
    expect(res.json().error.message).toContain('deviceEnrollmentPlatformRestrictionConfiguration');
  });

  it('lists polymorphically with $filter on type, platformType, displayName and priority, $select and $count', async () => {
    const all = await list('$count=true');
    expect(all['@odata.count']).toBe(all.value.length);
    expect(new Set(all.value.map((c) => c['@odata.type']))).toEqual(new Set([LIMIT, SINGLE, MULTI]));
    expect((await list("$filter=platformType eq 'ios'")).value.map((c) => c.displayName)).toEqual(['iOS 15-16']);
    expect((await list("$filter=deviceEnrollmentConfigurationType eq 'singlePlatformRestriction'")).value).toHaveLength(3);
    expect((await list("$filter=deviceEnrollmentConfigurationType eq 'platformRestrictions'")).value.map((c) => c.id)).toEqual([`${t.tenantId}_DefaultPlatformRestrictions`]);
    expect((await list("$filter=startswith(displayName,'limit')")).value.map((c) => c.displayName).sort()).toEqual(['Limit 1', 'Limit 15']);
    expect((await list('$filter=priority eq 0')).value).toHaveLength(2);
    expect((await list('$filter=priority gt 1')).value.map((c) => c.displayName)).toEqual(['Limit 15']);
    const selected = await list("$select=id,limit&$filter=displayName eq 'Limit 1'");
    expect(selected['@odata.context']).toContain('deviceEnrollmentConfigurations(id,limit)');
    expect(selected.value).toEqual([{ '@odata.type': LIMIT, id: expect.any(String), limit: 1 }]);
    const count = await req('GET', `${BETA}/$count?$filter=deviceEnrollmentConfigurationType eq 'limit'`);
    expect(count.headers['content-type']).toMatch(/^text\/plain/);
    expect(count.body).toBe('3');
    expect((await req('GET', `${BETA}?$filter=platformType eq 'symbian'`)).statusCode).toBe(400);
  });

  it('supports $expand=assignments on the list and on one policy, and refuses other expansions', async () => {
    const target = (await list("$filter=displayName eq 'Limit 15'")).value[0]!;
    const assign = await req('POST', `${BETA}/${target.id}/assign`, {
      enrollmentConfigurationAssignments: [{ target: { '@odata.type': '#microsoft.graph.allLicensedUsersAssignmentTarget' } }],
    });
    expect(assign.statusCode, assign.body).toBe(204);
    const expanded = await list('$expand=assignments');
    for (const c of expanded.value) expect(Array.isArray(c.assignments)).toBe(true);
    const mine = expanded.value.find((c) => c.id === target.id)!;
    expect(mine.assignments).toEqual([
      {
        '@odata.type': '#microsoft.graph.enrollmentConfigurationAssignment',
        id: `${target.id}_acacacac-9df4-4c7d-9d50-4ef0226f57a9`,
        source: 'direct',
        sourceId: null,
        target: {
          '@odata.type': '#microsoft.graph.allLicensedUsersAssignmentTarget',
          deviceAndAppManagementAssignmentFilterId: null,
          deviceAndAppManagementAssignmentFilterType: 'none',
        },
      },
    ]);
    const withSelect = await list(`$select=id,displayName&$expand=assignments&$filter=id eq '${target.id}'`);
    expect(Object.keys(withSelect.value[0]!).sort()).toEqual(['@odata.type', 'assignments', 'displayName', 'id']);
    const one = await req('GET', `${BETA}/${target.id}?$expand=assignments`);
    expect(one.json().assignments).toHaveLength(1);
    for (const bad of ['$expand=roleScopeTags', '$expand=assignments,foo', '$expand=assignments($select=id)']) {
      const res = await req('GET', `${BETA}?${bad}`);
      expect(res.statusCode, bad).toBe(400);
      expect(res.json().error.target).toBe('$expand');
    }
    expect((await req('GET', `${BETA}/${target.id}?$expand=foo`)).statusCode).toBe(400);
  });

  it('PATCH edits settings, bumps version and refuses read-only and foreign properties', async () => {
    const c = await create(limitBody('Editable', 4));
    const res = await req('PATCH', `${BETA}/${c.id}`, { '@odata.type': LIMIT, limit: 9, description: 'Nine' });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ id: c.id, limit: 9, description: 'Nine', version: 2, priority: c.priority });
    expect((await req('PATCH', `${BETA}/${c.id}`, { displayName: 'Edited' })).json()).toMatchObject({ displayName: 'Edited', version: 3 });
    // Whole objects with unchanged read-only properties are fine (clients copy them back).
    const whole = (await req('GET', `${BETA}/${c.id}`)).json();
    const { '@odata.context': _ctx, ...copy } = whole;
    expect((await req('PATCH', `${BETA}/${c.id}`, { ...copy, limit: 10 })).json()).toMatchObject({ limit: 10, version: 4 });
    for (const [body, target] of [
      [{ limit: 16 }, 'limit'],
      [{ priority: 1 }, 'priority'],
      [{ version: 99 }, 'version'],
      [{ platformType: 'ios' }, 'platformType'],
      [{ deviceEnrollmentConfigurationType: 'platformRestrictions' }, 'deviceEnrollmentConfigurationType'],
      [{ '@odata.type': SINGLE }, '@odata.type'],
      [{ displayName: '' }, 'displayName'],
    ] as const) {
      const bad = await req('PATCH', `${BETA}/${c.id}`, body);
      expect(bad.statusCode, JSON.stringify(body)).toBe(400);
      expect(bad.json().error.target).toBe(target);
    }
    expect((await req('GET', `${BETA}/${c.id}`)).json()).toMatchObject({ limit: 10, version: 4 });
    const p = await create(platformBody('Edit me', 'androidForWork'));
    const edited = await req('PATCH', `${BETA}/${p.id}`, { platformRestriction: { osMinimumVersion: '9.0', blockedManufacturers: ['Acme'] } });
    expect(edited.json().platformRestriction).toMatchObject({ osMinimumVersion: '9.0', blockedManufacturers: ['Acme'], platformBlocked: false });
    expect((await req('PATCH', `${BETA}/${p.id}`, { platformRestriction: { osMaximumVersion: '8' } })).json().error.target).toBe('platformRestriction.osMaximumVersion');
  });

  it('defaults are editable but not renamable, deletable, reorderable or assignable', async () => {
    const limitId = `${t.tenantId}_DefaultLimit`;
    const platformId = `${t.tenantId}_DefaultPlatformRestrictions`;
    const edited = await req('PATCH', `${BETA}/${limitId}`, { limit: 3 });
    expect(edited.json()).toMatchObject({ limit: 3, version: 1, priority: 0 });
    const ios = await req('PATCH', `${BETA}/${platformId}`, { iosRestriction: { osMinimumVersion: '15.0', personalDeviceEnrollmentBlocked: true } });
    expect(ios.statusCode, ios.body).toBe(200);
    expect(ios.json().iosRestriction).toMatchObject({ osMinimumVersion: '15.0', personalDeviceEnrollmentBlocked: true, platformBlocked: false });
    expect((await req('PATCH', `${BETA}/${platformId}`, { macOSRestriction: { osMinimumVersion: '14' } })).json().error.target).toBe('macOSRestriction.osMinimumVersion');
    expect((await req('PATCH', `${BETA}/${limitId}`, { displayName: 'Renamed' })).statusCode).toBe(400);

    for (const id of [limitId, platformId]) {
      const del = await req('DELETE', `${BETA}/${id}`);
      expect(del.statusCode).toBe(409);
      expect(del.json().error.message).toContain("can't be deleted");
      const move = await req('POST', `${BETA}/${id}/setPriority`, { priority: 1 });
      expect(move.statusCode).toBe(400);
      expect(move.json().error.message).toContain("can't be reordered");
      const assign = await req('POST', `${BETA}/${id}/assign`, { enrollmentConfigurationAssignments: [{ target: { '@odata.type': '#microsoft.graph.allLicensedUsersAssignmentTarget' } }] });
      expect(assign.statusCode).toBe(400);
      expect(assign.json().error.message).toContain("can't be assigned");
      expect((await req('POST', `${BETA}/${id}/assignments`, { target: { '@odata.type': '#microsoft.graph.allLicensedUsersAssignmentTarget' } })).statusCode).toBe(400);
    }
    expect((await req('GET', `${BETA}/${limitId}`)).json()).toMatchObject({ priority: 0, limit: 3 });
  });

  it('DELETE removes a policy (204), its assignments, and renumbers its list', async () => {
    const a = await create(limitBody('Del A'));
    const b = await create(limitBody('Del B'));
    await req('POST', `${BETA}/${a.id}/assign`, { enrollmentConfigurationAssignments: [{ target: { '@odata.type': '#microsoft.graph.allLicensedUsersAssignmentTarget' } }] });
    const del = await req('DELETE', `${BETA}/${a.id}`);
    expect(del.statusCode).toBe(204);
    expect(del.body).toBe('');
    expect((await req('GET', `${BETA}/${a.id}`)).statusCode).toBe(404);
    expect((await req('DELETE', `${BETA}/${a.id}`)).statusCode).toBe(404);
    expect((await req('GET', `${BETA}/${b.id}`)).json().priority).toBe(b.priority - 1);
    const orphans = await t.store.db.selectFrom('enrollment_configuration_assignments').select('id').where('configuration_id', '=', a.id).execute();
    expect(orphans).toEqual([]);
    const priorities = (await list("$filter=deviceEnrollmentConfigurationType eq 'limit'&$orderby=priority")).value.map((c) => c.priority);
    expect(priorities).toEqual([...priorities.keys()]);
  });

  it('hasPayloadLinks answers false for every id', async () => {
    const res = await req('POST', `${BETA}/hasPayloadLinks`, { payloadIds: ['a', `${t.tenantId}_DefaultLimit`] });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      '@odata.context': 'http://openenroll.test/beta/$metadata#Collection(microsoft.graph.hasPayloadLinkResultItem)',
      value: [
        { payloadId: 'a', hasLink: false, error: null, sources: [] },
        { payloadId: `${t.tenantId}_DefaultLimit`, hasLink: false, error: null, sources: [] },
      ],
    });
    expect((await req('POST', `${BETA}/microsoft.graph.hasPayloadLinks`, { payloadIds: [] })).json().value).toEqual([]);
    expect((await req('POST', `${BETA}/hasPayloadLinks`, {})).statusCode).toBe(400);
  });

  it("getSuggestedEnrollmentLimit suggests the default policy's device limit", async () => {
    const res = await req('GET', "/beta/deviceManagement/getSuggestedEnrollmentLimit(enrollmentType='appleBulkWithUser')");
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ '@odata.context': 'http://openenroll.test/beta/$metadata#microsoft.graph.suggestedEnrollmentLimit', suggestedDailyLimit: 3 });
    expect((await req('GET', '/beta/deviceManagement/getSuggestedEnrollmentLimit()')).json().error.target).toBe('enrollmentType');
    expect((await req('GET', "/beta/deviceManagement/getSuggestedEnrollmentLimit(enrollmentType='a b')")).statusCode).toBe(400);
  });

  it('serves the v1.0 subset: no single-platform type, no beta-only properties', async () => {
    const res = await req('GET', V1);
    expect(res.statusCode).toBe(200);
    const body = res.json() as Body;
    expect(body['@odata.context']).toBe('http://openenroll.test/v1.0/$metadata#deviceManagement/deviceEnrollmentConfigurations');
    expect(body.value.some((c) => c['@odata.type'] === SINGLE)).toBe(false);
    const multi = body.value.find((c) => c['@odata.type'] === MULTI)!;
    expect(Object.keys(multi).sort()).toEqual(
      [
        '@odata.type',
        'androidRestriction',
        'createdDateTime',
        'description',
        'displayName',
        'id',
        'iosRestriction',
        'lastModifiedDateTime',
        'macOSRestriction',
        'priority',
        'version',
        'windowsMobileRestriction',
        'windowsRestriction',
      ].sort(),
    );
    const single = (await list("$filter=platformType eq 'windows'")).value[0]!;
    expect((await req('GET', `${V1}/${single.id}`)).statusCode).toBe(404);
    expect((await req('GET', `${V1}?$filter=platformType eq 'ios'`)).statusCode).toBe(400);
    const created = await create(limitBody('From v1', 2), V1);
    expect(created['@odata.context']).toBe('http://openenroll.test/v1.0/$metadata#deviceManagement/deviceEnrollmentConfigurations/$entity');
    expect(created).not.toHaveProperty('roleScopeTagIds');
    expect((await req('POST', V1, platformBody('x', 'ios'))).statusCode).toBe(400);
    expect((await req('POST', `${V1}/${created.id}/setPriority`, { priority: 1 })).statusCode).toBe(204);
    expect((await req('GET', `${BETA}/${created.id}`)).json().priority).toBe(1);
    expect((await req('POST', `${V1}/hasPayloadLinks`, { payloadIds: [] })).statusCode).toBe(404);
  });

  it('records every change in the audit log, category and component Enrollment', async () => {
    const c = await create(limitBody('Audited', 2));
    await req('PATCH', `${BETA}/${c.id}`, { limit: 3 });
    await req('POST', `${BETA}/${c.id}/setPriority`, { priority: 1 });
    await req('POST', `${BETA}/${c.id}/assign`, { enrollmentConfigurationAssignments: [] });
    await req('DELETE', `${BETA}/${c.id}`);
    const events = await t.store.db.selectFrom('audit_events').selectAll().where('resource_id', '=', c.id).orderBy('activity_date_time').orderBy('id').execute();
    expect(events.map((e) => [e.activity, e.activity_operation_type, e.category, e.component_name, e.resource_type])).toEqual(
      expect.arrayContaining([
        ['Create enrollment restriction', 'Create', 'Enrollment', 'Enrollment', 'microsoft.graph.deviceEnrollmentLimitConfiguration'],
        ['Patch enrollment restriction', 'Patch', 'Enrollment', 'Enrollment', 'microsoft.graph.deviceEnrollmentLimitConfiguration'],
        ['Set enrollment restriction priority', 'Action', 'Enrollment', 'Enrollment', 'microsoft.graph.deviceEnrollmentLimitConfiguration'],
        ['Assign enrollment restriction', 'Action', 'Enrollment', 'Enrollment', 'microsoft.graph.deviceEnrollmentLimitConfiguration'],
        ['Delete enrollment restriction', 'Delete', 'Enrollment', 'Enrollment', 'microsoft.graph.deviceEnrollmentLimitConfiguration'],
      ]),
    );
    expect(events).toHaveLength(5);
    const patch = events.find((e) => e.activity === 'Patch enrollment restriction')!;
    expect(JSON.parse(patch.resources)[0].modifiedProperties).toEqual(
      expect.arrayContaining([
        { displayName: 'limit', oldValue: '2', newValue: '3' },
        { displayName: 'version', oldValue: '1', newValue: '2' },
      ]),
    );
    // A refused change leaves no audit event behind.
    const before = await t.store.db.selectFrom('audit_events').select('id').execute();
    expect((await req('POST', BETA, limitBody('Refused', 16))).statusCode).toBe(400);
    expect(await t.store.db.selectFrom('audit_events').select('id').execute()).toHaveLength(before.length);
  });

  it('lets a readOnlyOperator read but not write (403)', async () => {
    const ro = await t.createKey('readOnlyOperator');
    const c = (await list("$filter=displayName eq 'Limit 1'")).value[0]!;
    expect((await req('GET', BETA, undefined, ro)).statusCode).toBe(200);
    expect((await req('GET', `${BETA}/${c.id}/assignments`, undefined, ro)).statusCode).toBe(200);
    expect((await req('POST', `${BETA}/hasPayloadLinks`, { payloadIds: [] }, ro)).statusCode).toBe(200);
    for (const [method, url, body] of [
      ['POST', BETA, limitBody('RO', 2)],
      ['PATCH', `${BETA}/${c.id}`, { limit: 2 }],
      ['DELETE', `${BETA}/${c.id}`, undefined],
      ['POST', `${BETA}/${c.id}/setPriority`, { priority: 1 }],
      ['POST', `${BETA}/${c.id}/assign`, { enrollmentConfigurationAssignments: [] }],
      ['POST', `${BETA}/${c.id}/assignments`, { target: { '@odata.type': '#microsoft.graph.allLicensedUsersAssignmentTarget' } }],
      ['POST', '/beta/deviceManagement/assignmentFilters', { displayName: 'x', platform: 'iOS', rule: '(device.model -eq "x")' }],
    ] as const) {
      const res = await req(method, url, body, ro);
      expect(res.statusCode, `${method} ${url}`).toBe(403);
      expect(res.json().error.code).toBe('Forbidden');
    }
    expect((await req('GET', `${BETA}/${c.id}`)).json().limit).toBe(1);
  });

  it('isolates tenants: another tenant sees only its own defaults and gets 404 for these ids', async () => {
    const other = await t.createTenant('Other');
    const theirs = await list('', other.adminKey);
    expect(theirs.value.map((c) => c.id).sort()).toEqual([`${other.tenantId}_DefaultLimit`, `${other.tenantId}_DefaultPlatformRestrictions`]);
    const mine = (await list("$filter=displayName eq 'Limit 1'")).value[0]!;
    for (const id of [mine.id, `${t.tenantId}_DefaultLimit`]) {
      expect((await req('GET', `${BETA}/${id}`, undefined, other.adminKey)).statusCode).toBe(404);
      expect((await req('PATCH', `${BETA}/${id}`, { limit: 2 }, other.adminKey)).statusCode).toBe(404);
      expect((await req('POST', `${BETA}/${id}/setPriority`, { priority: 1 }, other.adminKey)).statusCode).toBe(404);
      expect((await req('GET', `${BETA}/${id}/assignments`, undefined, other.adminKey)).statusCode).toBe(404);
    }
    expect((await req('DELETE', `${BETA}/${mine.id}`, undefined, other.adminKey)).statusCode).toBe(404);
    expect((await req('GET', `${BETA}/${mine.id}`)).json().limit).toBe(1);
    // Their policies are numbered on their own.
    const created = await req('POST', BETA, limitBody('Theirs', 4), other.adminKey);
    expect(created.json().priority).toBe(1);
  });

  it('creates each tenant’s defaults once, even under concurrent first reads', async () => {
    const fresh = await t.createTenant('Fresh');
    const results = await Promise.all(Array.from({ length: 6 }, () => req('GET', BETA, undefined, fresh.adminKey)));
    for (const r of results) expect((r.json() as Body).value).toHaveLength(2);
    const rows = await t.store.db.selectFrom('enrollment_configurations').select('id').where('tenant_id', '=', fresh.tenantId).execute();
    expect(rows).toHaveLength(2);
    const tags = await t.store.db.selectFrom('object_scope_tags').selectAll().where('tenant_id', '=', fresh.tenantId).where('object_type', '=', 'deviceEnrollmentConfiguration').execute();
    expect(tags.map((x) => x.tag_id)).toEqual(['0', '0']);
  });
});
