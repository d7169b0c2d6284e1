import crypto from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failureCategory, parseReportRequest, REPORTS, topLevelComparisons } from '../../src/enrollment-policy/reports/catalogue.js';
import type { EnrollmentAttemptInput } from '../../src/enrollment-policy/reports/attempts.js';
import type { AppliedPolicy, EnrollmentReasonCode } from '../../src/enrollment-policy/evaluation/types.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { createTag, enroll, serial } from '../devices/fixtures.js';
import { allUsersTarget, createUser, reportsModule, termsModule } from './terms-reports-fixtures.js';

const R = '/beta/deviceManagement/reports';

const applied = (over: Partial<AppliedPolicy> = {}): AppliedPolicy => ({
  policyId: 'p-default',
  displayName: 'All users and all devices',
  type: 'platformRestriction',
  priority: 0,
  isDefault: true,
  target: 'default',
  state: 'succeeded',
  ...over,
});

describe('report requests (pure)', () => {
  it('checks filter, select, orderBy and search against the report', () => {
    const def = REPORTS.EnrollmentFailures;
    const ok = parseReportRequest(def, { filter: "UserPrincipalName eq 'a@b.c' and EnrollmentDateTime ge 2026-01-01T00:00:00Z", select: ['ActivityId', 'FailureReason'], orderBy: ['EnrollmentDateTime desc'] });
    expect(ok.select).toEqual(['ActivityId', 'FailureReason']);
    expect(ok.orderBy).toEqual([{ column: 'EnrollmentDateTime', direction: 'desc' }]);
    for (const [input, target] of [
      [{ filter: 'Nope eq 1' }, 'filter'],
      [{ filter: "FailureReason eq 'x'" }, 'filter'],
      [{ filter: 'UserId eq' }, 'filter'],
      [{ filter: 'x'.repeat(2001) }, 'filter'],
      [{ select: ['ActivityId', 'Bogus'] }, 'select'],
      [{ select: ['ActivityId', 'ActivityId'] }, 'select'],
      [{ orderBy: ['FailureReason'] }, 'orderBy'],
      [{ orderBy: ['UserId sideways'] }, 'orderBy'],
      [{ search: 'x'.repeat(101) }, 'search'],
    ] as const) {
      expect(() => parseReportRequest(def, input), JSON.stringify(input)).toThrowError(expect.objectContaining({ options: { target } }));
    }
  });

  it('reads top-level comparisons of a column, and refuses to guess under or/not', () => {
    const def = REPORTS.IncompleteUserEnrollments;
    const f = (s: string) => parseReportRequest(def, { filter: s }).filter;
    expect(topLevelComparisons(f("StartDateTime ge 2026-01-01T00:00:00Z and (OperatingSystem eq 'iOS' and StartDateTime lt 2026-01-05T00:00:00Z)"), 'StartDateTime')).toEqual([
      { op: 'ge', value: '2026-01-01T00:00:00.000Z' },
      { op: 'lt', value: '2026-01-05T00:00:00.000Z' },
    ]);
    expect(topLevelComparisons(f("StartDateTime ge 2026-01-01T00:00:00Z or OperatingSystem eq 'iOS'"), 'StartDateTime')).toBeUndefined();
    expect(topLevelComparisons(f("OperatingSystem eq 'iOS'"), 'StartDateTime')).toEqual([]);
  });

  it('files restriction failures under enrollmentRestrictionsEnforced', () => {
    expect(failureCategory('devicePlatformBlocked')).toBe('enrollmentRestrictionsEnforced');
    expect(failureCategory('termsNotAccepted')).toBe('enrollmentRestrictionsEnforced');
    expect(failureCategory('userRequired')).toBe('userValidation');
    expect(failureCategory(null)).toBe('unknown');
  });
});

describe('enrollment failures and the device enrollment page', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(async () => t.close());

  const record = (input: Partial<EnrollmentAttemptInput> & Pick<EnrollmentAttemptInput, 'outcome'>, tenantId = t.tenantId) =>
    t.store.transaction((trx) =>
      reportsModule(t).recordEnrollmentAttempt(trx, tenantId, {
        osPlatform: 'Windows',
        osVersion: '10.0.19045.0',
        method: 'windowsMdmOnly',
        activityId: crypto.randomUUID(),
        applied: [],
        at: t.clock.now(),
        ...input,
      }),
    );
  const get = (url: string, key?: string) => t.request({ method: 'GET', url, ...(key ? { key } : {}) });
  const action = async (name: string, payload: Record<string, unknown>, key?: string) => {
    const res = await t.request({ method: 'POST', url: `${R}/${name}`, payload, ...(key ? { key } : {}) });
    return { res, body: res.statusCode === 200 ? (JSON.parse(res.body) as { TotalRowCount: number; Schema: { Column: string; PropertyType: string }[]; Values: unknown[][] }) : undefined };
  };
  const rowsOf = (body: { Schema: { Column: string }[]; Values: unknown[][] }) => body.Values.map((v) => Object.fromEntries(body.Schema.map((s, i) => [s.Column, v[i]])));

  it('records one failure row per refused attempt, with reason, OS, version, user, method and activity id', async () => {
    const alice = await createUser(t, 'alice.f@contoso.test');
    const activityId = crypto.randomUUID();
    await record({ outcome: 'failed', reason: 'devicePlatformBlocked', userId: alice, userPrincipalName: 'alice.f@contoso.test', activityId });
    await record({ outcome: 'failed', reason: 'devicePlatformBlocked', userId: alice, userPrincipalName: 'alice.f@contoso.test' });
    await record({ outcome: 'failed', reason: 'deviceLimitReached', osPlatform: 'iOS', osVersion: '17.4', method: 'appleCompanyPortal', userId: 'someone-else', userPrincipalName: 'bob.f@contoso.test' });
    await record({ outcome: 'succeeded', userId: alice, userPrincipalName: 'alice.f@contoso.test', applied: [applied()] });

    const all = (await get(`${R}/enrollmentFailures?$count=true`)).json();
    expect(all['@odata.count']).toBe(3);
    const mine = (await get(`${R}/enrollmentFailures?$filter=userPrincipalName eq 'ALICE.F@contoso.test'&$orderby=enrollmentDateTime desc`)).json().value;
    expect(mine).toHaveLength(2);
    expect(mine.find((f: { activityId: string }) => f.activityId === activityId)).toMatchObject({
      '@odata.type': '#microsoft.graph.openEnrollEnrollmentFailure',
      failureReason: 'Device platform blocked',
      failureReasonCode: 'devicePlatformBlocked',
      failureCategory: 'enrollmentRestrictionsEnforced',
      failureDetails: 'Device platform blocked',
      operatingSystem: 'Windows',
      osVersion: '10.0.19045.0',
      userId: alice,
      userPrincipalName: 'alice.f@contoso.test',
      enrollmentMethod: 'windowsMdmOnly',
    });
    expect(mine[0].recommendedSteps).toContain('different platform');
    expect((await get(`${R}/enrollmentFailures?$filter=userId eq '${alice}'`)).json().value).toHaveLength(2);
    expect((await get(`${R}/enrollmentFailures?$filter=failureReasonCode eq 'deviceLimitReached'`)).json().value).toEqual([expect.objectContaining({ userPrincipalName: 'bob.f@contoso.test' })]);
    expect((await get(`${R}/enrollmentFailures/$count?$filter=enrollmentDateTime ge ${new Date(t.clock.now().getTime() + 1000).toISOString()}`)).body).toBe('0');
    const one = (await get(`${R}/enrollmentFailures/${mine[0].id}`)).json();
    expect(one.id).toBe(mine[0].id);

    // Graph's troubleshootingEvents show the same failures.
    const events = (await get(`/v1.0/deviceManagement/troubleshootingEvents?$filter=userId eq '${alice}'`)).json().value;
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({
      '@odata.type': '#microsoft.graph.enrollmentTroubleshootingEvent',
      operatingSystem: 'Windows',
      enrollmentType: 'userEnrollment',
      failureCategory: 'enrollmentRestrictionsEnforced',
      userId: alice,
    });
    expect((await get(`/beta/deviceManagement/troubleshootingEvents/${events[0].id}`)).json().correlationId).toBe(events[0].correlationId);

    // The report action returns Intune's report JSON, filterable by user.
    const { res, body } = await action('getEnrollmentFailuresReport', { filter: `UserId eq '${alice}'`, select: ['UserPrincipalName', 'FailureReason', 'OperatingSystem', 'OSVersion', 'EnrollmentMethod', 'ActivityId'], top: 1 });
    expect(res.headers['content-type']).toContain('application/octet-stream');
    expect(body!.TotalRowCount).toBe(2);
    expect(body!.Schema).toEqual([
      { Column: 'UserPrincipalName', PropertyType: 'String' },
      { Column: 'FailureReason', PropertyType: 'String' },
      { Column: 'OperatingSystem', PropertyType: 'String' },
      { Column: 'OSVersion', PropertyType: 'String' },
      { Column: 'EnrollmentMethod', PropertyType: 'String' },
      { Column: 'ActivityId', PropertyType: 'String' },
    ]);
    expect(body!.Values).toHaveLength(1);
    expect(body!.Values[0]!.slice(0, 5)).toEqual(['alice.f@contoso.test', 'Device platform blocked', 'Windows', '10.0.19045.0', 'windowsMdmOnly']);
    const searched = await action('getEnrollmentFailuresReport', { search: 'bob.f' });
    expect(searched.body!.TotalRowCount).toBe(1);
  });

  it('keeps every refused attempt with its reason and every success\'s applied policies (property)', async () => {
    const reasons: EnrollmentReasonCode[] = ['devicePlatformBlocked', 'personalDeviceBlocked', 'osVersionBelowMinimum', 'deviceLimitReached', 'termsNotAccepted', 'manufacturerBlocked'];
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ failed: fc.boolean(), reason: fc.constantFrom(...reasons), user: fc.constantFrom('u1', 'u2', 'u3') }), { minLength: 1, maxLength: 8 }),
        async (attempts) => {
          const run = crypto.randomUUID();
          const expected: { activityId: string; reason?: string; deviceId?: string; policy?: string }[] = [];
          for (const a of attempts) {
            const activityId = `${run}-${expected.length}`;
            if (a.failed) {
              await record({ outcome: 'failed', reason: a.reason, userId: `${run}-${a.user}`, activityId });
              expected.push({ activityId, reason: a.reason });
            } else {
              const device = await enroll(t, { serialNumber: serial(), operatingSystem: 'Windows' });
              const policy = `policy-${activityId}`;
              await record({ outcome: 'succeeded', userId: `${run}-${a.user}`, activityId, deviceId: device.device.id, applied: [applied({ policyId: policy, isDefault: false, priority: 1, target: 'allUsers' })] });
              expected.push({ activityId, deviceId: device.device.id, policy });
            }
          }
          const failures = (await get(`${R}/enrollmentFailures?$filter=startswith(activityId,'${run}')&$top=999`)).json().value as { activityId: string; failureReasonCode: string }[];
          expect(failures.map((f) => [f.activityId, f.failureReasonCode]).sort()).toEqual(expected.filter((e) => e.reason).map((e) => [e.activityId, e.reason]).sort());
          for (const e of expected.filter((x) => x.deviceId)) {
            const { body } = await action('getEnrollmentConfigurationPoliciesByDevice', { filter: `DeviceId eq '${e.deviceId}'` });
            expect(rowsOf(body!).map((r) => r.PolicyId)).toEqual([e.policy]);
          }
        },
      ),
      { numRuns: 15 },
    );
  });

  it('shows the policies applied at first enrollment only, without device limits', async () => {
    const device = await enroll(t, { serialNumber: serial(), operatingSystem: 'Windows', deviceName: 'MARLA-PC', userPrincipalName: 'marla@contoso.test' });
    const id = device.device.id;
    const first: AppliedPolicy[] = [
      applied({ policyId: 'block-home', displayName: 'Block Windows 10 home', isDefault: false, priority: 1, target: { groupId: 'g-1' }, state: 'notApplicable', filterResult: { filterId: 'f-home', mode: 'exclude', matched: true } }),
      applied({ policyId: 'default-platform', displayName: 'Default', priority: 0 }),
      applied({ policyId: 'default-limit', displayName: 'Default', type: 'limit', priority: 0 }),
    ];
    const r1 = await record({ outcome: 'succeeded', deviceId: id, userPrincipalName: 'marla@contoso.test', applied: first });
    expect(r1.snapshotWritten).toBe(true);
    // A later enrollment of the same device (and a failed one) never replaces the first snapshot.
    const r2 = await record({ outcome: 'succeeded', deviceId: id, applied: [applied({ policyId: 'later', displayName: 'Later' })] });
    expect(r2.snapshotWritten).toBe(false);
    await record({ outcome: 'failed', reason: 'devicePlatformBlocked', deviceId: id, applied: [applied({ policyId: 'failed' })] });

    const { res, body } = await action('microsoft.graph.getEnrollmentConfigurationPoliciesByDevice', { filter: `(DeviceId eq '${id}')`, orderBy: ['Priority desc'] });
    expect(res.statusCode).toBe(200);
    expect(body!.TotalRowCount).toBe(2);
    expect(rowsOf(body!)).toEqual([
      {
        DeviceId: id,
        DeviceName: 'MARLA-PC',
        UserPrincipalName: 'marla@contoso.test',
        EnrollmentDateTime: t.clock.now().toISOString(),
        PolicyId: 'block-home',
        PolicyName: 'Block Windows 10 home',
        PolicyType: 'platformRestriction',
        State: 'notApplicable',
        Priority: 1,
        Target: 'user',
        TargetGroupId: 'g-1',
        FilterId: 'f-home',
        FilterMode: 'exclude',
        FilterResult: 'match',
      },
      expect.objectContaining({ PolicyId: 'default-platform', PolicyName: 'Default', State: 'succeeded', Priority: 0, Target: 'device', FilterId: null, FilterResult: null }),
    ]);
    const selected = await action('getEnrollmentConfigurationPoliciesByDevice', { filter: `DeviceId eq '${id}' and State eq 'succeeded'`, select: ['PolicyName', 'Priority'] });
    expect(selected.body).toEqual({ TotalRowCount: 1, Schema: [{ Column: 'PolicyName', PropertyType: 'String' }, { Column: 'Priority', PropertyType: 'Int32' }], Values: [['Default', 0]] });

    // A success recorded without a device keeps no snapshot.
    expect((await record({ outcome: 'succeeded', applied: [applied()] })).snapshotWritten).toBe(false);

    for (const [payload, status, target] of [
      [{}, 400, 'filter'],
      [{ filter: "PolicyType eq 'platformRestriction'" }, 400, 'filter'],
      [{ filter: `DeviceId eq '${id}' or DeviceId eq 'x'` }, 400, 'filter'],
      [{ filter: `DeviceId eq '${id}'`, groupBy: ['PolicyType'] }, 400, 'groupBy'],
      [{ filter: `DeviceId eq '${id}'`, name: 'Devices' }, 400, 'name'],
      [{ filter: `DeviceId eq '${id}'`, top: 1001 }, 400, 'top'],
      [{ filter: "DeviceId eq 'no-such-device'" }, 404, undefined],
    ] as const) {
      const { res: r } = await action('getEnrollmentConfigurationPoliciesByDevice', payload);
      expect(r.statusCode, JSON.stringify(payload)).toBe(status);
      if (target) expect(r.json().error.target).toBe(target);
    }

    // Deleting the device deletes its snapshot.
    expect((await t.request({ method: 'DELETE', url: `/beta/deviceManagement/managedDevices/${id}` })).statusCode).toBe(204);
    expect(await t.store.db.selectFrom('enrollment_device_snapshots').select('device_id').where('device_id', '=', id).execute()).toEqual([]);
  });

  it('reports terms acceptance with "accepted latest"', async () => {
    const created = await t.request({ method: 'POST', url: '/beta/deviceManagement/termsAndConditions', payload: { displayName: 'Report terms', title: 'T', bodyText: 'B' } });
    const termsId = created.json().id as string;
    await t.request({ method: 'POST', url: `/beta/deviceManagement/termsAndConditions/${termsId}/assignments`, payload: { target: allUsersTarget } });
    const old = await createUser(t, 'old.accept@contoso.test', undefined, 'Old Accept');
    const fresh = await createUser(t, 'new.accept@contoso.test', undefined, 'New Accept');
    const terms = termsModule(t).terms;
    await t.store.transaction((trx) => terms.acceptTerms(trx, t.tenantId, old, termsId, 1));
    await t.request({ method: 'PATCH', url: `/beta/deviceManagement/termsAndConditions/${termsId}`, payload: { version: 2 } });
    await t.store.transaction((trx) => terms.acceptTerms(trx, t.tenantId, fresh, termsId, 2));
    const { body } = await action('getTermsAndConditionsAcceptanceReport', { filter: `TermsAndConditionsId eq '${termsId}'`, select: ['UserName', 'AcceptedVersion', 'AcceptedDateTime', 'AcceptedLatest', 'UserPrincipalName'], orderBy: ['UserPrincipalName'] });
    expect(body!.Values).toEqual([
      ['New Accept', 2, expect.any(String), true, 'new.accept@contoso.test'],
      ['Old Accept', 1, expect.any(String), false, 'old.accept@contoso.test'],
    ]);
  });

  it('limits the failure views to unscoped principals and the device view to the device\'s scope', async () => {
    const reader = await t.createKey('readOnlyOperator');
    expect((await get(`${R}/enrollmentFailures`, reader)).statusCode).toBe(200);
    const tag = await createTag(t, 'Lyon R');
    const other = await createTag(t, 'Nice R');
    const scoped = await t.createKey('scopedAdministrator', [tag]);
    const otherScoped = await t.createKey('scopedAdministrator', [other]);
    expect((await get(`${R}/enrollmentFailures`, scoped)).statusCode).toBe(403);
    expect((await get('/beta/deviceManagement/troubleshootingEvents', scoped)).statusCode).toBe(403);
    expect((await action('getEnrollmentFailuresReport', {}, scoped)).res.statusCode).toBe(403);
    expect((await action('getIncompleteUserEnrollmentsReport', {}, scoped)).res.statusCode).toBe(403);

    const device = await enroll(t, { serialNumber: serial(), operatingSystem: 'iOS', roleScopeTagIds: [tag] });
    await record({ outcome: 'succeeded', deviceId: device.device.id, applied: [applied()] });
    const filter = `DeviceId eq '${device.device.id}'`;
    expect((await action('getEnrollmentConfigurationPoliciesByDevice', { filter }, scoped)).body!.TotalRowCount).toBe(1);
    expect((await action('getEnrollmentConfigurationPoliciesByDevice', { filter }, otherScoped)).res.statusCode).toBe(404);
    expect((await action('getEnrollmentConfigurationPoliciesByDevice', { filter }, reader)).body!.TotalRowCount).toBe(1);
  });

  it('isolates tenants', async () => {
    const other = await t.createTenant('Other R');
    await record({ outcome: 'failed', reason: 'devicePlatformBlocked', userPrincipalName: 'other@tenant-b.test' }, other.tenantId);
    const mine = (await get(`${R}/enrollmentFailures?$top=999`)).json().value as { userPrincipalName: string }[];
    expect(mine.map((f) => f.userPrincipalName)).not.toContain('other@tenant-b.test');
    const theirs = (await get(`${R}/enrollmentFailures`, other.adminKey)).json().value;
    expect(theirs).toEqual([expect.objectContaining({ userPrincipalName: 'other@tenant-b.test' })]);
    const device = await enroll(t, { serialNumber: serial(), operatingSystem: 'iOS' });
    await record({ outcome: 'succeeded', deviceId: device.device.id, applied: [applied()] });
    expect((await action('getEnrollmentConfigurationPoliciesByDevice', { filter: `DeviceId eq '${device.device.id}'` }, other.adminKey)).res.statusCode).toBe(404);
  });
});
