import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { createTag } from '../devices/fixtures.js';

const BETA = '/beta/deviceManagement/deviceEnrollmentConfigurations';
const FILTERS = '/beta/deviceManagement/assignmentFilters';
const LIMIT = '#microsoft.graph.deviceEnrollmentLimitConfiguration';

type Entity = Record<string, unknown> & { id: string; priority: number; displayName: string };

describe('restrictions and scope tags', () => {
  let t: TestApp;
  let paris: string;
  let london: string;
  let parisAdmin: string;
  const ids: Record<string, string> = {};
  const req = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown, key?: string) =>
    t.request({ method, url, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }), ...(key ? { key } : {}) });
  const limits = async (key?: string) => {
    const res = await req('GET', `${BETA}?$filter=deviceEnrollmentConfigurationType eq 'limit'&$orderby=priority&$count=true`, undefined, key);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { value: Entity[]; '@odata.count': number };
    expect(body['@odata.count']).toBe(body.value.length);
    return body.value.map((c) => `${c.displayName}:${c.priority}`);
  };
  const create = async (displayName: string, tags: string[] | undefined, key?: string) => {
    const res = await req('POST', BETA, { '@odata.type': LIMIT, displayName, limit: 5, ...(tags ? { roleScopeTagIds: tags } : {}) }, key);
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as Entity;
  };

  beforeAll(async () => {
    t = await createTestApp();
    paris = await createTag(t, 'Paris');
    london = await createTag(t, 'London');
    parisAdmin = await t.createKey('scopedAdministrator', [paris]);
    ids.a = (await create('A', [paris])).id;
    ids.b = (await create('B', [london])).id;
    ids.c = (await create('C', [paris])).id;
  });
  afterAll(async () => t.close());

  it('hides policies out of scope but shows the true priorities of the rest', async () => {
    expect(await limits()).toEqual(['All users and all devices:0', 'A:1', 'B:2', 'C:3']);
    // No Default tag: the defaults are hidden too; C stays 3, not 2.
    expect(await limits(parisAdmin)).toEqual(['A:1', 'C:3']);
    expect((await req('GET', `${BETA}/$count`, undefined, parisAdmin)).body).toBe('2');
    expect(await limits(await t.createKey('readOnlyOperator', [london, '0']))).toEqual(['All users and all devices:0', 'B:2']);
    expect((await req('GET', `${BETA}/${ids.a}`, undefined, parisAdmin)).json().priority).toBe(1);
  });

  it('answers 404 for out-of-scope policies on every operation, changing nothing', async () => {
    for (const id of [ids.b!, `${t.tenantId}_DefaultLimit`]) {
      for (const [method, url, payload] of [
        ['GET', `${BETA}/${id}`],
        ['GET', `${BETA}/${id}/assignments`],
        ['PATCH', `${BETA}/${id}`, { limit: 1 }],
        ['DELETE', `${BETA}/${id}`],
        ['POST', `${BETA}/${id}/setPriority`, { priority: 1 }],
        ['POST', `${BETA}/${id}/assign`, { enrollmentConfigurationAssignments: [] }],
      ] as const) {
        const res = await req(method, url, payload, parisAdmin);
        expect(res.statusCode, `${method} ${url}`).toBe(404);
      }
    }
    expect((await req('GET', `${BETA}?$filter=displayName eq 'B'`, undefined, parisAdmin)).json().value).toEqual([]);
    expect(await limits()).toEqual(['All users and all devices:0', 'A:1', 'B:2', 'C:3']);
  });

  it('a scoped setPriority places its policy among all, renumbering the ones it cannot see', async () => {
    expect((await req('POST', `${BETA}/${ids.c}/setPriority`, { priority: 1 }, parisAdmin)).statusCode).toBe(204);
    expect(await limits()).toEqual(['All users and all devices:0', 'C:1', 'A:2', 'B:3']);
    expect(await limits(parisAdmin)).toEqual(['C:1', 'A:2']);
    // Past the end: after the hidden B as well.
    expect((await req('POST', `${BETA}/${ids.c}/setPriority`, { priority: 25 }, parisAdmin)).statusCode).toBe(204);
    expect(await limits()).toEqual(['All users and all devices:0', 'A:1', 'B:2', 'C:3']);
  });

  it('scoped creation takes the caller’s tags, goes after every policy, and can’t hand out other tags', async () => {
    const d = await create('D', undefined, parisAdmin);
    expect(d).toMatchObject({ priority: 4, roleScopeTagIds: [paris] });
    ids.d = d.id;
    const refused = await req('POST', BETA, { '@odata.type': LIMIT, displayName: 'E', limit: 2, roleScopeTagIds: [london] }, parisAdmin);
    expect(refused.statusCode).toBe(403);
    expect((await req('PATCH', `${BETA}/${ids.a}`, { roleScopeTagIds: [paris, london] }, parisAdmin)).statusCode).toBe(403);
    expect(await limits()).toEqual(['All users and all devices:0', 'A:1', 'B:2', 'C:3', 'D:4']);
  });

  it('keeps tags the caller can’t see when it edits a policy', async () => {
    const both = await create('Both', [paris, london]);
    const res = await req('PATCH', `${BETA}/${both.id}`, { roleScopeTagIds: [paris] }, parisAdmin);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().roleScopeTagIds).toEqual([paris, london]);
    expect((await req('DELETE', `${BETA}/${both.id}`, undefined, parisAdmin)).statusCode).toBe(204);
  });

  it('a scoped delete renumbers hidden policies too', async () => {
    expect((await req('DELETE', `${BETA}/${ids.a}`, undefined, parisAdmin)).statusCode).toBe(204);
    expect(await limits()).toEqual(['All users and all devices:0', 'B:1', 'C:2', 'D:3']);
    expect(await limits(parisAdmin)).toEqual(['C:2', 'D:3']);
  });

  it('scopes assignment filters the same way, and a hidden filter can’t be attached', async () => {
    const londonFilter = (await req('POST', FILTERS, { displayName: 'London iPads', platform: 'iOS', rule: '(device.model -startsWith "iPad")', roleScopeTags: [london] })).json();
    expect(londonFilter.roleScopeTags).toEqual([london]);
    const parisFilter = (await req('POST', FILTERS, { displayName: 'Paris iPads', platform: 'iOS', rule: '(device.model -startsWith "iPad")' }, parisAdmin)).json();
    expect(parisFilter.roleScopeTags).toEqual([paris]);
    const seen = (await req('GET', FILTERS, undefined, parisAdmin)).json().value.map((f: Entity) => f.displayName);
    expect(seen).toEqual(['Paris iPads']);
    expect((await req('GET', `${FILTERS}/${londonFilter.id}`, undefined, parisAdmin)).statusCode).toBe(404);
    expect((await req('PATCH', `${FILTERS}/${londonFilter.id}`, { description: 'x' }, parisAdmin)).statusCode).toBe(404);
    expect((await req('DELETE', `${FILTERS}/${londonFilter.id}`, undefined, parisAdmin)).statusCode).toBe(404);
    const ios = await req('POST', BETA, { '@odata.type': '#microsoft.graph.deviceEnrollmentPlatformRestrictionConfiguration', displayName: 'Paris iOS', platformType: 'ios' }, parisAdmin);
    const target = (filterId: string) => ({
      enrollmentConfigurationAssignments: [
        { target: { '@odata.type': '#microsoft.graph.allLicensedUsersAssignmentTarget', deviceAndAppManagementAssignmentFilterId: filterId, deviceAndAppManagementAssignmentFilterType: 'include' } },
      ],
    });
    expect((await req('POST', `${BETA}/${ios.json().id}/assign`, target(londonFilter.id), parisAdmin)).statusCode).toBe(400);
    expect((await req('POST', `${BETA}/${ios.json().id}/assign`, target(parisFilter.id), parisAdmin)).statusCode).toBe(204);
  });
});
