import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ABANDONMENT_CATALOGUE,
  continueOrRestart,
  daysOf,
  effectiveOutcome,
  idleTooLong,
  reportRange,
  SECTIONS,
  summarize,
} from '../../src/enrollment-policy/reports/incomplete.js';
import { DAY, HOUR, MINUTE, SECOND, type ManualClock } from '../../src/shared/time.js';
import type { Trx } from '../../src/store/db.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { reportsModule } from './terms-reports-fixtures.js';

const T0 = '2026-03-01T10:00:00.000Z';
const plus = (iso: string, ms: number) => new Date(Date.parse(iso) + ms).toISOString();

describe('incomplete enrollment rules (pure)', () => {
  it('counts an attempt idle for 30:00 as incomplete, not one idle for 29:59', () => {
    expect(idleTooLong(T0, plus(T0, 29 * MINUTE + 59 * SECOND))).toBe(false);
    expect(idleTooLong(T0, plus(T0, 30 * MINUTE - 1))).toBe(false);
    expect(idleTooLong(T0, plus(T0, 30 * MINUTE))).toBe(true);
    const open = { status: 'inProgress' as const, lastActivityAt: T0, actionName: 'TermsofUse' as const };
    expect(continueOrRestart(open, plus(T0, 29 * MINUTE + 59 * SECOND))).toEqual({ continues: true, timedOut: false });
    expect(continueOrRestart(open, plus(T0, 30 * MINUTE))).toEqual({ continues: false, timedOut: true });
    expect(continueOrRestart({ ...open, status: 'completed' }, plus(T0, MINUTE))).toEqual({ continues: false, timedOut: false });
    const stalled = { ...open, endedAt: null, endActionName: null, endUserAction: null };
    expect(effectiveOutcome(stalled, plus(T0, 29 * MINUTE + 59 * SECOND))).toEqual({ outcome: 'inProgress' });
    expect(effectiveOutcome(stalled, plus(T0, 30 * MINUTE))).toEqual({ outcome: 'incomplete', actionName: 'TermsofUse', userAction: 'tookTooLong', endedAt: plus(T0, 30 * MINUTE) });
  });

  it('covers the past two weeks by default and at most 30 days back', () => {
    const now = new Date(T0);
    expect(reportRange(now)).toEqual({ from: plus(T0, -14 * DAY), to: T0 });
    expect(reportRange(now, plus(T0, -30 * DAY))).toEqual({ from: plus(T0, -30 * DAY), to: T0 });
    expect(reportRange(now, plus(T0, -30 * DAY - 1))).toHaveProperty('error');
    expect(reportRange(now, plus(T0, -31 * DAY))).toHaveProperty('error');
    // The end is capped at now.
    expect(reportRange(now, plus(T0, -DAY), plus(T0, 5 * DAY))).toEqual({ from: plus(T0, -DAY), to: T0 });
    expect(daysOf({ from: '2026-02-27T23:00:00.000Z', to: '2026-03-01T01:00:00.000Z' })).toEqual(['2026-02-27', '2026-02-28', '2026-03-01']);
  });

  it('has the seed\'s four sections and abandonment catalogue', () => {
    expect(Object.values(SECTIONS)).toEqual(['Setup checklist', 'Platform screens', 'Terms of use', 'Compliance/Activation']);
    expect(ABANDONMENT_CATALOGUE).toHaveLength(19);
    expect(ABANDONMENT_CATALOGUE.filter((r) => r.section === 'termsOfUse').map((r) => r.userAction)).toEqual(['declineAll', 'tookTooLong']);
  });

  it('summarises tiles, daily lines per section and actions', () => {
    const range = { from: '2026-03-01T00:00:00.000Z', to: '2026-03-02T23:59:59.000Z' };
    const incomplete = (actionName: 'TermsofUse' | 'iOSProfileLaunch', userAction: 'declineAll' | 'cancel') => ({ outcome: 'incomplete' as const, actionName, userAction });
    const s = summarize(
      [
        { startedAt: '2026-03-01T09:00:00.000Z', platform: 'iOS', outcome: incomplete('TermsofUse', 'declineAll') },
        { startedAt: '2026-03-02T09:00:00.000Z', platform: 'iOS', outcome: incomplete('iOSProfileLaunch', 'cancel') },
        { startedAt: '2026-03-02T10:00:00.000Z', platform: 'iOS', outcome: { outcome: 'completed' } },
        { startedAt: '2026-03-02T11:00:00.000Z', platform: 'iOS', outcome: { outcome: 'inProgress' } },
        { startedAt: '2026-02-28T11:00:00.000Z', platform: 'iOS', outcome: incomplete('TermsofUse', 'declineAll') },
      ],
      range,
    );
    expect(s).toMatchObject({ initiatedEnrollments: 4, incompleteEnrollments: 2, incompleteRate: 50 });
    expect(s.sections.find((x) => x.section === 'termsOfUse')!.daily).toEqual([
      { date: '2026-03-01', incompleteEnrollments: 1 },
      { date: '2026-03-02', incompleteEnrollments: 0 },
    ]);
    expect(s.actions.find((a) => a.actionName === 'iOSProfileLaunch' && a.screenOrFlow === 'Installing profile screen')!.incompleteEnrollments).toBe(1);
    expect(summarize([], range).incompleteRate).toBe(0);
    expect(summarize([{ startedAt: '2026-03-01T09:00:00.000Z', platform: 'iOS', outcome: incomplete('TermsofUse', 'declineAll') }], range, 'platformScreens').incompleteEnrollments).toBe(0);
  });
});

describe('incomplete user enrollments report', () => {
  let t: TestApp;
  let clock: ManualClock;
  beforeAll(async () => {
    t = await createTestApp();
    clock = t.clock as ManualClock;
  });
  afterAll(async () => t.close());

  const sessions = () => reportsModule(t).sessions;
  const tx = <T>(fn: (trx: Trx) => Promise<T>) => t.store.transaction(fn);
  const report = async (payload: Record<string, unknown> = {}, key?: string) => {
    const res = await t.request({ method: 'POST', url: '/beta/deviceManagement/reports/getIncompleteUserEnrollmentsReport', payload, ...(key ? { key } : {}) });
    if (res.statusCode !== 200) return { res, rows: [] as Record<string, unknown>[], summary: undefined };
    const body = JSON.parse(res.body) as { Schema: { Column: string }[]; Values: unknown[][]; Summary: Record<string, unknown> & { sections: { section: string; incompleteEnrollments: number }[] } };
    return { res, rows: body.Values.map((v) => Object.fromEntries(body.Schema.map((s, i) => [s.Column, v[i]]))), summary: body.Summary };
  };
  const rowFor = (rows: Record<string, unknown>[], id: string) => rows.find((r) => r.AttemptId === id);

  it('continues an attempt after 29:59 between screens and starts a new one after 30:00', async () => {
    const start = plus(T0, -DAY);
    const { sessionId: first } = await tx((trx) => sessions().start(trx, t.tenantId, { userId: 'u-boundary', userPrincipalName: 'boundary@contoso.test', platform: 'iOS', at: start }));
    const s1 = plus(start, 29 * MINUTE + 59 * SECOND);
    const { sessionId: same } = await tx((trx) => sessions().step(trx, t.tenantId, first, { actionName: 'iOSProfileLaunch', at: s1 }));
    expect(same).toBe(first);
    const s2 = plus(s1, 30 * MINUTE);
    const { sessionId: second } = await tx((trx) => sessions().step(trx, t.tenantId, first, { actionName: 'TermsofUse', at: s2 }));
    expect(second).not.toBe(first);
    await tx((trx) => sessions().complete(trx, t.tenantId, second, { at: plus(s2, MINUTE), deviceId: 'd-1' }));

    clock.set(T0);
    const { rows, summary } = await report();
    expect(rowFor(rows, first)).toEqual({
      AttemptId: first,
      StartDateTime: start,
      IncompleteDateTime: plus(s1, 30 * MINUTE),
      OperatingSystem: 'iOS',
      UserId: 'u-boundary',
      UserPrincipalName: 'boundary@contoso.test',
      Section: 'Platform screens',
      ActionName: 'iOSProfileLaunch',
      ScreenOrFlow: 'Install profile screen until profile is installed',
      UserAction: 'Took > 30 minutes',
    });
    expect(rowFor(rows, second)).toBeUndefined();
    expect(summary).toMatchObject({ initiatedEnrollments: 2, incompleteEnrollments: 1, incompleteRate: 50 });
  });

  it('counts an open attempt as incomplete once it has been idle 30:00 at report time, not at 29:59', async () => {
    const start = plus(T0, 2 * DAY);
    const { sessionId } = await tx((trx) => sessions().start(trx, t.tenantId, { userId: 'u-idle', platform: 'Android', at: start }));
    await tx((trx) => sessions().step(trx, t.tenantId, sessionId, { actionName: 'AndroidPermissions', at: plus(start, MINUTE) }));
    clock.set(plus(start, MINUTE + 29 * MINUTE + 59 * SECOND));
    expect(rowFor((await report()).rows, sessionId)).toBeUndefined();
    clock.set(plus(start, MINUTE + 30 * MINUTE));
    expect(rowFor((await report()).rows, sessionId)).toMatchObject({ Section: 'Platform screens', ActionName: 'AndroidPermissions', UserAction: 'Took > 30 minutes', OperatingSystem: 'Android' });
  });

  it('records explicit halts and restarts as incomplete, with the catalogue\'s screen', async () => {
    const start = plus(T0, 3 * DAY);
    const { sessionId: declined } = await tx((trx) => sessions().start(trx, t.tenantId, { userId: 'u-halt', platform: 'iOS', at: start }));
    await tx((trx) => sessions().step(trx, t.tenantId, declined, { actionName: 'TermsofUse', at: plus(start, MINUTE) }));
    await tx((trx) => sessions().abandon(trx, t.tenantId, declined, { userAction: 'declineAll', at: plus(start, 2 * MINUTE) }));
    // Starting again while an attempt is open ends it as "returned to Set up access".
    const { sessionId: open } = await tx((trx) => sessions().start(trx, t.tenantId, { userId: 'u-halt', platform: 'iOS', at: plus(start, 3 * MINUTE) }));
    const { sessionId: restarted } = await tx((trx) => sessions().start(trx, t.tenantId, { userId: 'u-halt', platform: 'iOS', at: plus(start, 4 * MINUTE) }));
    await tx((trx) => sessions().complete(trx, t.tenantId, restarted, { at: plus(start, 10 * MINUTE) }));

    clock.set(plus(start, HOUR));
    const { rows } = await report({ filter: "UserId eq 'u-halt'" });
    expect(rowFor(rows, declined)).toMatchObject({ Section: 'Terms of use', ActionName: 'TermsofUse', ScreenOrFlow: 'Terms of use (if admin configured)', UserAction: 'Decline All' });
    expect(rowFor(rows, open)).toMatchObject({ Section: 'Setup checklist', ActionName: 'PreEnrollmentWizard', UserAction: 'Postpone' });
    expect(rowFor(rows, restarted)).toBeUndefined();
    expect(rows).toHaveLength(2);

    await expect(tx((trx) => sessions().step(trx, t.tenantId, restarted, { actionName: 'Nope', at: plus(start, 11 * MINUTE) }))).rejects.toThrow(TypeError);
    await expect(tx((trx) => sessions().step(trx, t.tenantId, restarted, { actionName: 'KnoxActivation', at: plus(start, 11 * MINUTE) }))).rejects.toThrow(/doesn't exist on iOS/);
    await expect(tx((trx) => sessions().abandon(trx, t.tenantId, restarted, { actionName: 'TermsofUse', userAction: 'cancel', at: plus(start, 11 * MINUTE) }))).rejects.toThrow(TypeError);
  });

  it('shows two weeks by default, accepts a start 30 days back and refuses 31', async () => {
    const now = plus(T0, 40 * DAY);
    clock.set(now);
    const ids: Record<string, string> = {};
    for (const [name, ago] of [['d13', 13], ['d15', 15], ['d29', 29]] as const) {
      const at = plus(now, -ago * DAY);
      const { sessionId } = await tx((trx) => sessions().start(trx, t.tenantId, { userId: `u-${name}`, platform: 'iOS', at }));
      await tx((trx) => sessions().abandon(trx, t.tenantId, sessionId, { actionName: 'EnrollmentWrapUp', userAction: 'cancel', at: plus(at, MINUTE) }));
      ids[name] = sessionId;
    }
    const byDefault = await report();
    expect(byDefault.summary).toMatchObject({ startDateTime: plus(now, -14 * DAY), endDateTime: now });
    expect(rowFor(byDefault.rows, ids.d13!)).toBeDefined();
    expect(rowFor(byDefault.rows, ids.d15!)).toBeUndefined();

    const thirty = await report({ filter: `StartDateTime ge ${plus(now, -30 * DAY)}` });
    expect(thirty.res.statusCode).toBe(200);
    expect([ids.d13, ids.d15, ids.d29].every((id) => rowFor(thirty.rows, id!))).toBe(true);
    expect((thirty.summary as { sections: { section: string; incompleteEnrollments: number }[] }).sections.find((s) => s.section === 'setupChecklist')!.incompleteEnrollments).toBe(3);

    for (const filter of [`StartDateTime ge ${plus(now, -31 * DAY)}`, `StartDateTime gt ${plus(now, -30 * DAY - SECOND)}`, `StartDateTime ge ${plus(now, -20 * DAY)} or UserId eq 'x'`]) {
      const refused = await report({ filter });
      expect(refused.res.statusCode, filter).toBe(400);
      expect(refused.res.json().error.target).toBe('filter');
    }
    const exportRefused = await t.request({ method: 'POST', url: '/beta/deviceManagement/reports/exportJobs', payload: { reportName: 'IncompleteUserEnrollments', filter: `StartDateTime ge ${plus(now, -31 * DAY)}` } });
    expect(exportRefused.statusCode).toBe(400);
    expect(exportRefused.json().error.target).toBe('filter');

    // Filters on operating system and section narrow the rows and the tiles.
    const android = await report({ filter: `StartDateTime ge ${plus(now, -30 * DAY)} and OperatingSystem eq 'Android'` });
    expect(android.rows).toEqual([]);
    expect(android.summary).toMatchObject({ initiatedEnrollments: 0, incompleteEnrollments: 0 });
    const terms = await report({ filter: `StartDateTime ge ${plus(now, -30 * DAY)} and Section eq 'Terms of use'` });
    expect(terms.rows).toEqual([]);
    expect(terms.summary).toMatchObject({ initiatedEnrollments: 3, incompleteEnrollments: 0 });
  });
});

