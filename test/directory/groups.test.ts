import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { api, insertDevice } from './helpers.js';

const RULE = 'device.enrollmentProfileName -eq "Kiosk"';

describe('groups', () => {
  let t: TestApp;
  let beta: ReturnType<typeof api>;
  beforeAll(async () => {
    t = await createTestApp();
    beta = api(t, 'beta');
  });
  afterAll(async () => t.close());

  it('creates an assigned security group with Graph defaults', async () => {
    const res = await beta.post('/groups', { displayName: 'Sales Devices', description: 'All sales iPads' });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toEqual({
      '@odata.context': 'http://openenroll.test/beta/$metadata#groups/$entity',
      '@odata.type': '#microsoft.graph.group',
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      displayName: 'Sales Devices',
      description: 'All sales iPads',
      mailNickname: 'SalesDevices',
      mailEnabled: false,
      securityEnabled: true,
      groupTypes: [],
      membershipRule: null,
      membershipRuleProcessingState: null,
      createdDateTime: t.clock.now().toISOString(),
    });
    const id = res.json().id as string;
    expect((await api(t, 'v1.0').get(`/groups/${id}`)).json()).toMatchObject({ '@odata.context': 'http://openenroll.test/v1.0/$metadata#groups/$entity', id });
    const audit = await t.store.db.selectFrom('audit_events').selectAll().where('resource_id', '=', id).execute();
    expect(audit.map((a) => [a.activity, a.category, a.component_name, a.resource_type])).toEqual([['Add group', 'Directory', 'Directory', 'microsoft.graph.group']]);
  });

  it('creates a dynamic device group, On by default', async () => {
    const res = await beta.post('/groups', { displayName: 'Kiosks', mailNickname: 'kiosks', groupTypes: ['DynamicMembership'], membershipRule: RULE });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ groupTypes: ['DynamicMembership'], membershipRule: RULE, membershipRuleProcessingState: 'On', mailNickname: 'kiosks' });
  });

  it('refuses bad groups naming the property, and writes nothing', async () => {
    const count = async () => (await t.store.db.selectFrom('groups').select('id').execute()).length;
    const before = await count();
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{}, 'displayName', /required/],
      [{ displayName: '' }, 'displayName', /fewer than 1/],
      [{ displayName: ' ' }, 'displayName', /must not be empty/],
      [{ displayName: 'G', owners: [] }, 'owners', /not a known property/],
      [{ displayName: 'G', groupTypes: ['Dynamic'] }, 'groupTypes.0', /DynamicMembership/],
      [{ displayName: 'G', groupTypes: 'DynamicMembership' }, 'groupTypes', /must be array/],
      [{ displayName: 'G', groupTypes: ['Unified', 'Unified'] }, 'groupTypes', /duplicate/],
      [{ displayName: 'G', groupTypes: ['DynamicMembership'] }, 'membershipRule', /required when groupTypes/],
      [{ displayName: 'G', groupTypes: ['DynamicMembership'], membershipRule: null }, 'membershipRule', /required when groupTypes/],
      [{ displayName: 'G', groupTypes: ['DynamicMembership'], membershipRule: 'user.department -eq "Sales"' }, 'membershipRule', /user properties.*position 0/],
      [{ displayName: 'G', groupTypes: ['DynamicMembership'], membershipRule: 'device.deviceModel -match "x"' }, 'membershipRule', /-match.*position 19/],
      [{ displayName: 'G', groupTypes: ['DynamicMembership'], membershipRule: `device.displayName -eq "${'x'.repeat(3100)}"` }, 'membershipRule', /more than 3072/],
      [{ displayName: 'G', groupTypes: ['Unified', 'DynamicMembership'], membershipRule: RULE }, 'groupTypes', /Unified/],
      [{ displayName: 'G', membershipRule: RULE }, 'membershipRule', /only be set when groupTypes/],
      [{ displayName: 'G', membershipRuleProcessingState: 'On' }, 'membershipRuleProcessingState', /only be set when/],
      [{ displayName: 'G', groupTypes: ['DynamicMembership'], membershipRule: RULE, membershipRuleProcessingState: 'Off' }, 'membershipRuleProcessingState', /'On', 'Paused'/],
      [{ displayName: 'G', mailNickname: 'has space' }, 'mailNickname', /spaces/],
      [{ displayName: 'G', securityEnabled: 'true' }, 'securityEnabled', /must be boolean/],
    ];
    for (const [payload, target, message] of cases) {
      const res = await beta.post('/groups', payload);
      expect({ payload, status: res.statusCode, target: res.json().error?.target }).toEqual({ payload, status: 400, target });
      expect(res.json().error.message).toMatch(message);
    }
    // A rule of exactly 3072 characters is fine.
    const prefix = 'device.displayName -eq "';
    const longest = `${prefix}${'x'.repeat(3072 - prefix.length - 1)}"`;
    expect((await beta.post('/groups', { displayName: 'Longest rule', groupTypes: ['DynamicMembership'], membershipRule: longest })).statusCode).toBe(201);
    expect(await count()).toBe(before + 1);
  });

  it('patches (200 with the entity) and deletes (204) groups', async () => {
    const id = (await beta.post('/groups', { displayName: 'Temp' })).json().id as string;
    const res = await beta.patch(`/groups/${id}`, { displayName: 'Temp 2', description: 'd', id, createdDateTime: 'ignored' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ '@odata.type': '#microsoft.graph.group', id, displayName: 'Temp 2', description: 'd' });
    expect((await beta.patch(`/groups/${id}`, { description: null })).json().description).toBeNull();
    expect((await beta.patch(`/groups/${id}`, { membershipRule: RULE })).json().error.target).toBe('membershipRule');
    expect((await beta.del(`/groups/${id}`)).statusCode).toBe(204);
    expect((await beta.get(`/groups/${id}`)).statusCode).toBe(404);
    expect((await beta.patch(`/groups/${id}`, { description: 'x' })).statusCode).toBe(404);
    expect((await beta.del(`/groups/${id}`)).statusCode).toBe(404);
    const audit = await t.store.db.selectFrom('audit_events').select('activity').where('resource_id', '=', id).execute();
    expect(audit.map((a) => a.activity).sort()).toEqual(['Add group', 'Delete group', 'Update group', 'Update group']);
  });

  it('lists, filters and counts groups', async () => {
    const list = await beta.get(`/groups?$filter=${encodeURIComponent("displayName eq 'KIOSKS'")}`);
    expect(list.json().value).toHaveLength(1);
    expect(list.json().value[0]).toMatchObject({ '@odata.type': '#microsoft.graph.group', displayName: 'Kiosks' });
    expect((await beta.get(`/groups?$filter=${encodeURIComponent("membershipRuleProcessingState eq 'On'")}&$count=true`)).json()['@odata.count']).toBe(2);
    expect((await beta.get('/groups/$count')).body).toBe(String((await t.store.db.selectFrom('groups').select('id').where('tenant_id', '=', t.tenantId).execute()).length));
  });
});

describe('group members', () => {
  let t: TestApp;
  let beta: ReturnType<typeof api>;
  let groupId: string;
  let userId: string;
  let deviceId: string;
  beforeAll(async () => {
    t = await createTestApp();
    beta = api(t, 'beta');
    groupId = (await beta.post('/groups', { displayName: 'Pilot' })).json().id as string;
    userId = (await beta.post('/users', { userPrincipalName: 'pilot.user@contoso.com', displayName: 'Pilot User' })).json().id as string;
    deviceId = (
      await insertDevice(t.store.db, t.tenantId, {
        device_name: 'PILOT-IPAD',
        azure_ad_device_id: 'aad-pilot',
        enrollment_profile_name: 'Pilot ADE',
        device_category_display_name: 'Sales',
      })
    ).id;
  });
  afterAll(async () => t.close());

  it('adds a user and a device by @odata.id, lists and counts them', async () => {
    const add1 = await beta.post(`/groups/${groupId}/members/$ref`, beta.ref(userId));
    expect(add1.statusCode).toBe(204);
    expect(add1.body).toBe('');
    expect((await beta.post(`/groups/${groupId}/members/$ref`, beta.ref(deviceId, 'devices'))).statusCode).toBe(204);

    const list = await beta.get(`/groups/${groupId}/members`);
    expect(list.statusCode).toBe(200);
    const body = list.json();
    expect(body['@odata.context']).toBe('http://openenroll.test/beta/$metadata#directoryObjects');
    const user = body.value.find((m: { id: string }) => m.id === userId);
    const device = body.value.find((m: { id: string }) => m.id === deviceId);
    expect(user).toMatchObject({ '@odata.type': '#microsoft.graph.user', userPrincipalName: 'pilot.user@contoso.com', displayName: 'Pilot User' });
    expect(device).toEqual({
      '@odata.type': '#microsoft.graph.device',
      id: deviceId,
      deviceId: 'aad-pilot',
      displayName: 'PILOT-IPAD',
      accountEnabled: true,
      operatingSystem: 'iOS',
      operatingSystemVersion: '17.4',
      model: 'iPad',
      manufacturer: 'Apple',
      enrollmentProfileName: 'Pilot ADE',
      deviceCategory: 'Sales',
      deviceOwnership: 'Company',
      managementType: 'MDM',
      isManaged: true,
      isCompliant: true,
      registrationDateTime: '2026-01-01T00:00:00.000Z',
      approximateLastSignInDateTime: '2026-01-01T00:00:00.000Z',
    });
    expect((await beta.get(`/groups/${groupId}/members/$count`)).body).toBe('2');
    expect((await beta.get(`/groups/${groupId}/members?$count=true&$top=1`)).json()).toMatchObject({ '@odata.count': 2, '@odata.nextLink': expect.stringContaining('$skiptoken=') });
    expect((await beta.get(`/groups/${groupId}/members?$filter=${encodeURIComponent(`id eq '${deviceId}'`)}`)).json().value).toHaveLength(1);
    expect((await beta.get(`/groups/${groupId}/members?$select=displayName`)).json().value).toEqual(
      expect.arrayContaining([
        { '@odata.type': '#microsoft.graph.user', displayName: 'Pilot User' },
        { '@odata.type': '#microsoft.graph.device', displayName: 'PILOT-IPAD' },
      ]),
    );
    // v1.0 shows the same members.
    expect((await api(t, 'v1.0').get(`/groups/${groupId}/members/$count`)).body).toBe('2');

    const memberOf = await beta.get(`/users/${userId}/memberOf`);
    expect(memberOf.statusCode).toBe(200);
    expect(memberOf.json().value).toEqual([expect.objectContaining({ '@odata.type': '#microsoft.graph.group', id: groupId, displayName: 'Pilot' })]);
    expect((await beta.get('/users/pilot.user@contoso.com/memberOf')).json().value).toHaveLength(1);

    const audit = await t.store.db.selectFrom('audit_events').select(['activity', 'resources']).where('resource_id', '=', groupId).where('activity', '=', 'Add member to group').execute();
    expect(audit).toHaveLength(2);
    expect(audit.map((a) => a.resources).join()).toContain(deviceId);
  });

  it('accepts the reference forms Graph clients send', async () => {
    const g = (await beta.post('/groups', { displayName: 'Refs' })).json().id as string;
    const u1 = (await beta.post('/users', { userPrincipalName: 'ref1@contoso.com', displayName: 'R1' })).json().id as string;
    const u2 = (await beta.post('/users', { userPrincipalName: 'ref2@contoso.com', displayName: 'R2' })).json().id as string;
    const d1 = (await insertDevice(t.store.db, t.tenantId)).id;
    for (const ref of [
      `https://graph.microsoft.com/v1.0/users/${u1}`,
      `https://graph.microsoft.com/beta/directoryObjects('${u2}')`,
      `http://openenroll.test/beta/directoryObjects/${d1}`,
    ]) {
      const res = await beta.post(`/groups/${g}/members/$ref`, { '@odata.id': ref });
      expect({ ref, status: res.statusCode }).toEqual({ ref, status: 204 });
    }
    expect((await beta.get(`/groups/${g}/members/$count`)).body).toBe('3');
    // A user may be named by userPrincipalName too.
    const g2 = (await beta.post('/groups', { displayName: 'Refs 2' })).json().id as string;
    expect((await beta.post(`/groups/${g2}/members/$ref`, { '@odata.id': 'https://graph.microsoft.com/v1.0/users/REF1@contoso.com' })).statusCode).toBe(204);
  });

  it('refuses a duplicate like Graph, and unknown or unsuitable members', async () => {
    const dup = await beta.post(`/groups/${groupId}/members/$ref`, beta.ref(userId));
    expect(dup.statusCode).toBe(400);
    expect(dup.json().error.message).toBe("One or more added object references already exist for the following modified properties: 'members'.");

    const otherGroup = (await beta.post('/groups', { displayName: 'Nested?' })).json().id as string;
    const cases: [unknown, number, RegExp][] = [
      [beta.ref('00000000-0000-0000-0000-000000000000'), 404, /does not exist/],
      [beta.ref(deviceId, 'users'), 404, /does not exist/],
      [beta.ref(userId, 'devices'), 404, /does not exist/],
      [beta.ref(otherGroup), 400, /can't be members of other groups/],
      [beta.ref(otherGroup, 'groups'), 400, /can't be members of other groups/],
      [beta.ref(userId, 'servicePrincipals'), 400, /servicePrincipals/],
      [{ '@odata.id': userId }, 400, /@odata.id/],
      [{ '@odata.id': '' }, 400, /fewer than 1/],
      [{}, 400, /'@odata.id' is required/],
      [{ '@odata.id': `https://graph.microsoft.com/v1.0/users/${userId}`, extra: true }, 400, /not a known property/],
    ];
    for (const [payload, status, message] of cases) {
      const res = await beta.post(`/groups/${groupId}/members/$ref`, payload);
      expect({ payload, status: res.statusCode }).toEqual({ payload, status });
      expect(res.json().error.message).toMatch(message);
    }
    expect((await beta.post(`/groups/00000000-0000-0000-0000-000000000000/members/$ref`, beta.ref(userId))).statusCode).toBe(404);
    expect((await beta.get(`/groups/${groupId}/members/$count`)).body).toBe('2');
  });

  it('keeps devices out of Microsoft 365 groups', async () => {
    const unified = (await beta.post('/groups', { displayName: 'Team', groupTypes: ['Unified'], mailEnabled: true })).json().id as string;
    const res = await beta.post(`/groups/${unified}/members/$ref`, beta.ref(deviceId));
    expect(res.statusCode).toBe(400);
    expect(res.json().error.message).toMatch(/only users/);
    expect((await beta.post(`/groups/${unified}/members/$ref`, beta.ref(userId))).statusCode).toBe(204);
  });

  it('removes a member by id (204), and 404s for a non-member', async () => {
    const g = (await beta.post('/groups', { displayName: 'Removals' })).json().id as string;
    await beta.post(`/groups/${g}/members/$ref`, beta.ref(userId));
    await beta.post(`/groups/${g}/members/$ref`, beta.ref(deviceId));
    expect((await beta.del(`/groups/${g}/members/${deviceId}/$ref`)).statusCode).toBe(204);
    expect((await beta.get(`/groups/${g}/members`)).json().value.map((m: { id: string }) => m.id)).toEqual([userId]);
    const again = await beta.del(`/groups/${g}/members/${deviceId}/$ref`);
    expect(again.statusCode).toBe(404);
    expect(again.json().error.message).toMatch(/is not a member/);
    expect((await beta.del(`/groups/00000000-0000-0000-0000-000000000000/members/${userId}/$ref`)).statusCode).toBe(404);
    const audit = await t.store.db.selectFrom('audit_events').select('activity').where('resource_id', '=', g).where('activity', '=', 'Remove member from group').execute();
    expect(audit).toHaveLength(1);
  });

  it('refuses to add or remove members of a dynamic group by hand', async () => {
    const dyn = (await beta.post('/groups', { displayName: 'Dyn', groupTypes: ['DynamicMembership'], membershipRule: 'device.enrollmentProfileName -eq "Pilot ADE"' })).json()
      .id as string;
    expect((await beta.get(`/groups/${dyn}/members`)).json().value.map((m: { id: string }) => m.id)).toEqual([deviceId]);
    const add = await beta.post(`/groups/${dyn}/members/$ref`, beta.ref(userId));
    expect(add.statusCode).toBe(400);
    expect(add.json().error.message).toMatch(/dynamic group.*membershipRule/);
    const del = await beta.del(`/groups/${dyn}/members/${deviceId}/$ref`);
    expect(del.statusCode).toBe(400);
    expect((await beta.get(`/groups/${dyn}/members/$count`)).body).toBe('1');
  });

  it("deleting a user removes the user's memberships; deleting a group removes its members", async () => {
    const g = (await beta.post('/groups', { displayName: 'Leavers' })).json().id as string;
    const leaver = (await beta.post('/users', { userPrincipalName: 'leaver@contoso.com', displayName: 'Leaver' })).json().id as string;
    await beta.post(`/groups/${g}/members/$ref`, beta.ref(leaver));
    await beta.post(`/groups/${groupId}/members/$ref`, beta.ref(leaver));
    expect((await beta.get(`/users/${leaver}/memberOf`)).json().value).toHaveLength(2);
    expect((await beta.del(`/users/${leaver}`)).statusCode).toBe(204);
    expect(await t.store.db.selectFrom('group_members').select('group_id').where('member_id', '=', leaver).execute()).toEqual([]);
    expect((await beta.get(`/users/${leaver}/memberOf`)).statusCode).toBe(404);

    await beta.post(`/groups/${g}/members/$ref`, beta.ref(userId));
    expect((await beta.del(`/groups/${g}`)).statusCode).toBe(204);
    expect(await t.store.db.selectFrom('group_members').select('member_id').where('group_id', '=', g).execute()).toEqual([]);
    expect((await beta.get(`/groups/${g}/members`)).statusCode).toBe(404);
  });
});
