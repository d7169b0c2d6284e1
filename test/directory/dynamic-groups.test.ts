import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceChange } from '../../src/devices/events.js';
import { EVALUATION_PAGE_SIZE } from '../../src/directory/dynamic-membership.js';
import type { DirectoryModule } from '../../src/directory/module.js';
import type { ManagedDevicesTable } from '../../src/store/schema.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { api, deviceRow, insertDevice } from './helpers.js';

describe('dynamic device groups', () => {
  let t: TestApp;
  let beta: ReturnType<typeof api>;
  let directory: DirectoryModule;
  beforeAll(async () => {
    t = await createTestApp();
    beta = api(t, 'beta');
    directory = t.app.modules.find((m) => m.name === 'directory') as DirectoryModule;
  });
  afterAll(async () => t.close());

  const createGroup = async (displayName: string, membershipRule: string, extra: Record<string, unknown> = {}) => {
    const res = await beta.post('/groups', { displayName, groupTypes: ['DynamicMembership'], membershipRule, ...extra });
    expect(res.statusCode).toBe(201);
    return res.json().id as string;
  };
  const memberIds = async (groupId: string) =>
    (await t.store.db.selectFrom('group_members').select('member_id').where('group_id', '=', groupId).orderBy('member_id').execute()).map((r) => r.member_id);
  const groupsOf = async (memberId: string) =>
    (await t.store.db.selectFrom('group_members').select('group_id').where('member_id', '=', memberId).execute()).map((r) => r.group_id).sort();

  /** What the devices module does: change the record and tell listeners, in one transaction. */
  const changeDevice = async (tenantId: string, before: ManagedDevicesTable | null, after: ManagedDevicesTable | null) => {
    await t.store.transaction(async (trx) => {
      if (after && before) await trx.updateTable('managed_devices').set(after).where('id', '=', after.id).execute();
      else if (after) await trx.insertInto('managed_devices').values(after).execute();
      else if (before) await trx.deleteFrom('managed_devices').where('id', '=', before.id).execute();
      const change: DeviceChange = { tenantId, before, after };
      await directory.deviceChangeListener(trx, change);
    });
  };

  it('keeps one device in step with every active rule as it is created, changed and deleted', async () => {
    const kiosk = await createGroup('Kiosk devices', 'device.enrollmentProfileName -eq "Kiosk"');
    const hr = await createGroup('HR devices', 'device.deviceCategory -eq "HR"');
    const corporateIpads = await createGroup('Corporate iPads', '(device.deviceModel -startsWith "iPad") -and device.deviceOwnership -eq "Company"');
    const assigned = (await beta.post('/groups', { displayName: 'Assigned' })).json().id as string;

    const created = deviceRow(t.tenantId, { enrollment_profile_name: 'KIOSK', model: 'iPad Pro', managed_device_owner_type: 'company' });
    await changeDevice(t.tenantId, null, created);
    expect(await groupsOf(created.id)).toEqual([kiosk, corporateIpads].sort());

    const categorised = { ...created, device_category_display_name: 'hr', updated_at: '2026-01-02T00:00:00.000Z' };
    await changeDevice(t.tenantId, created, categorised);
    expect(await groupsOf(created.id)).toEqual([kiosk, hr, corporateIpads].sort());

    const reprofiled = { ...categorised, enrollment_profile_name: 'Shared', managed_device_owner_type: 'personal' };
    await changeDevice(t.tenantId, categorised, reprofiled);
    expect(await groupsOf(created.id)).toEqual([hr]);

    // A change no rule can see leaves memberships alone.
    await changeDevice(t.tenantId, reprofiled, { ...reprofiled, last_sync_date_time: '2026-01-03T00:00:00.000Z', notes: 'synced' });
    expect(await groupsOf(created.id)).toEqual([hr]);

    // Deleting the device removes all its memberships, assigned ones too.
    await beta.post(`/groups/${assigned}/members/$ref`, beta.ref(created.id));
    expect(await groupsOf(created.id)).toEqual([hr, assigned].sort());
    await changeDevice(t.tenantId, reprofiled, null);
    expect(await groupsOf(created.id)).toEqual([]);
  });

  it("rolls back with the device change's transaction", async () => {
    const group = await createGroup('Rollback', 'device.deviceCategory -eq "Rollback"');
    const device = deviceRow(t.tenantId, { device_category_display_name: 'Rollback' });
    await expect(
      t.store.transaction(async (trx) => {
        await trx.insertInto('managed_devices').values(device).execute();
        await directory.deviceChangeListener(trx, { tenantId: t.tenantId, before: null, after: device });
        expect(await trx.selectFrom('group_members').select('member_id').where('group_id', '=', group).execute()).toHaveLength(1);
        throw new Error('enrollment failed');
      }),
    ).rejects.toThrow('enrollment failed');
    expect(await memberIds(group)).toEqual([]);
  });

  it('leaves paused groups alone until they are turned back On', async () => {
    const group = await createGroup('Paused', 'device.deviceCategory -eq "Paused"', { membershipRuleProcessingState: 'Paused' });
    const device = deviceRow(t.tenantId, { device_category_display_name: 'Paused' });
    await changeDevice(t.tenantId, null, device);
    expect(await memberIds(group)).toEqual([]);
    const resumed = await beta.patch(`/groups/${group}`, { membershipRuleProcessingState: 'On' });
    expect(resumed.json().membershipRuleProcessingState).toBe('On');
    expect(await memberIds(group)).toEqual([device.id]);
    // Paused again: a device that stops matching stays a member.
    await beta.patch(`/groups/${group}`, { membershipRuleProcessingState: 'Paused' });
    await changeDevice(t.tenantId, device, { ...device, device_category_display_name: 'Other' });
    expect(await memberIds(group)).toEqual([device.id]);
    // A rule changed while paused is applied on resume.
    await beta.patch(`/groups/${group}`, { membershipRule: 'device.deviceCategory -eq "Other"' });
    expect(await memberIds(group)).toEqual([device.id]);
    await beta.patch(`/groups/${group}`, { membershipRule: 'device.deviceCategory -eq "Nothing"' });
    await beta.patch(`/groups/${group}`, { membershipRuleProcessingState: 'On' });
    expect(await memberIds(group)).toEqual([]);
  });

  it('never mixes tenants', async () => {
    const other = await t.createTenant('Other');
    const otherGroup = (
      await t.request({
        method: 'POST',
        url: '/beta/groups',
        key: other.adminKey,
        payload: { displayName: 'Other kiosks', groupTypes: ['DynamicMembership'], membershipRule: 'device.enrollmentProfileName -eq "Tenant test"' },
      })
    ).json().id as string;
    const mine = await createGroup('My kiosks', 'device.enrollmentProfileName -eq "Tenant test"');
    const myDevice = deviceRow(t.tenantId, { enrollment_profile_name: 'Tenant test' });
    const theirDevice = deviceRow(other.tenantId, { enrollment_profile_name: 'Tenant test' });
    await changeDevice(t.tenantId, null, myDevice);
    await changeDevice(other.tenantId, null, theirDevice);
    expect(await memberIds(mine)).toEqual([myDevice.id]);
    expect(await memberIds(otherGroup)).toEqual([theirDevice.id]);
    // Re-evaluating a whole group reads only its tenant's devices.
    await beta.patch(`/groups/${mine}`, { membershipRule: 'device.enrollmentProfileName -startsWith "Tenant"' });
    expect(await memberIds(mine)).toEqual([myDevice.id]);
  });
});

describe('evaluating a whole tenant for a group', () => {
  let t: TestApp;
  let beta: ReturnType<typeof api>;
  const expected = { kiosk: [] as string[], hr: [] as string[] };
  const DEVICES = 2 * EVALUATION_PAGE_SIZE + 1; // three pages, the last with one device

  beforeAll(async () => {
    t = await createTestApp();
    beta = api(t, 'beta');
    const rows = Array.from({ length: DEVICES }, (_, i) =>
      deviceRow(t.tenantId, {
        id: `dev-${String(i).padStart(5, '0')}`,
        enrollment_profile_name: i % 3 === 0 || i === DEVICES - 1 ? 'Kiosk' : 'Standard',
        device_category_display_name: i % 5 === 0 ? 'HR' : null,
      }),
    );
    for (const r of rows) {
      if (r.enrollment_profile_name === 'Kiosk') expected.kiosk.push(r.id);
      if (r.device_category_display_name === 'HR') expected.hr.push(r.id);
    }
    for (let i = 0; i < rows.length; i += 200) await t.store.db.insertInto('managed_devices').values(rows.slice(i, i + 200)).execute();
  }, 120_000);
  afterAll(async () => t.close());

  const memberIds = async (groupId: string) =>
    (await t.store.db.selectFrom('group_members').select(['member_id', 'member_type', 'source']).where('group_id', '=', groupId).execute())
      .map((r) => {
        expect([r.member_type, r.source]).toEqual(['device', 'dynamic']);
        return r.member_id;
      })
      .sort();

  it('fills a new dynamic group from every device of the tenant, across pages', async () => {
    const res = await beta.post('/groups', { displayName: 'Kiosk', groupTypes: ['DynamicMembership'], membershipRule: 'device.enrollmentProfileName -eq "kiosk"' });
    expect(res.statusCode).toBe(201);
    const id = res.json().id as string;
    expect(await memberIds(id)).toEqual(expected.kiosk);
    expect((await beta.get(`/groups/${id}/members/$count`)).body).toBe(String(expected.kiosk.length));
    // The last device (on a page of its own) is in when it matches.
    expect(expected.kiosk).toContain(`dev-${String(DEVICES - 1).padStart(5, '0')}`);
  });

  it('re-evaluates when the rule changes, adding and removing members', async () => {
    const id = (await beta.post('/groups', { displayName: 'Changing', groupTypes: ['DynamicMembership'], membershipRule: 'device.enrollmentProfileName -eq "Kiosk"' })).json()
      .id as string;
    const res = await beta.patch(`/groups/${id}`, { membershipRule: 'device.deviceCategory -eq "HR"' });
    expect(res.statusCode).toBe(200);
    expect(res.json().membershipRule).toBe('device.deviceCategory -eq "HR"');
    expect(await memberIds(id)).toEqual(expected.hr);
    const both = await beta.patch(`/groups/${id}`, { membershipRule: 'device.deviceCategory -eq "HR" -and device.enrollmentProfileName -eq "Kiosk"' });
    expect(both.statusCode).toBe(200);
    expect(await memberIds(id)).toEqual(expected.hr.filter((d) => expected.kiosk.includes(d)));
    const bad = await beta.patch(`/groups/${id}`, { membershipRule: 'device.deviceCategory -eq' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.target).toBe('membershipRule');
    expect(await memberIds(id)).toEqual(expected.hr.filter((d) => expected.kiosk.includes(d)));
  });

  it('turns an assigned group dynamic (members replaced by the rule) and back (members kept, now assigned)', async () => {
    const id = (await beta.post('/groups', { displayName: 'Switch' })).json().id as string;
    const userId = (await beta.post('/users', { userPrincipalName: 'switch@contoso.com', displayName: 'Switch' })).json().id as string;
    const extra = await insertDevice(t.store.db, t.tenantId, { id: 'zz-extra', enrollment_profile_name: 'None' });
    await beta.post(`/groups/${id}/members/$ref`, beta.ref(userId));
    await beta.post(`/groups/${id}/members/$ref`, beta.ref(extra.id));

    const toDynamic = await beta.patch(`/groups/${id}`, { groupTypes: ['DynamicMembership'], membershipRule: 'device.deviceCategory -eq "HR"' });
    expect(toDynamic.statusCode).toBe(200);
    expect(toDynamic.json()).toMatchObject({ groupTypes: ['DynamicMembership'], membershipRuleProcessingState: 'On' });
    expect(await memberIds(id)).toEqual(expected.hr);

    const toAssigned = await beta.patch(`/groups/${id}`, { groupTypes: [] });
    expect(toAssigned.statusCode).toBe(200);
    expect(toAssigned.json()).toMatchObject({ groupTypes: [], membershipRule: null, membershipRuleProcessingState: null });
    const rows = await t.store.db.selectFrom('group_members').select(['member_id', 'source']).where('group_id', '=', id).execute();
    expect(rows.map((r) => r.member_id).sort()).toEqual(expected.hr);
    expect(new Set(rows.map((r) => r.source))).toEqual(new Set(['assigned']));
    expect((await beta.post(`/groups/${id}/members/$ref`, beta.ref(userId))).statusCode).toBe(204);

    // Keeping a rule while dropping DynamicMembership is refused.
    const g2 = (await beta.post('/groups', { displayName: 'Keep rule?', groupTypes: ['DynamicMembership'], membershipRule: 'device.deviceCategory -eq "HR"' })).json().id as string;
    const refused = await beta.patch(`/groups/${g2}`, { groupTypes: [], membershipRule: 'device.deviceCategory -eq "HR"' });
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error.target).toBe('membershipRule');
  });
});
