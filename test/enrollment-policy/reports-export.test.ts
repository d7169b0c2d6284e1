import crypto from 'node:crypto';
import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CSV_BOM, csvField, csvLine, guardFormula } from '../../src/enrollment-policy/reports/csv.js';
import type { EnrollmentAttemptInput } from '../../src/enrollment-policy/reports/attempts.js';
import { DAY, HOUR, type ManualClock } from '../../src/shared/time.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { createTag, enroll, serial } from '../devices/fixtures.js';
import { reportsModule } from './terms-reports-fixtures.js';

const parseCsv = (text: string) => parse(text, { bom: true, relax_column_count: false }) as string[][];

describe('CSV (pure)', () => {
  it('quotes every field and doubles quotes, keeping commas and line breaks', () => {
    expect(csvField('a,b', true)).toBe('"a,b"');
    expect(csvField('say "hi"', true)).toBe('"say ""hi"""');
    expect(csvField('two\r\nlines', true)).toBe('"two\r\nlines"');
    expect(csvField(null, true)).toBe('""');
    expect(csvField(7, false)).toBe('"7"');
    expect(csvField(true, false)).toBe('"true"');
    expect(csvLine(['a', null, 3], [true, true, false])).toBe('"a","","3"\r\n');
  });

  it('guards text cells a spreadsheet would run as formulas, not numbers', () => {
    for (const bad of ['=SUM(A1:A9)', '+1', '-1+2', '@cmd', '\t=x', '\r=x']) expect(guardFormula(bad)).toBe(`'${bad}`);
    for (const ok of ['alice@contoso.test', 'a=b', ' =x', '', "'already"]) expect(guardFormula(ok)).toBe(ok);
    expect(csvField('=HYPERLINK("x")', true)).toBe('"\'=HYPERLINK(""x"")"');
    expect(csvField(-5, false)).toBe('"-5"');
  });

  it('round-trips any text through a CSV parser (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.oneof(fc.string(), fc.constantFrom('=1+1', 'a,"b"\n', '\r\n', '""')), { minLength: 3, maxLength: 3 }), { maxLength: 10 }), (rows) => {
        const text = CSV_BOM + rows.map((r) => csvLine(r, [true, true, true])).join('');
        expect(parseCsv(text)).toEqual(rows.map((r) => r.map(guardFormula)));
      }),
    );
  });
});

describe('report export jobs', () => {
  let t: TestApp;
  let clock: ManualClock;
  const EXPORTS = '/beta/deviceManagement/reports/exportJobs';
  beforeAll(async () => {
    t = await createTestApp();
    clock = t.clock as ManualClock;
  });
  afterAll(async () => t.close());

  const record = (input: Partial<EnrollmentAttemptInput> & Pick<EnrollmentAttemptInput, 'outcome'>) =>
    t.store.transaction((trx) =>
      reportsModule(t).recordEnrollmentAttempt(trx, t.tenantId, {
        osPlatform: 'iOS',
        osVersion: '17.4',
        method: 'appleCompanyPortal',
        activityId: crypto.randomUUID(),
        applied: [],
        at: clock.now(),
        ...input,
      }),
    );
  const post = (payload: Record<string, unknown>, key?: string) => t.request({ method: 'POST', url: EXPORTS, payload, ...(key ? { key } : {}) });
  const get = (url: string, key?: string) => t.request({ method: 'GET', url, ...(key ? { key } : {}) });
  const drain = () => t.app.core.jobs.drain();

  it('exports a report end to end: enqueue, run, poll, download a CSV that parses back to the report rows', async () => {
    await record({ outcome: 'failed', reason: 'devicePlatformBlocked', userPrincipalName: 'alice.x@contoso.test', userId: 'u-a', message: 'Blocked, "really"\nsecond line' });
    await record({ outcome: 'failed', reason: 'deviceLimitReached', userPrincipalName: '=HYPERLINK("http://evil")', userId: 'u-b', osVersion: '-1' });
    await record({ outcome: 'failed', reason: 'osVersionBelowMinimum', userPrincipalName: 'carol.x@contoso.test', userId: 'u-c', osVersion: null });
    const select = ['UserPrincipalName', 'FailureReason', 'FailureDetails', 'OperatingSystem', 'OSVersion', 'EnrollmentMethod', 'EnrollmentDateTime', 'ActivityId'];
    const filter = "UserId eq 'u-a' or UserId eq 'u-b' or UserId eq 'u-c'";

    const created = await post({ '@odata.type': '#microsoft.graph.deviceManagementExportJob', reportName: 'EnrollmentFailures', filter, select, format: 'csv', localizationType: 'localizedValuesAsAdditionalColumn' });
    expect(created.statusCode).toBe(201);
    const job = created.json();
    expect(job).toMatchObject({
      '@odata.context': 'http://openenroll.test/beta/$metadata#deviceManagement/reports/exportJobs/$entity',
      '@odata.type': '#microsoft.graph.deviceManagementExportJob',
      reportName: 'EnrollmentFailures',
      filter,
      select,
      format: 'csv',
      status: 'notStarted',
      url: null,
      snapshotId: null,
      requestDateTime: clock.now().toISOString(),
      expirationDateTime: '0001-01-01T00:00:00Z',
    });
    expect(job.id).toMatch(/^EnrollmentFailures_[0-9a-f-]{36}$/);
    const early = await get(`${EXPORTS}/${job.id}/content`);
    expect(early.statusCode).toBe(409);

    await drain();
    const done = (await get(`${EXPORTS}('${job.id}')`)).json();
    expect(done).toMatchObject({ status: 'completed', url: `http://openenroll.test/beta/deviceManagement/reports/exportJobs/${job.id}/content`, expirationDateTime: new Date(clock.now().getTime() + DAY).toISOString() });
    expect((await get(`${EXPORTS}?$filter=status eq 'completed'`)).json().value.map((j: { id: string }) => j.id)).toContain(job.id);

    const file = await get(new URL(done.url as string).pathname);
    expect(file.statusCode).toBe(200);
    expect(file.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(file.headers['content-disposition']).toBe(`attachment; filename="${job.id}.csv"`);
    const [header, ...rows] = parseCsv(file.body);
    expect(header).toEqual(select);

    const action = await t.request({ method: 'POST', url: '/beta/deviceManagement/reports/getEnrollmentFailuresReport', payload: { filter, select } });
    const values = (JSON.parse(action.body) as { Values: unknown[][] }).Values;
    const textColumns = ['UserPrincipalName', 'FailureReason', 'FailureDetails', 'OperatingSystem', 'OSVersion', 'EnrollmentMethod', 'ActivityId'];
    const expected = values.map((v) => v.map((x, i) => (x === null ? '' : textColumns.includes(select[i]!) ? guardFormula(String(x)) : String(x))));
    expect(rows).toEqual(expected);
    expect(rows).toHaveLength(3);
    expect(rows.flat()).toContain('Blocked, "really"\nsecond line');
    expect(rows.flat()).toContain('\'=HYPERLINK("http://evil")');
    expect(rows.flat()).toContain("'-1");

    const audit = (await get(`/beta/deviceManagement/auditEvents?$filter=resources/resourceId eq '${job.id}'`)).json().value;
    expect(audit.map((e: { activity: string }) => e.activity)).toEqual(['Create report export job']);
  });

  it('exports every report by its name, and refuses unknown names and unsupported options', async () => {
    const device = await enroll(t, { serialNumber: serial(), operatingSystem: 'iOS' });
    await record({ outcome: 'succeeded', deviceId: device.device.id, applied: [{ policyId: 'p', displayName: 'Default', type: 'platformRestriction', priority: 0, isDefault: true, target: 'default', state: 'succeeded' }] });
    for (const reportName of ['IncompleteUserEnrollments', 'EnrollmentConfigurationPoliciesByDevice', 'TermsAndConditionsAcceptance']) {
      const res = await post({ reportName });
      expect(res.statusCode, reportName).toBe(201);
    }
    await drain();
    const jobs = (await get(EXPORTS)).json().value as { reportName: string; status: string; url: string }[];
    expect(jobs.every((j) => j.status === 'completed')).toBe(true);
    const byDevice = jobs.find((j) => j.reportName === 'EnrollmentConfigurationPoliciesByDevice')!;
    const rows = parseCsv((await get(new URL(byDevice.url).pathname)).body);
    expect(rows[0]).toContain('PolicyName');
    expect(rows.some((r) => r[0] === device.device.id)).toBe(true);

    for (const [payload, target] of [
      [{ reportName: 'Devices' }, 'reportName'],
      [{ reportName: 'enrollmentfailures' }, 'reportName'],
      [{ reportName: 'EnrollmentFailures', format: 'json' }, 'format'],
      [{ reportName: 'EnrollmentFailures', format: 'xlsx' }, 'format'],
      [{ reportName: 'EnrollmentFailures', snapshotId: 'abc' }, 'snapshotId'],
      [{ reportName: 'EnrollmentFailures', select: ['Nope'] }, 'select'],
      [{ reportName: 'EnrollmentFailures', filter: 'UserId eq' }, 'filter'],
      [{ reportName: 'EnrollmentFailures', search: 'x'.repeat(101) }, 'search'],
      [{}, 'reportName'],
    ] as const) {
      const res = await post(payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error.target).toBe(target);
    }
    const named = await post({ reportName: 'Devices' });
    expect(named.json().error.message).toContain("'Devices'");
  });

  it('fails a job whose file would be too large', async () => {
    const exports = reportsModule(t).exports;
    const before = exports.limits.maxBytes;
    exports.limits.maxBytes = 200;
    try {
      const { id } = (await post({ reportName: 'EnrollmentFailures' })).json();
      await drain();
      const job = (await get(`${EXPORTS}/${id}`)).json();
      expect(job).toMatchObject({ status: 'failed', url: null });
      expect((await get(`${EXPORTS}/${id}/content`)).statusCode).toBe(409);
    } finally {
      exports.limits.maxBytes = before;
    }
  });

  it('expires the file after a day and deletes it', async () => {
    const { id } = (await post({ reportName: 'EnrollmentFailures' })).json();
    await drain();
    expect((await get(`${EXPORTS}/${id}`)).json().status).toBe('completed');
    clock.advance(DAY - 1);
    expect((await get(`${EXPORTS}/${id}/content`)).statusCode).toBe(200);
    clock.advance(HOUR);
    expect((await get(`${EXPORTS}/${id}`)).statusCode).toBe(404);
    expect((await get(`${EXPORTS}/${id}/content`)).statusCode).toBe(404);
    await drain();
    expect(await t.store.db.selectFrom('report_export_jobs').select('id').where('id', '=', id).execute()).toEqual([]);
  });

  it('deletes a job on request', async () => {
    const { id } = (await post({ reportName: 'EnrollmentFailures' })).json();
    expect((await t.request({ method: 'DELETE', url: `${EXPORTS}/${id}` })).statusCode).toBe(204);
    expect((await get(`${EXPORTS}/${id}`)).statusCode).toBe(404);
    // Its queued run finds nothing to do.
    await drain();
    expect((await get(`${EXPORTS}/${id}`)).statusCode).toBe(404);
  });

  it('respects roles, scope tags and tenants', async () => {
    const reader = await t.createKey('readOnlyOperator');
    const readerJob = await post({ reportName: 'EnrollmentFailures' }, reader);
    expect(readerJob.statusCode).toBe(201);

    const paris = await createTag(t, 'Paris X');
    const rome = await createTag(t, 'Rome X');
    const parisAdmin = await t.createKey('scopedAdministrator', [paris]);
    const romeAdmin = await t.createKey('scopedAdministrator', [rome]);
    expect((await post({ reportName: 'EnrollmentFailures' }, parisAdmin)).statusCode).toBe(403);
    expect((await post({ reportName: 'IncompleteUserEnrollments' }, parisAdmin)).statusCode).toBe(403);

    const parisDevice = await enroll(t, { serialNumber: serial(), operatingSystem: 'iOS', roleScopeTagIds: [paris] });
    const romeDevice = await enroll(t, { serialNumber: serial(), operatingSystem: 'iOS', roleScopeTagIds: [rome] });
    for (const d of [parisDevice, romeDevice]) {
      await record({ outcome: 'succeeded', deviceId: d.device.id, applied: [{ policyId: 'p', displayName: 'Default', type: 'platformRestriction', priority: 0, isDefault: true, target: 'default', state: 'succeeded' }] });
    }
    const scopedJob = await post({ reportName: 'EnrollmentConfigurationPoliciesByDevice' }, parisAdmin);
    expect(scopedJob.statusCode).toBe(201);
    await drain();
    const id = scopedJob.json().id as string;
    const csv = parseCsv((await get(`${EXPORTS}/${id}/content`, parisAdmin)).body);
    const deviceIds = csv.slice(1).map((r) => r[0]);
    expect(deviceIds).toContain(parisDevice.device.id);
    expect(deviceIds).not.toContain(romeDevice.device.id);

    // A scoped admin sees only its own jobs; an unscoped one sees all.
    expect((await get(`${EXPORTS}/${id}`, romeAdmin)).statusCode).toBe(404);
    expect((await get(`${EXPORTS}/${id}/content`, romeAdmin)).statusCode).toBe(404);
    expect((await get(EXPORTS, parisAdmin)).json().value.map((j: { id: string }) => j.id)).toEqual([id]);
    expect((await get(`${EXPORTS}/${id}`)).statusCode).toBe(200);

    const other = await t.createTenant('Other X');
    expect((await get(`${EXPORTS}/${id}`, other.adminKey)).statusCode).toBe(404);
    expect((await get(`${EXPORTS}/${id}/content`, other.adminKey)).statusCode).toBe(404);
    expect((await t.request({ method: 'DELETE', url: `${EXPORTS}/${id}`, key: other.adminKey })).statusCode).toBe(404);
    expect((await get(EXPORTS, other.adminKey)).json().value).toEqual([]);
  });
});
