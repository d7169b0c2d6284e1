import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { createTag, enroll, serial } from '../devices/fixtures.js';
import {
  addMember,
  allDevicesTarget,
  allUsersTarget,
  createGroup,
  createUser,
  exclusionTarget,
  groupTarget,
  termsModule,
} from './terms-reports-fixtures.js';

const TC = '/beta/deviceManagement/termsAndConditions';
const TC1 = '/v1.0/deviceManagement/termsAndConditions';

const terms = (over: Record<string, unknown> = {}) => ({
  displayName: 'Contoso terms',
  description: 'For BYOD',
  title: 'Contoso Company Terms',
  bodyText: 'I acknowledge that by enrolling my device, Contoso administrators will have certain types of control.',
  acceptanceStatement: 'By enrolling your device, you agree to Contoso company policies and terms.',
  ...over,
});

describe('termsAndConditions', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  const post = (url: string, payload: unknown, key?: string) => t.request({ method: 'POST', url, payload: payload as Record<string, unknown>, ...(key ? { key } : {}) });
  const patch = (url: string, payload: unknown, key?: string) => t.request({ method: 'PATCH', url, payload: payload as Record<string, unknown>, ...(key ? { key } : {}) });
  const get = (url: string, key?: string) => t.request({ method: 'GET', url, ...(key ? { key } : {}) });
  const del = (url: string, key?: string) => t.request({ method: 'DELETE', url, ...(key ? { key } : {}) });
  const create = async (over: Record<string, unknown> = {}) => {
    const res = await post(TC, terms(over));
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; version: number };
  };
  const service = () => termsModule(t).terms;
  const forUser = (userId: string, groups: string[] = []) => service().termsForUser(t.store.db, t.tenantId, userId, groups);
  const accept = (userId: string, termsId: string, version: number) => t.store.transaction((trx) => service().acceptTerms(trx, t.tenantId, userId, termsId, version));

  it('creates a policy at version 1 with the Graph shape on beta and v1.0', async () => {
    const res = await post(TC, { '@odata.type': '#microsoft.graph.termsAndConditions', ...terms() });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body).toMatchObject({
      '@odata.context': 'http://openenroll.test/beta/$metadata#deviceManagement/termsAndConditions/$entity',
      '@odata.type': '#microsoft.graph.termsAndConditions',
      displayName: 'Contoso terms',
      title: 'Contoso Company Terms',
      version: 1,
      roleScopeTagIds: ['0'],
    });
    expect(body.createdDateTime).toBe(body.lastModifiedDateTime);
    expect(body.modifiedDateTime).toBe(body.lastModifiedDateTime);

    const v1 = (await get(`${TC1}/${body.id}`)).json();
    expect(v1).toMatchObject({ id: body.id, version: 1, displayName: 'Contoso terms' });
    expect(v1).not.toHaveProperty('roleScopeTagIds');
    expect(v1).not.toHaveProperty('modifiedDateTime');
    const refused = await post(TC1, terms({ roleScopeTagIds: ['0'] }));
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error.target).toBe('roleScopeTagIds');
    expect((await post(TC1, terms())).statusCode).toBe(201);

    const list = (await get(`${TC}?$filter=displayName eq 'contoso TERMS'&$count=true`)).json();
    expect(list['@odata.count']).toBeGreaterThanOrEqual(1);
  });

  it('refuses bad input naming the property', async () => {
    for (const [payload, target] of [
      [terms({ version: 2 }), 'version'],
      [terms({ title: null }), 'title'],
      [terms({ bodyText: '   ' }), 'bodyText'],
      [{ ...terms(), displayName: undefined }, 'displayName'],
      [terms({ displayName: 'x'.repeat(257) }), 'displayName'],
      [terms({ colour: 'red' }), 'colour'],
      [terms({ roleScopeTagIds: ['999'] }), 'roleScopeTagIds'],
    ] as const) {
      const res = await post(TC, payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error.target).toBe(target);
    }
    // Restoring a backup may send version 1 and read-only properties: accepted, ignored.
    const restored = await post(TC, terms({ version: 1, id: 'x', createdDateTime: '2020-01-01T00:00:00Z' }));
    expect(restored.statusCode).toBe(201);
    expect(restored.json().id).not.toBe('x');
  });

  it('keeps the version on edits and bumps it by exactly one when users must accept again', async () => {
    const { id } = await create();
    const edited = await patch(`${TC}/${id}`, { bodyText: 'Fixed a typo.' });
    expect(edited.json()).toMatchObject({ version: 1, bodyText: 'Fixed a typo.' });
    expect((await patch(`${TC}/${id}`, { version: 1, title: 'Same' })).json().version).toBe(1);
    const bumped = await patch(`${TC}/${id}`, { version: 2, bodyText: 'New meaning.' });
    expect(bumped.statusCode).toBe(200);
    expect(bumped.json().version).toBe(2);
    for (const version of [1, 4]) {
      const res = await patch(`${TC}/${id}`, { version });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.target).toBe('version');
    }
    expect((await get(`${TC}/${id}`)).json().version).toBe(2);
    const cleared = await patch(`${TC}/${id}`, { title: null });
    expect(cleared.statusCode).toBe(400);
    expect(cleared.json().error.target).toBe('title');
  });

  it('counts acceptance per user per version: a bump makes users accept again, on every device once', async () => {
    const { id } = await create({ displayName: 'Versioned' });
    const alice = await createUser(t, 'alice.v@contoso.test');
    expect((await post(`${TC}/${id}/assignments`, { target: allUsersTarget })).statusCode).toBe(201);

    expect(await forUser(alice)).toEqual([expect.objectContaining({ termsId: id, version: 1, accepted: false, displayName: 'Versioned' })]);
    const accepted = await accept(alice, id, 1);
    expect(accepted).toMatchObject({ acceptedVersion: 1, userPrincipalName: 'alice.v@contoso.test', userDisplayName: 'alice.v' });
    expect((await forUser(alice))[0]!.accepted).toBe(true);
    // Acceptance is per user, not per device: accepting again changes nothing but the time.
    await accept(alice, id, 1);
    expect((await get(`${TC}/${id}/acceptanceStatuses`)).json().value).toHaveLength(1);

    await patch(`${TC}/${id}`, { version: 2 });
    expect((await forUser(alice))[0]).toMatchObject({ version: 2, accepted: false });
    const stale = await t.store.transaction((trx) => service().acceptTerms(trx, t.tenantId, alice, id, 1)).catch((e: unknown) => e);
    expect(stale).toMatchObject({ statusCode: 409 });
    const statuses = (await get(`${TC}/${id}/acceptanceStatuses?$filter=acceptedVersion lt 2`)).json().value;
    expect(statuses).toEqual([expect.objectContaining({ '@odata.type': '#microsoft.graph.termsAndConditionsAcceptanceStatus', acceptedVersion: 1, userPrincipalName: 'alice.v@contoso.test' })]);

    await accept(alice, id, 2);
    expect((await forUser(alice))[0]!.accepted).toBe(true);
    const latest = (await get(`${TC}/${id}/acceptanceStatuses?$filter=userPrincipalName eq 'ALICE.V@contoso.test'`)).json().value;
    expect(latest).toEqual([expect.objectContaining({ acceptedVersion: 2 })]);
    const statusId = latest[0].id as string;
    expect((await get(`${TC}/${id}/acceptanceStatuses/${statusId}/termsAndConditions`)).json()).toMatchObject({ id, version: 2 });
    expect((await get(`${TC}/${id}/acceptanceStatuses/$count`)).body).toBe('1');
  });

  it('targets all users, group members only, and never excluded members', async () => {
    const { id } = await create({ displayName: 'Targeted' });
    const inGroup = await createUser(t, 'member.t@contoso.test');
    const outside = await createUser(t, 'outside.t@contoso.test');
    const sales = await createGroup(t, 'Sales T');
    const contractors = await createGroup(t, 'Contractors T');
    await addMember(t, sales, inGroup);
    expect((await post(`${TC}/${id}/assignments`, { target: groupTarget(sales) })).statusCode).toBe(201);
    expect((await forUser(inGroup, [sales])).map((x) => x.termsId)).toContain(id);
    expect((await forUser(outside, [])).map((x) => x.termsId)).not.toContain(id);

    const all = await post(`${TC}/${id}/assignments`, { target: allUsersTarget });
    expect(all.statusCode).toBe(201);
    expect((await forUser(outside, [])).map((x) => x.termsId)).toContain(id);
    await post(`${TC}/${id}/assignments`, { target: exclusionTarget(contractors) });
    expect((await forUser(outside, [contractors])).map((x) => x.termsId)).not.toContain(id);
    expect((await forUser(inGroup, [sales, contractors])).map((x) => x.termsId)).not.toContain(id);

    const list = (await get(`${TC}/${id}/assignments`)).json();
    expect(list.value).toHaveLength(3);
    expect(list.value.map((a: { target: { '@odata.type': string } }) => a.target['@odata.type']).sort()).toEqual([
      '#microsoft.graph.allLicensedUsersAssignmentTarget',
      '#microsoft.graph.exclusionGroupAssignmentTarget',
      '#microsoft.graph.groupAssignmentTarget',
    ]);
    // The legacy view shows the included groups only, with the same ids.
    const legacy = (await get(`${TC}/${id}/groupAssignments`)).json().value;
    expect(legacy).toEqual([expect.objectContaining({ '@odata.type': '#microsoft.graph.termsAndConditionsGroupAssignment', targetGroupId: sales })]);
    expect(list.value.map((a: { id: string }) => a.id)).toContain(legacy[0].id);
  });

  it('validates assignment targets: groups must exist and hold users; no devices, filters or duplicates', async () => {
    const { id } = await create({ displayName: 'Validated' });
    const url = `${TC}/${id}/assignments`;
    const devices = await createGroup(t, 'iPads T');
    const device = await enroll(t, { serialNumber: serial(), operatingSystem: 'iOS' });
    await addMember(t, devices, device.device.id);
    const dynamic = await createGroup(t, 'Dynamic T', { groupTypes: ['DynamicMembership'], membershipRule: 'device.deviceOSType -eq "iPad"', membershipRuleProcessingState: 'On' });
    const users = await createGroup(t, 'Users T');
    const cases: [unknown, number, string][] = [
      [allDevicesTarget, 400, 'target'],
      [groupTarget('00000000-0000-0000-0000-000000000000'), 400, 'target.groupId'],
      [groupTarget(devices), 400, 'target'],
      [groupTarget(dynamic), 400, 'target'],
      [{ ...groupTarget(users), deviceAndAppManagementAssignmentFilterId: 'f1', deviceAndAppManagementAssignmentFilterType: 'include' }, 400, 'target.deviceAndAppManagementAssignmentFilterId'],
      [{ '@odata.type': '#microsoft.graph.configurationManagerCollectionAssignmentTarget', collectionId: 'c' }, 400, 'target'],
      [{ groupId: users }, 400, 'target.@odata.type'],
      [{ '@odata.type': '#microsoft.graph.groupAssignmentTarget' }, 400, 'target.groupId'],
    ];
    for (const [target, status, errTarget] of cases) {
      const res = await post(url, { target });
      expect(res.statusCode, JSON.stringify(target)).toBe(status);
      expect(res.json().error.target, JSON.stringify(target)).toBe(errTarget);
    }
    const dev = await post(url, { target: groupTarget(devices) });
    expect(dev.json().error.message).toContain('iPads T');
    expect((await post(url, { target: groupTarget(users) })).statusCode).toBe(201);
    const dup = await post(url, { target: groupTarget(users) });
    expect(dup.statusCode).toBe(409);
    // A group can't be both included and excluded.
    expect((await post(url, { target: exclusionTarget(users) })).statusCode).toBe(409);
    expect((await post(url, { target: allUsersTarget })).statusCode).toBe(201);
    expect((await post(url, { target: allUsersTarget })).statusCode).toBe(409);
    expect((await post(url, {})).json().error.target).toBe('target');
  });

  it('edits and removes assignments through both views', async () => {
    const { id } = await create({ displayName: 'Edited assignments' });
    const a = await createGroup(t, 'Group A T');
    const b = await createGroup(t, 'Group B T');
    const created = await post(`${TC}/${id}/groupAssignments`, { targetGroupId: a });
    expect(created.statusCode).toBe(201);
    const gid = created.json().id as string;
    expect((await get(`${TC}/${id}/assignments/${gid}`)).json().target).toEqual({
      '@odata.type': '#microsoft.graph.groupAssignmentTarget',
      deviceAndAppManagementAssignmentFilterId: null,
      deviceAndAppManagementAssignmentFilterType: 'none',
      groupId: a,
    });
    expect((await patch(`${TC}/${id}/groupAssignments/${gid}`, { targetGroupId: b })).json()).toMatchObject({ id: gid, targetGroupId: b });
    expect((await get(`${TC}/${id}/groupAssignments/${gid}/termsAndConditions`)).json()).toMatchObject({ id });
    expect((await patch(`${TC}/${id}/assignments/${gid}`, { target: exclusionTarget(a) })).json().target['@odata.type']).toBe('#microsoft.graph.exclusionGroupAssignmentTarget');
    // An exclusion isn't a legacy group assignment.
    expect((await get(`${TC}/${id}/groupAssignments/${gid}`)).statusCode).toBe(404);
    expect((await del(`${TC}/${id}/groupAssignments/${gid}`)).statusCode).toBe(404);
    expect((await del(`${TC}/${id}/assignments/${gid}`)).statusCode).toBe(204);
    expect((await get(`${TC}/${id}/assignments`)).json().value).toEqual([]);
    expect((await patch(`${TC}/${id}/groupAssignments/${gid}`, { targetGroupId: b })).statusCode).toBe(404);
  });

  it('lets an admin record and revoke a user\'s acceptance', async () => {
    const { id } = await create({ displayName: 'Admin recorded' });
    const bob = await createUser(t, 'bob.r@contoso.test', undefined, 'Bob R');
    await post(`${TC}/${id}/assignments`, { target: allUsersTarget });
    const recorded = await post(`${TC}/${id}/acceptanceStatuses`, { userPrincipalName: 'BOB.R@contoso.test' });
    expect(recorded.statusCode).toBe(201);
    expect(recorded.json()).toMatchObject({ acceptedVersion: 1, userDisplayName: 'Bob R', userPrincipalName: 'bob.r@contoso.test' });
    expect((await forUser(bob))[0]!.accepted).toBe(true);
    const wrongVersion = await post(`${TC}/${id}/acceptanceStatuses`, { userPrincipalName: 'bob.r@contoso.test', acceptedVersion: 2 });
    expect(wrongVersion.json().error.target).toBe('acceptedVersion');
    const nobody = await post(`${TC}/${id}/acceptanceStatuses`, { userPrincipalName: 'nobody@contoso.test' });
    expect(nobody.json().error.target).toBe('userPrincipalName');
    const statusId = recorded.json().id as string;
    expect((await get(`${TC}/${id}/acceptanceStatuses/${statusId}`)).json().acceptedVersion).toBe(1);
    expect((await del(`${TC}/${id}/acceptanceStatuses/${statusId}`)).statusCode).toBe(204);
    expect((await forUser(bob))[0]!.accepted).toBe(false);
  });

  it('deletes a policy with its assignments and acceptances, and audits every change', async () => {
    const { id } = await create({ displayName: 'Doomed' });
    const carol = await createUser(t, 'carol.d@contoso.test');
    await post(`${TC}/${id}/assignments`, { target: allUsersTarget });
    await accept(carol, id, 1);
    expect((await del(`${TC}/${id}`)).statusCode).toBe(204);
    expect((await get(`${TC}/${id}`)).statusCode).toBe(404);
    expect((await get(`${TC}/${id}/assignments`)).statusCode).toBe(404);
    expect(await forUser(carol)).not.toContainEqual(expect.objectContaining({ termsId: id }));
    const left = await t.store.db.selectFrom('terms_acceptances').select('id').where('terms_id', '=', id).execute();
    expect(left).toEqual([]);
    const audit = (await get(`/beta/deviceManagement/auditEvents?$filter=resources/resourceId eq '${id}'`)).json().value as { activity: string }[];
    expect(audit.map((e) => e.activity).sort()).toEqual([
      'Accept terms and conditions',
      'Create terms and conditions',
      'Create terms and conditions assignment',
      'Delete terms and conditions',
    ]);
  });

  it('applies roles and scope tags', async () => {
    const reader = await t.createKey('readOnlyOperator');
    const paris = await createTag(t, 'Paris TC');
    const london = await createTag(t, 'London TC');
    const parisAdmin = await t.createKey('scopedAdministrator', [paris]);
    const londonAdmin = await t.createKey('scopedAdministrator', [london]);

    expect((await get(TC, reader)).statusCode).toBe(200);
    expect((await post(TC, terms(), reader)).statusCode).toBe(403);

    const mine = await post(TC, terms({ displayName: 'Paris only' }), parisAdmin);
    expect(mine.statusCode).toBe(201);
    expect(mine.json().roleScopeTagIds).toEqual([paris]);
    const id = mine.json().id as string;
    expect((await post(TC, terms({ roleScopeTagIds: [london] }), parisAdmin)).statusCode).toBe(403);
    expect((await get(`${TC}/${id}`, londonAdmin)).statusCode).toBe(404);
    expect((await get(`${TC}/${id}/acceptanceStatuses`, londonAdmin)).statusCode).toBe(404);
    expect((await patch(`${TC}/${id}`, { title: 'hijack' }, londonAdmin)).statusCode).toBe(404);
    expect((await get(TC, londonAdmin)).json().value.map((x: { id: string }) => x.id)).not.toContain(id);
    expect((await get(TC)).json().value.map((x: { id: string }) => x.id)).toContain(id);
    // An unscoped admin may add Default to it.
    const retagged = await patch(`${TC}/${id}`, { roleScopeTagIds: [paris, '0'] });
    expect(retagged.json().roleScopeTagIds).toEqual(['0', paris]);
    // The Paris admin can't remove the Default tag it can't hand out: it stays.
    expect((await patch(`${TC}/${id}`, { roleScopeTagIds: [paris] }, parisAdmin)).json().roleScopeTagIds).toEqual(['0', paris]);
  });

  it('isolates tenants', async () => {
    const { id } = await create({ displayName: 'Tenant A terms' });
    const other = await t.createTenant('Other TC');
    expect((await get(`${TC}/${id}`, other.adminKey)).statusCode).toBe(404);
    expect((await get(TC, other.adminKey)).json().value).toEqual([]);
    expect((await post(`${TC}/${id}/assignments`, { target: allUsersTarget }, other.adminKey)).statusCode).toBe(404);
    expect((await del(`${TC}/${id}`, other.adminKey)).statusCode).toBe(404);
    expect((await get(`${TC}/${id}`)).statusCode).toBe(200);
  });
});
