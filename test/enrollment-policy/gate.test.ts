import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnrollmentGateModule } from '../../src/enrollment-policy/gate/module.js';
import type { EnrollmentRequest } from '../../src/enrollment-policy/gate/gate.js';
import type { ManualClock } from '../../src/shared/time.js';
import { DAY, HOUR } from '../../src/shared/time.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { deviceRecords } from '../devices/fixtures.js';
import { addMember, allUsersTarget, createGroup, createUser, groupTarget } from './terms-reports-fixtures.js';

/**
 * The enrollment gate end to end: admin objects made through the API, facts read from the store,
 * the decision, and the reports. Each refusal must appear in the failures report with its reason,
 * and each success must leave its applied-policy snapshot.
 */
const CONFIGS = '/beta/deviceManagement/deviceEnrollmentConfigurations';
const REPORTS = '/beta/deviceManagement/reports';

describe('enrollment gate', () => {
  let t: TestApp;
  let gate: EnrollmentGateModule['gate'];
  const clock = () => t.clock as ManualClock;

  beforeAll(async () => {
    t = await createTestApp();
    gate = (t.app.modules.find((m) => m.name === 'enrollment-gate') as EnrollmentGateModule).gate;
  });
  afterAll(async () => t.close());

  async function policy(body: Record<string, unknown>): Promise<{ id: string; priority: number }> {
    const res = await t.request({ method: 'POST', url: CONFIGS, payload: body });
    expect(res.statusCode, res.body).toBe(201);
    return res.json();
  }
  const iosRestriction = (displayName: string, r: Record<string, unknown>) => ({
    '@odata.type': '#microsoft.graph.deviceEnrollmentPlatformRestrictionConfiguration',
    displayName,
    platformType: 'ios',
    platformRestriction: { platformBlocked: false, personalDeviceEnrollmentBlocked: false, ...r },
  });
  async function assign(id: string, targets: Record<string, unknown>[]) {
    const res = await t.request({ method: 'POST', url: `${CONFIGS}/${id}/assign`, payload: { enrollmentConfigurationAssignments: targets.map((target) => ({ target })) } });
    expect(res.statusCode, res.body).toBe(204);
  }
  const ios = (userId: string | null, over: Partial<EnrollmentRequest> = {}): EnrollmentRequest => ({
    tenantId: t.tenantId,
    platform: 'ios',
    method: 'appleCompanyPortal',
    userDriven: true,
    userId,
    device: { osPlatform: 'iOS', osVersion: '17.1', manufacturer: 'Apple', model: 'iPhone15,2', serialNumber: `SN${crypto.randomBytes(4).toString('hex').toUpperCase()}` },
    ...over,
  });
  /** Allowed enrollments write a device and the success row, as an enrollment path does. */
  async function enrollIfAllowed(req: EnrollmentRequest) {
    const decision = await gate.decide(req);
    let deviceId: string | undefined;
    if (decision.allowed) {
      deviceId = await t.store.transaction(async (trx) => {
        const { device } = await deviceRecords(t).upsert(trx, t.tenantId, {
          serialNumber: req.device.serialNumber ?? null,
          operatingSystem: 'iOS',
          osVersion: req.device.osVersion ?? null,
          userId: decision.facts.user?.id ?? null,
          userPrincipalName: decision.facts.user?.userPrincipalName ?? null,
          managedDeviceOwnerType: decision.ownership,
        });
        await gate.recordSuccess(trx, req, decision, device.id as string);
        return device.id as string;
      });
    }
    return { decision, deviceId };
  }

  it('applies only the best-priority assigned policy: priority 2 wins over priority 5 (seed worked example)', async () => {
    const joe = await createUser(t, 'joe@contoso.test');
    const g5 = await createGroup(t, 'Priority five');
    const g2 = await createGroup(t, 'Priority two');
    await addMember(t, g5, joe);
    await addMember(t, g2, joe);
    const made = [];
    for (let i = 1; i <= 5; i++) made.push(await policy(iosRestriction(`P${i}`, i === 5 ? { platformBlocked: true } : {})));
    expect(made.map((p) => p.priority)).toEqual([1, 2, 3, 4, 5]);
    await assign(made[4]!.id, [groupTarget(g5)]); // priority 5 blocks iOS
    await assign(made[1]!.id, [groupTarget(g2)]); // priority 2 allows it
    const { decision, deviceId } = await enrollIfAllowed(ios(joe));
    expect(decision.allowed).toBe(true);
    const applied = decision.applied.find((a) => a.type === 'platformRestriction')!;
    expect(applied).toMatchObject({ policyId: made[1]!.id, priority: 2, target: { groupId: g2 }, state: 'succeeded' });
    // The success left its snapshot, readable through the per-device report.
    const res = await t.request({ method: 'POST', url: `${REPORTS}/getEnrollmentConfigurationPoliciesByDevice`, payload: { filter: `DeviceId eq '${deviceId}'` } });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('P2');
    // Taking Joe out of the priority-2 group leaves priority 5, which blocks.
    await t.request({ method: 'DELETE', url: `/v1.0/groups/${g2}/members/${joe}/$ref` });
    const blocked = await gate.decide(ios(joe));
    expect(blocked).toMatchObject({ allowed: false, reason: 'devicePlatformBlocked' });
  });

  it('exempts ADE from OS bounds but not from a platform block, which ends as Invalid Profile', async () => {
    const ann = await createUser(t, 'ann@contoso.test');
    const g = await createGroup(t, 'OS floor');
    await addMember(t, g, ann);
    const floor = await policy(iosRestriction('iOS 18 or later', { osMinimumVersion: '18.0' }));
    await assign(floor.id, [groupTarget(g)]);
    expect(await gate.decide(ios(ann))).toMatchObject({ allowed: false, reason: 'osVersionBelowMinimum' });
    expect((await gate.decide(ios(ann, { method: 'appleAde' }))).allowed).toBe(true);
    await t.request({ method: 'PATCH', url: `${CONFIGS}/${floor.id}`, payload: { '@odata.type': '#microsoft.graph.deviceEnrollmentPlatformRestrictionConfiguration', platformRestriction: { platformBlocked: true } } });
    expect(await gate.decide(ios(ann, { method: 'appleAde' }))).toMatchObject({ allowed: false, reason: 'invalidProfile' });
  });

  it('counts devices toward the limit by the seed rules (90 days, 24 hours pending, shared mode)', async () => {
    const kim = await createUser(t, 'kim@contoso.test');
    const g = await createGroup(t, 'Two devices');
    await addMember(t, g, kim);
    const limit = await policy({ '@odata.type': '#microsoft.graph.deviceEnrollmentLimitConfiguration', displayName: 'Two', limit: 2 });
    await assign(limit.id, [groupTarget(g)]);
    const now = clock().now().getTime();
    const seed = async (over: Record<string, unknown>) =>
      t.store.transaction(async (trx) => {
        const { device } = await deviceRecords(t).upsert(trx, t.tenantId, { serialNumber: `K${crypto.randomBytes(4).toString('hex')}`, operatingSystem: 'iOS', userId: kim, ...over });
        return device.id as string;
      });
    const stale = await seed({});
    await t.store.db.updateTable('managed_devices').set({ last_sync_date_time: new Date(now - 91 * DAY).toISOString() }).where('id', '=', stale).execute();
    const pending = await seed({ deviceRegistrationState: 'notRegisteredPendingEnrollment' });
    await t.store.db.updateTable('managed_devices').set({ enrolled_date_time: new Date(now - 25 * HOUR).toISOString() }).where('id', '=', pending).execute();
    await seed({ deviceEnrollmentType: 'windowsCoManagement' });
    await seed({}); // the only device that counts
    const d = await gate.decide(ios(kim));
    expect(d.allowed).toBe(true);
    expect(d.deviceLimit).toMatchObject({ limit: 2, counted: 1 });
    await seed({});
    expect(await gate.decide(ios(kim))).toMatchObject({ allowed: false, reason: 'deviceLimitReached' });
  });

  it('blocks until assigned terms are accepted, and lets DEM accounts enroll only where allowed', async () => {
    const lee = await createUser(t, 'lee@contoso.test');
    const terms = await t.request({
      method: 'POST',
      url: '/beta/deviceManagement/termsAndConditions',
      payload: { displayName: 'Company terms', title: 'Terms', bodyText: 'Be nice.', acceptanceStatement: 'I agree' },
    });
    expect(terms.statusCode, terms.body).toBe(201);
    const a = await t.request({ method: 'POST', url: `/beta/deviceManagement/termsAndConditions/${terms.json().id}/assignments`, payload: { target: allUsersTarget } });
    expect(a.statusCode, a.body).toBe(201);
    expect(await gate.decide(ios(lee))).toMatchObject({ allowed: false, reason: 'termsNotAccepted' });
    const accept = await t.request({ method: 'POST', url: `/beta/deviceManagement/termsAndConditions/${terms.json().id}/acceptanceStatuses`, payload: { userPrincipalName: 'lee@contoso.test' } });
    expect(accept.statusCode, accept.body).toBe(201);
    expect((await gate.decide(ios(lee))).allowed).toBe(true);

    const dem = await t.request({ method: 'POST', url: '/beta/deviceManagement/deviceEnrollmentManagers', payload: { userPrincipalName: 'lee@contoso.test' } });
    expect(dem.statusCode, dem.body).toBe(201);
    expect(await gate.decide(ios(lee, { method: 'appleAde' }))).toMatchObject({ allowed: false, reason: 'demNotAllowedForMethod' });
  });

  it('reports every refusal with its reason, filterable by user', async () => {
    const failures = await t.request({ method: 'GET', url: `${REPORTS}/enrollmentFailures?$filter=userPrincipalName eq 'ann@contoso.test'` });
    expect(failures.statusCode, failures.body).toBe(200);
    const reasons = failures.json().value.map((f: { failureReasonCode: string }) => f.failureReasonCode).sort();
    expect(reasons).toEqual(['invalidProfile', 'osVersionBelowMinimum']);
    const lee = await t.request({ method: 'GET', url: `${REPORTS}/enrollmentFailures?$filter=userPrincipalName eq 'lee@contoso.test'` });
    expect(lee.json().value.map((f: { failureReasonCode: string }) => f.failureReasonCode).sort()).toEqual(['demNotAllowedForMethod', 'termsNotAccepted']);
  });
});
