import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planInsert, planMove, planRemove, type Ranked } from '../../src/enrollment-policy/apple-enrollment-types/priorities.js';
import { chooseEnrollment, parseOptions, USER_CHOICE_OPTIONS } from '../../src/enrollment-policy/apple-enrollment-types/rules.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { createTag, enroll, serial } from '../devices/fixtures.js';
import {
  addMember,
  allDevicesTarget,
  allUsersTarget,
  createGroup,
  createUser,
  enrollmentTypesModule,
  exclusionTarget,
  groupTarget,
} from './terms-reports-fixtures.js';

const P = '/beta/deviceManagement/appleUserInitiatedEnrollmentProfiles';

describe('user choice mapping (pure)', () => {
  it('maps "(Company) owns this device" to device enrollment, corporate', () => {
    expect(chooseEnrollment(USER_CHOICE_OPTIONS, { owner: 'company' })).toEqual({ enrollmentType: 'device', ownerType: 'company' });
    // The second question isn't asked of company devices.
    expect(chooseEnrollment(USER_CHOICE_OPTIONS, { owner: 'company', scope: 'workOnly' })).toEqual({ enrollmentType: 'device', ownerType: 'company' });
  });

  it('maps "I own this device" to user enrollment for work only, device enrollment for the entire device, personal either way', () => {
    expect(chooseEnrollment(USER_CHOICE_OPTIONS, { owner: 'personal', scope: 'workOnly' })).toEqual({ enrollmentType: 'user', ownerType: 'personal' });
    expect(chooseEnrollment(USER_CHOICE_OPTIONS, { owner: 'personal', scope: 'entireDevice' })).toEqual({ enrollmentType: 'device', ownerType: 'personal' });
    // Two personal options: the page must ask which.
    expect(chooseEnrollment(USER_CHOICE_OPTIONS, { owner: 'personal' })).toBeUndefined();
  });

  it('skips the second question when personal devices have one option, and refuses answers not offered', () => {
    const options = parseOptions([
      { ownerType: 'company', enrollmentType: 'webDeviceEnrollment' },
      { ownerType: 'personal', enrollmentType: 'accountDrivenUserEnrollment' },
    ]);
    expect(chooseEnrollment(options, { owner: 'personal' })).toEqual({ enrollmentType: 'accountDrivenUserEnrollment', ownerType: 'personal' });
    expect(chooseEnrollment(options, { owner: 'company' })).toEqual({ enrollmentType: 'webDeviceEnrollment', ownerType: 'company' });
    expect(chooseEnrollment([], { owner: 'company' })).toBeUndefined();
  });

  it('validates options: both owners, no user enrollment for company devices, one option per kind', () => {
    const bad: [unknown, string][] = [
      [[{ ownerType: 'company', enrollmentType: 'device' }], 'availableEnrollmentTypeOptions'],
      [[{ ownerType: 'company', enrollmentType: 'user' }, { ownerType: 'personal', enrollmentType: 'user' }], 'availableEnrollmentTypeOptions[0]'],
      [[{ ownerType: 'personal', enrollmentType: 'user' }, { ownerType: 'personal', enrollmentType: 'accountDrivenUserEnrollment' }], 'availableEnrollmentTypeOptions[1]'],
      [[{ ownerType: 'nobody', enrollmentType: 'device' }], 'availableEnrollmentTypeOptions[0].ownerType'],
      [[{ ownerType: 'company', enrollmentType: 'unknown' }], 'availableEnrollmentTypeOptions[0].enrollmentType'],
      [[{ ownerType: 'company', enrollmentType: 'device', extra: 1 }], 'availableEnrollmentTypeOptions[0].extra'],
      ['device', 'availableEnrollmentTypeOptions'],
    ];
    for (const [raw, target] of bad) {
      expect(() => parseOptions(raw), JSON.stringify(raw)).toThrowError(expect.objectContaining({ options: { target } }));
    }
    expect(parseOptions(null)).toEqual([]);
  });
});

describe('enrollment type priorities (pure)', () => {
  const contiguous = (m: Map<string, number>) => [...m.values()].sort((a, b) => a - b).every((p, i) => p === i);

  it('stays contiguous from 0 through any sequence of inserts, moves and removals', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('insert' as const), at: fc.option(fc.nat(12), { nil: undefined }) }),
      fc.record({ kind: fc.constant('move' as const), pick: fc.nat(), to: fc.nat(12) }),
      fc.record({ kind: fc.constant('remove' as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        let list: Ranked[] = [];
        let n = 0;
        for (const o of ops) {
          let planned: Map<string, number>;
          if (o.kind === 'insert') {
            const id = `p${n++}`;
            planned = planInsert(list, id, o.at);
            if (o.at !== undefined) expect(planned.get(id)).toBe(Math.min(o.at, list.length));
          } else if (list.length === 0) {
            continue;
          } else if (o.kind === 'move') {
            const id = list[o.pick % list.length]!.id;
            planned = planMove(list, id, o.to);
            expect(planned.get(id)).toBe(Math.min(o.to, list.length - 1));
          } else {
            planned = planRemove(list, list[o.pick % list.length]!.id);
          }
          expect(contiguous(planned)).toBe(true);
          list = [...planned].map(([id, priority]) => ({ id, priority }));
        }
      }),
    );
  });

  it('moving keeps the others in their order', () => {
    const list = ['a', 'b', 'c', 'd'].map((id, priority) => ({ id, priority }));
    expect(Object.fromEntries(planMove(list, 'd', 0))).toEqual({ d: 0, a: 1, b: 2, c: 3 });
    expect(Object.fromEntries(planMove(list, 'a', 2))).toEqual({ b: 0, c: 1, a: 2, d: 3 });
    expect(Object.fromEntries(planRemove(list, 'b'))).toEqual({ a: 0, c: 1, d: 2 });
  });
});

describe('appleUserInitiatedEnrollmentProfiles', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  const post = (url: string, payload: unknown, key?: string) => t.request({ method: 'POST', url, payload: payload as Record<string, unknown>, ...(key ? { key } : {}) });
  const patch = (url: string, payload: unknown, key?: string) => t.request({ method: 'PATCH', url, payload: payload as Record<string, unknown>, ...(key ? { key } : {}) });
  const get = (url: string, key?: string) => t.request({ method: 'GET', url, ...(key ? { key } : {}) });
  const del = (url: string, key?: string) => t.request({ method: 'DELETE', url, ...(key ? { key } : {}) });
  const create = async (displayName: string, more: Record<string, unknown> = {}) => {
    const res = await post(P, { displayName, ...more });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; priority: number };
  };
  const priorities = async (platform = 'iOS') =>
    ((await get(`${P}?$filter=platform eq '${platform}'&$orderby=priority`)).json().value as { displayName: string; priority: number }[]).map((p) => [p.displayName, p.priority]);
  const resolve = (userId: string, groups: string[], platform?: 'iOS' | 'macOS') =>
    enrollmentTypesModule(t).enrollmentTypes.resolveAppleEnrollmentType(t.store.db, t.tenantId, userId, groups, platform);

  it('creates profiles with Graph defaults: device enrollment, iOS, next priority', async () => {
    const res = await post(P, { '@odata.type': '#microsoft.graph.appleUserInitiatedEnrollmentProfile', displayName: 'Shape', description: 'BYOD' });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({
      '@odata.context': 'http://openenroll.test/beta/$metadata#deviceManagement/appleUserInitiatedEnrollmentProfiles/$entity',
      '@odata.type': '#microsoft.graph.appleUserInitiatedEnrollmentProfile',
      displayName: 'Shape',
      description: 'BYOD',
      defaultEnrollmentType: 'device',
      availableEnrollmentTypeOptions: [],
      platform: 'iOS',
      priority: 0,
      roleScopeTagIds: ['0'],
    });
    const choice = await post(P, { displayName: 'Choice', availableEnrollmentTypeOptions: USER_CHOICE_OPTIONS });
    expect(choice.json().availableEnrollmentTypeOptions).toEqual(USER_CHOICE_OPTIONS.map((o) => ({ '@odata.type': '#microsoft.graph.appleOwnerTypeEnrollmentType', ...o })));
    expect(choice.json().priority).toBe(1);
    expect((await get(`/v1.0/deviceManagement/appleUserInitiatedEnrollmentProfiles`)).statusCode).toBe(404);
  });

  it('refuses bad input naming the property', async () => {
    for (const [payload, target] of [
      [{ displayName: 'x', defaultEnrollmentType: 'unknown' }, 'defaultEnrollmentType'],
      [{ displayName: 'x', platform: 'android' }, 'platform'],
      [{ displayName: 'x', priority: -1 }, 'priority'],
      [{ displayName: '' }, 'displayName'],
      [{ description: 'no name' }, 'displayName'],
      [{ displayName: 'x', availableEnrollmentTypeOptions: [{ ownerType: 'company', enrollmentType: 'user' }, { ownerType: 'personal', enrollmentType: 'user' }] }, 'availableEnrollmentTypeOptions[0]'],
    ] as const) {
      const res = await post(P, payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error.target).toBe(target);
    }
  });

  it('keeps priorities contiguous per platform through create, setPriority and delete', async () => {
    const platform = 'macOS';
    const a = await create('A', { platform });
    const b = await create('B', { platform });
    const c = await create('C', { platform });
    expect(await priorities(platform)).toEqual([['A', 0], ['B', 1], ['C', 2]]);

    expect((await post(`${P}/${c.id}/setPriority`, { priority: 0 })).statusCode).toBe(204);
    expect(await priorities(platform)).toEqual([['C', 0], ['A', 1], ['B', 2]]);
    // A target past the end is the last position.
    expect((await post(`${P}('${c.id}')/microsoft.graph.setPriority`, { priority: 99 })).statusCode).toBe(204);
    expect(await priorities(platform)).toEqual([['A', 0], ['B', 1], ['C', 2]]);
    const negative = await post(`${P}/${a.id}/setPriority`, { priority: -1 });
    expect(negative.statusCode).toBe(400);
    expect(negative.json().error.target).toBe('priority');
    expect((await post(`${P}/${a.id}/setPriority`, {})).json().error.target).toBe('priority');

    // Inserting at a position shifts the rest down.
    await create('Top', { platform, priority: 0 });
    expect(await priorities(platform)).toEqual([['Top', 0], ['A', 1], ['B', 2], ['C', 3]]);
    expect((await del(`${P}/${b.id}`)).statusCode).toBe(204);
    expect(await priorities(platform)).toEqual([['Top', 0], ['A', 1], ['C', 2]]);

    // PATCH may echo the priority but not change it, nor the platform.
    expect((await patch(`${P}/${a.id}`, { priority: 1, displayName: 'A2' })).json()).toMatchObject({ priority: 1, displayName: 'A2' });
    const moved = await patch(`${P}/${a.id}`, { priority: 0 });
    expect(moved.statusCode).toBe(400);
    expect(moved.json().error.target).toBe('priority');
    expect((await patch(`${P}/${a.id}`, { platform: 'iOS' })).json().error.target).toBe('platform');
    // The iOS list is separate and contiguous too.
    const ios = await priorities('iOS');
    expect(ios.map(([, p]) => p)).toEqual(ios.map((_, i) => i));
  });

  it('assigns to user groups and all users only: device groups, dynamic groups and all devices are refused', async () => {
    const { id } = await create('Assignments');
    const url = `${P}/${id}/assignments`;
    const users = await createGroup(t, 'Enrollment users');
    const user = await createUser(t, 'u.assign@contoso.test');
    await addMember(t, users, user);
    const iPads = await createGroup(t, 'Kiosk iPads');
    const device = await enroll(t, { serialNumber: serial(), operatingSystem: 'iOS' });
    await addMember(t, iPads, device.device.id);
    const mixed = await createGroup(t, 'Mixed bag');
    await addMember(t, mixed, user);
    await addMember(t, mixed, device.device.id);
    const dynamic = await createGroup(t, 'All iPads', { groupTypes: ['DynamicMembership'], membershipRule: 'device.deviceOSType -eq "iPad"', membershipRuleProcessingState: 'On' });

    for (const [target, name] of [
      [groupTarget(iPads), 'Kiosk iPads'],
      [groupTarget(mixed), 'Mixed bag'],
      [groupTarget(dynamic), 'All iPads'],
    ] as const) {
      const res = await post(url, { target });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'BadRequest', target: 'target' });
      expect(res.json().error.message).toContain(name);
      expect(res.json().error.message).toContain('user groups only');
    }
    const all = await post(url, { target: allDevicesTarget });
    expect(all.statusCode).toBe(400);
    expect(all.json().error.target).toBe('target');

    const ok = await post(url, { '@odata.type': '#microsoft.graph.appleEnrollmentProfileAssignment', target: groupTarget(users) });
    expect(ok.statusCode).toBe(201);
    expect(ok.json()).toMatchObject({ '@odata.type': '#microsoft.graph.appleEnrollmentProfileAssignment', target: { '@odata.type': '#microsoft.graph.groupAssignmentTarget', groupId: users } });
    expect((await post(url, { target: allUsersTarget })).statusCode).toBe(201);
    expect((await get(url)).json().value).toHaveLength(2);
    const aid = ok.json().id as string;
    expect((await patch(`${url}/${aid}`, { target: groupTarget(iPads) })).statusCode).toBe(400);
    expect((await get(`${url}/${aid}`)).json().target.groupId).toBe(users);
    expect((await del(`${url}/${aid}`)).statusCode).toBe(204);
    expect((await get(`${url}/${aid}`)).statusCode).toBe(404);
    // Deleting the profile takes its assignments with it.
    expect((await del(`${P}/${id}`)).statusCode).toBe(204);
    expect(await t.store.db.selectFrom('enrollment_user_assignments').select('id').where('object_id', '=', id).execute()).toEqual([]);
  });

  it('resolves the highest-priority profile assigned to the user', async () => {
    const user = await createUser(t, 'resolve@contoso.test');
    const byod = await createGroup(t, 'BYOD users');
    const staff = await createGroup(t, 'Staff');
    const blocked = await createGroup(t, 'No enrollment types');
    expect(await resolve(user, [byod, staff])).toBeUndefined();

    const userEnrollment = await create('User enrollment for BYOD', { defaultEnrollmentType: 'accountDrivenUserEnrollment' });
    const choice = await create('Let staff choose', { availableEnrollmentTypeOptions: USER_CHOICE_OPTIONS });
    await post(`${P}/${userEnrollment.id}/assignments`, { target: groupTarget(byod) });
    await post(`${P}/${choice.id}/assignments`, { target: groupTarget(staff) });
    await post(`${P}/${choice.id}/assignments`, { target: exclusionTarget(blocked) });

    expect(await resolve(user, [byod])).toMatchObject({ profileId: userEnrollment.id, type: 'user', defaultEnrollmentType: 'accountDrivenUserEnrollment', options: [] });
    // Both apply: the higher priority (lower number) wins.
    expect(userEnrollment.priority).toBeLessThan(choice.priority);
    expect((await resolve(user, [byod, staff]))?.profileId).toBe(userEnrollment.id);
    await post(`${P}/${choice.id}/setPriority`, { priority: 0 });
    const chosen = await resolve(user, [byod, staff]);
    expect(chosen).toMatchObject({ profileId: choice.id, type: 'userChoice', priority: 0 });
    expect(chooseEnrollment(chosen!.options, { owner: 'personal', scope: 'workOnly' })).toEqual({ enrollmentType: 'user', ownerType: 'personal' });
    // An exclusion wins over the inclusion.
    expect((await resolve(user, [byod, staff, blocked]))?.profileId).toBe(userEnrollment.id);
    // Profiles of another platform don't apply.
    expect(await resolve(user, [byod, staff], 'macOS')).toBeUndefined();
  });

  it('audits changes, applies roles and scope tags, and isolates tenants', async () => {
    const { id } = await create('Audited');
    await post(`${P}/${id}/setPriority`, { priority: 0 });
    await patch(`${P}/${id}`, { description: 'changed' });
    const audit = (await get(`/beta/deviceManagement/auditEvents?$filter=resources/resourceId eq '${id}'`)).json().value as { activity: string }[];
    expect(audit.map((e) => e.activity).sort()).toEqual(['Create enrollment type profile', 'Patch enrollment type profile', 'Set enrollment type profile priority']);

    const reader = await t.createKey('readOnlyOperator');
    expect((await get(P, reader)).statusCode).toBe(200);
    expect((await post(P, { displayName: 'nope' }, reader)).statusCode).toBe(403);
    expect((await post(`${P}/${id}/setPriority`, { priority: 0 }, reader)).statusCode).toBe(403);

    const tag = await createTag(t, 'Berlin ET');
    const scoped = await t.createKey('scopedAdministrator', [tag]);
    const mine = await post(P, { displayName: 'Berlin profile' }, scoped);
    expect(mine.json().roleScopeTagIds).toEqual([tag]);
    expect((await get(`${P}/${id}`, scoped)).statusCode).toBe(404);
    expect((await get(P, scoped)).json().value.map((p: { id: string }) => p.id)).toEqual([mine.json().id]);

    const other = await t.createTenant('Other ET');
    expect((await get(`${P}/${id}`, other.adminKey)).statusCode).toBe(404);
    expect((await post(`${P}/${id}/setPriority`, { priority: 0 }, other.adminKey)).statusCode).toBe(404);
    expect((await post(`${P}/${id}/assignments`, { target: allUsersTarget }, other.adminKey)).statusCode).toBe(404);
    const theirs = await post(P, { displayName: 'Theirs' }, other.adminKey);
    // Priorities are per tenant.
    expect(theirs.json().priority).toBe(0);
  });
});
