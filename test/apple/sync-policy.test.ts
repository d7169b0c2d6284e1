import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DepApiError, type DepDevice } from '../../src/apple/ade/dep-api.js';
import {
  adminActionMessage,
  classifyDepError,
  decideManualSync,
  decideSyncMode,
  DEFAULT_AUTO_SYNC_INTERVAL_MS,
  DEFAULT_DEP_PAGE_LIMIT,
  depOpKind,
  depPageLimit,
  fullSyncAllowedAt,
  isAutomaticSyncDue,
  isOpNewer,
  isRunTimedOut,
  isSyncRunning,
  mergeSyncOps,
  nextAutomaticSyncAt,
  releasedDeviceCutoff,
  releasedDeviceDue,
  runDeadline,
  syncStateFromRow,
  validateAutoSyncInterval,
  type DepSyncState,
} from '../../src/apple/ade/sync-policy.js';
import { DAY, HOUR, MINUTE, SECOND } from '../../src/shared/time.js';

const NOW = new Date('2026-03-10T12:00:00.000Z');
const ago = (ms: number): string => new Date(NOW.getTime() - ms).toISOString();

const state = (over: Partial<DepSyncState> = {}): DepSyncState => ({
  cursor: 'CURSOR1',
  syncPhase: 'sync',
  syncStatus: 'succeeded',
  nextSyncFull: false,
  lastManualSyncAt: null,
  lastSyncStartedAt: ago(HOUR),
  lastFullSyncAt: ago(DAY),
  ...over,
});

/** Instants within ±60 days of NOW, as ISO strings, or null. */
const isoOrNull = fc.option(
  fc.integer({ min: -60 * DAY, max: 60 * DAY }).map((d) => new Date(NOW.getTime() + d).toISOString()),
  { nil: null },
);

describe('isRunTimedOut: "all sync requests are given 15 minutes"', () => {
  it('is not timed out one millisecond before 15 minutes, and is at exactly 15 minutes', () => {
    expect(isRunTimedOut(ago(15 * MINUTE - 1), NOW)).toBe(false);
    expect(isRunTimedOut(ago(15 * MINUTE), NOW)).toBe(true);
    expect(isRunTimedOut(ago(15 * MINUTE + 1), NOW)).toBe(true);
  });

  it('treats a missing or unreadable start as timed out, so a crashed run never blocks forever', () => {
    expect(isRunTimedOut(null, NOW)).toBe(true);
    expect(isRunTimedOut('not a date', NOW)).toBe(true);
  });

  it('treats a start in the future (clock skew) as just started', () => {
    expect(isRunTimedOut(new Date(NOW.getTime() + HOUR), NOW)).toBe(false);
  });

  it('gives the deadline', () => {
    expect(runDeadline(NOW).toISOString()).toBe('2026-03-10T12:15:00.000Z');
    expect(() => runDeadline('nope')).toThrow(RangeError);
  });

  it('a sync is running only while its status says so and it has not timed out', () => {
    expect(isSyncRunning({ syncStatus: 'running', lastSyncStartedAt: ago(MINUTE) }, NOW)).toBe(true);
    expect(isSyncRunning({ syncStatus: 'running', lastSyncStartedAt: ago(15 * MINUTE) }, NOW)).toBe(false);
    expect(isSyncRunning({ syncStatus: 'succeeded', lastSyncStartedAt: ago(MINUTE) }, NOW)).toBe(false);
  });
});

describe('decideManualSync: once per 15 minutes, not while a sync runs', () => {
  it('allows the first manual sync', () => {
    expect(decideManualSync(state({ lastManualSyncAt: null }), NOW)).toEqual({ allowed: true });
  });

  it('refuses one millisecond before 15 minutes and allows at exactly 15 minutes', () => {
    const refused = decideManualSync(state({ lastManualSyncAt: ago(15 * MINUTE - 1) }), NOW);
    expect(refused).toMatchObject({ allowed: false, reason: 'tooSoon', retryAfterSeconds: 1 });
    expect(decideManualSync(state({ lastManualSyncAt: ago(15 * MINUTE) }), NOW)).toEqual({ allowed: true });
  });

  it('gives a Retry-After and a clear message', () => {
    const d = decideManualSync(state({ lastManualSyncAt: ago(5 * MINUTE) }), NOW);
    expect(d.allowed).toBe(false);
    if (d.allowed) return;
    expect(d.retryAfterSeconds).toBe(600);
    expect(d.retryAt.toISOString()).toBe('2026-03-10T12:10:00.000Z');
    expect(d.message).toContain('at most once every 15 minutes');
    expect(d.message).toContain('10 minutes');
    expect(d.message).toContain(ago(5 * MINUTE));
  });

  it('says seconds under a minute', () => {
    const d = decideManualSync(state({ lastManualSyncAt: ago(15 * MINUTE - 30 * SECOND) }), NOW);
    expect(!d.allowed && d.message).toContain('30 seconds');
  });

  it('refuses while a sync runs, until it has run 15 minutes', () => {
    const running = (startedAgo: number) => state({ syncStatus: 'running', lastSyncStartedAt: ago(startedAgo), lastManualSyncAt: null });
    expect(decideManualSync(running(14 * MINUTE), NOW)).toMatchObject({ allowed: false, reason: 'syncRunning', retryAfterSeconds: 60 });
    expect(decideManualSync(running(15 * MINUTE - 1), NOW)).toMatchObject({ allowed: false, reason: 'syncRunning', retryAfterSeconds: 1 });
    // Started 15 minutes ago or more: timed out, no longer blocks.
    expect(decideManualSync(running(15 * MINUTE), NOW)).toEqual({ allowed: true });
    expect(decideManualSync(running(2 * HOUR), NOW)).toEqual({ allowed: true });
  });

  it('a running sync with no start time does not block', () => {
    expect(decideManualSync(state({ syncStatus: 'running', lastSyncStartedAt: null }), NOW)).toEqual({ allowed: true });
  });

  it('names the running sync and waits for the later of the two windows', () => {
    const d = decideManualSync(state({ syncStatus: 'running', lastSyncStartedAt: ago(10 * MINUTE), lastManualSyncAt: ago(2 * MINUTE) }), NOW);
    expect(d).toMatchObject({ allowed: false, reason: 'syncRunning', retryAfterSeconds: 13 * 60 });
    expect(!d.allowed && d.message).toContain('already running');
  });

  it('an automatic sync that just finished does not block a manual one', () => {
    expect(decideManualSync(state({ syncStatus: 'succeeded', lastSyncStartedAt: ago(MINUTE) }), NOW)).toEqual({ allowed: true });
  });

  it('a last request in the future (clock skew) counts as now: 15 minutes, never longer', () => {
    expect(decideManualSync(state({ lastManualSyncAt: new Date(NOW.getTime() + 6 * HOUR) }), NOW)).toMatchObject({ allowed: false, retryAfterSeconds: 900 });
  });

  it('an unreadable last request does not block', () => {
    expect(decideManualSync(state({ lastManualSyncAt: 'garbage' }), NOW)).toEqual({ allowed: true });
  });

  it('property: refused exactly when within a window; Retry-After is 1–900 s and lands where it is allowed', () => {
    fc.assert(
      fc.property(isoOrNull, isoOrNull, fc.constantFrom('none', 'running', 'succeeded', 'failed') as fc.Arbitrary<DepSyncState['syncStatus']>, (manual, started, status) => {
        const s = state({ lastManualSyncAt: manual, lastSyncStartedAt: started, syncStatus: status });
        const d = decideManualSync(s, NOW);
        const manualBlocks = manual !== null && NOW.getTime() - Date.parse(manual) < 15 * MINUTE;
        const runBlocks = status === 'running' && started !== null && NOW.getTime() - Date.parse(started) < 15 * MINUTE;
        expect(d.allowed).toBe(!manualBlocks && !runBlocks);
        if (!d.allowed) {
          expect(d.retryAfterSeconds).toBeGreaterThanOrEqual(1);
          expect(d.retryAfterSeconds).toBeLessThanOrEqual(900);
          expect(d.message.length).toBeGreaterThan(20);
          // Asking again at retryAt (for past timestamps) is allowed, and a moment earlier is not.
          if (Date.parse(manual ?? '1970-01-01') <= NOW.getTime() && Date.parse(started ?? '1970-01-01') <= NOW.getTime()) {
            expect(decideManualSync(s, d.retryAt)).toEqual({ allowed: true });
          }
        }
      }),
    );
  });
});

describe('decideSyncMode', () => {
  it('a new token does a first full sync from the beginning', () => {
    const fresh = syncStateFromRow({
      cursor: null,
      sync_phase: 'fetch',
      sync_status: 'none',
      next_sync_full: 1,
      last_manual_sync_at: null,
      last_sync_started_at: null,
      last_full_sync_at: null,
    });
    expect(decideSyncMode(fresh, NOW)).toEqual({ mode: 'full', reason: 'firstSync', endpoint: 'fetch' });
  });

  it('a first fetch cut short (80,000 devices, a timeout) carries on from its cursor', () => {
    expect(decideSyncMode(state({ syncPhase: 'fetch', cursor: 'PAGE40', lastFullSyncAt: null }), NOW)).toEqual({
      mode: 'full',
      reason: 'resumeFetch',
      endpoint: 'fetch',
      cursor: 'PAGE40',
    });
  });

  it('a delta sync otherwise, from the stored cursor', () => {
    expect(decideSyncMode(state(), NOW)).toEqual({ mode: 'delta', reason: 'delta', endpoint: 'sync', cursor: 'CURSOR1' });
  });

  it('a failed delta makes the next sync full; within 7 days of the last full one it only adds new serials', () => {
    expect(decideSyncMode(state({ nextSyncFull: true, lastFullSyncAt: ago(7 * DAY) }), NOW)).toEqual({ mode: 'full', reason: 'previousSyncFailed', endpoint: 'fetch' });
    const restricted = decideSyncMode(state({ nextSyncFull: true, lastFullSyncAt: ago(7 * DAY - 1) }), NOW);
    expect(restricted).toMatchObject({ mode: 'fullRestricted', reason: 'previousSyncFailed', endpoint: 'fetch' });
    expect(restricted.cursor).toBeUndefined();
    expect(restricted.fullSyncAllowedAt?.toISOString()).toBe(new Date(NOW.getTime() + 1).toISOString());
  });

  it('a refused cursor (EXPIRED_CURSOR, INVALID_CURSOR) leads to a full fetch', () => {
    expect(decideSyncMode(state({ lastFullSyncAt: ago(8 * DAY) }), NOW, { cursorRejected: 'EXPIRED_CURSOR' })).toEqual({ mode: 'full', reason: 'cursorReset', endpoint: 'fetch' });
    expect(decideSyncMode(state({ lastFullSyncAt: ago(DAY) }), NOW, { cursorRejected: 'INVALID_CURSOR' })).toMatchObject({ mode: 'fullRestricted', reason: 'cursorReset', endpoint: 'fetch' });
    // Even mid-fetch: the refused cursor is not resumed.
    expect(decideSyncMode(state({ syncPhase: 'fetch', lastFullSyncAt: ago(DAY) }), NOW, { cursorRejected: 'INVALID_CURSOR' }).cursor).toBeUndefined();
  });

  it('no cursor after a full sync: fetch again', () => {
    expect(decideSyncMode(state({ cursor: null, lastFullSyncAt: ago(DAY) }), NOW)).toMatchObject({ mode: 'fullRestricted', reason: 'cursorMissing' });
    expect(decideSyncMode(state({ cursor: '', lastFullSyncAt: ago(10 * DAY) }), NOW)).toMatchObject({ mode: 'full', reason: 'cursorMissing' });
  });

  it('a full sync comes round every 7 days, not a moment sooner', () => {
    expect(decideSyncMode(state({ lastFullSyncAt: ago(7 * DAY) }), NOW)).toEqual({ mode: 'full', reason: 'periodic', endpoint: 'fetch' });
    expect(decideSyncMode(state({ lastFullSyncAt: ago(7 * DAY - 1) }), NOW)).toMatchObject({ mode: 'delta' });
  });

  it('fullSyncAllowedAt', () => {
    expect(fullSyncAllowedAt(null, NOW)).toBeNull();
    expect(fullSyncAllowedAt(ago(7 * DAY), NOW)).toBeNull();
    expect(fullSyncAllowedAt(ago(DAY), NOW)?.toISOString()).toBe(new Date(NOW.getTime() + 6 * DAY).toISOString());
    // A last full sync in the future (skew) counts as now.
    expect(fullSyncAllowedAt(new Date(NOW.getTime() + DAY), NOW)?.toISOString()).toBe(new Date(NOW.getTime() + 7 * DAY).toISOString());
  });

  const anyState: fc.Arbitrary<DepSyncState> = fc.record({
    cursor: fc.option(fc.constantFrom('', 'C1', 'C2'), { nil: null }),
    syncPhase: fc.constantFrom('fetch', 'sync') as fc.Arbitrary<'fetch' | 'sync'>,
    syncStatus: fc.constantFrom('none', 'running', 'succeeded', 'failed') as fc.Arbitrary<DepSyncState['syncStatus']>,
    nextSyncFull: fc.boolean(),
    lastManualSyncAt: isoOrNull,
    lastSyncStartedAt: isoOrNull,
    lastFullSyncAt: isoOrNull,
  });
  const rejected = fc.constantFrom(undefined, 'EXPIRED_CURSOR', 'INVALID_CURSOR') as fc.Arbitrary<'EXPIRED_CURSOR' | 'INVALID_CURSOR' | undefined>;

  it('property: never an unrestricted full sync within 7 days of the last one', () => {
    fc.assert(
      fc.property(anyState, rejected, (s, r) => {
        const plan = decideSyncMode(s, NOW, r ? { cursorRejected: r } : {});
        const last = s.lastFullSyncAt === null ? null : Date.parse(s.lastFullSyncAt as string);
        if (plan.mode === 'full' && last !== null) expect(NOW.getTime() - last).toBeGreaterThanOrEqual(7 * DAY);
        if (plan.mode === 'fullRestricted') {
          expect(last).not.toBeNull();
          expect(plan.fullSyncAllowedAt!.getTime()).toBeGreaterThan(NOW.getTime());
        }
      }),
    );
  });

  it('property: the plan is coherent — delta only with a usable cursor and no reason for a full sync', () => {
    fc.assert(
      fc.property(anyState, rejected, (s, r) => {
        const plan = decideSyncMode(s, NOW, r ? { cursorRejected: r } : {});
        expect(plan.endpoint).toBe(plan.mode === 'delta' ? 'sync' : 'fetch');
        if (plan.mode === 'delta') {
          expect(plan.cursor).toBe(s.cursor);
          expect(s.cursor).toBeTruthy();
          expect(r).toBeUndefined();
          expect(s.nextSyncFull).toBe(false);
          expect(s.syncPhase).toBe('sync');
        }
        if (plan.cursor !== undefined && plan.mode !== 'delta') expect(plan.reason).toBe('resumeFetch');
        if (r) expect(plan.cursor).toBeUndefined();
        if (s.nextSyncFull) expect(plan.mode).not.toBe('delta');
      }),
    );
  });
});

describe('automatic sync interval: 12 hours by default', () => {
  it('is 12 hours', () => {
    expect(DEFAULT_AUTO_SYNC_INTERVAL_MS).toBe(12 * HOUR);
    expect(nextAutomaticSyncAt(NOW).toISOString()).toBe('2026-03-11T00:00:00.000Z');
    expect(nextAutomaticSyncAt(NOW.toISOString(), 24 * HOUR).toISOString()).toBe('2026-03-11T12:00:00.000Z');
  });

  it('is due at exactly one interval, not before', () => {
    expect(isAutomaticSyncDue(ago(12 * HOUR - 1), NOW)).toBe(false);
    expect(isAutomaticSyncDue(ago(12 * HOUR), NOW)).toBe(true);
    expect(isAutomaticSyncDue(null, NOW)).toBe(true);
  });

  it('accepts 15 minutes to 24 hours', () => {
    expect(() => validateAutoSyncInterval(15 * MINUTE)).not.toThrow();
    expect(() => validateAutoSyncInterval(24 * HOUR)).not.toThrow();
    expect(() => validateAutoSyncInterval(15 * MINUTE - 1)).toThrow(RangeError);
    expect(() => validateAutoSyncInterval(24 * HOUR + 1)).toThrow(RangeError);
    expect(() => validateAutoSyncInterval(Number.NaN)).toThrow(RangeError);
    expect(() => nextAutomaticSyncAt(NOW, 0)).toThrow(RangeError);
    expect(() => nextAutomaticSyncAt('nope')).toThrow(RangeError);
  });
});

describe('released devices: deleted 45 days after removal', () => {
  it('is due at exactly 45 days, not a millisecond before', () => {
    expect(releasedDeviceDue(ago(45 * DAY - 1), NOW)).toBe(false);
    expect(releasedDeviceDue(ago(45 * DAY), NOW)).toBe(true);
    expect(releasedDeviceDue(ago(46 * DAY), NOW)).toBe(true);
    expect(releasedDeviceDue(null, NOW)).toBe(false);
    expect(releasedDeviceDue(new Date(NOW.getTime() + DAY), NOW)).toBe(false);
  });

  it('the sweep cut-off agrees with releasedDeviceDue', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 90 * DAY }), (d) => {
        const removedAt = ago(d);
        expect(releasedDeviceDue(removedAt, NOW)).toBe(removedAt <= releasedDeviceCutoff(NOW).toISOString());
      }),
    );
  });
});

describe('sync records', () => {
  const dev = (serial: string, op_type?: string, op_date?: string, extra: Partial<DepDevice> = {}): DepDevice => ({ serial_number: serial, op_type, op_date, ...extra });

  it('the same serial several times: the latest op_date wins', () => {
    const merged = mergeSyncOps([
      dev('A', 'added', '2026-03-01T10:00:00Z'),
      dev('B', 'added', '2026-03-01T10:00:00Z'),
      dev('A', 'deleted', '2026-03-02T10:00:00Z'),
      dev('A', 'modified', '2026-03-01T12:00:00Z'),
    ]);
    expect(merged.map((d) => [d.serial_number, d.op_type])).toEqual([
      ['A', 'deleted'],
      ['B', 'added'],
    ]);
  });

  it('compares op_date as time, not text', () => {
    const merged = mergeSyncOps([dev('A', 'deleted', '2026-03-02T10:00:00+02:00'), dev('A', 'added', '2026-03-02T09:00:00Z')]);
    // 10:00+02:00 is 08:00Z, earlier than 09:00Z.
    expect(merged[0]?.op_type).toBe('added');
  });

  it('a tie or an undated record goes to the later one', () => {
    expect(mergeSyncOps([dev('A', 'added', '2026-03-01T10:00:00Z'), dev('A', 'modified', '2026-03-01T10:00:00Z')])[0]?.op_type).toBe('modified');
    expect(mergeSyncOps([dev('A', 'added', '2026-03-01T10:00:00Z'), dev('A', 'modified')])[0]?.op_type).toBe('modified');
  });

  it('property: one record per serial, each the latest of its serial, in first-seen order', () => {
    const rec = fc.record({
      serial_number: fc.constantFrom('S1', 'S2', 'S3', 'S4'),
      op_date: fc.integer({ min: 0, max: 100 }).map((m) => new Date(NOW.getTime() + m * MINUTE).toISOString()),
      op_type: fc.constantFrom('added', 'modified', 'deleted'),
    });
    fc.assert(
      fc.property(fc.array(rec, { maxLength: 40 }), (records) => {
        const merged = mergeSyncOps(records);
        const serials = [...new Set(records.map((r) => r.serial_number))];
        expect(merged.map((m) => m.serial_number)).toEqual(serials);
        for (const m of merged) {
          const same = records.filter((r) => r.serial_number === m.serial_number);
          const latest = same.reduce((a, b) => (b.op_date >= a.op_date ? b : a));
          expect(m).toBe(latest);
        }
      }),
    );
  });

  it('isOpNewer', () => {
    expect(isOpNewer(null, '2026-03-01T00:00:00Z')).toBe(true);
    expect(isOpNewer('2026-03-01T00:00:00Z', undefined)).toBe(true);
    expect(isOpNewer('2026-03-01T00:00:00Z', '2026-03-01T00:00:00Z')).toBe(true);
    expect(isOpNewer('2026-03-02T00:00:00Z', '2026-03-01T00:00:00Z')).toBe(false);
  });

  it('op kinds: a fetch record (no op_type) is an addition; unknown ones are modifications', () => {
    expect(depOpKind({})).toBe('added');
    expect(depOpKind({ op_type: 'Added' })).toBe('added');
    expect(depOpKind({ op_type: 'DELETED' })).toBe('deleted');
    expect(depOpKind({ op_type: 'modified' })).toBe('modified');
    expect(depOpKind({ op_type: 'reassigned' })).toBe('modified');
  });
});

describe('classifyDepError', () => {
  const e = (status: number, code: string, retryAfter?: number) => new DepApiError(status, code, code, retryAfter);

  it.each([
    [e(400, 'EXHAUSTED_CURSOR'), 'switchToSync'],
    [e(400, 'EXPIRED_CURSOR'), 'resetCursor'],
    [e(400, 'INVALID_CURSOR'), 'resetCursor'],
    [e(400, 'CURSOR_REQUIRED'), 'resetCursor'],
    [e(403, 'T_C_NOT_SIGNED'), 'needsAdmin'],
    [e(403, 'ACCESS_DENIED'), 'needsAdmin'],
    [e(403, 'FORBIDDEN'), 'needsAdmin'],
    [e(401, 'token_rejected'), 'needsAdmin'],
    [e(401, 'signature_invalid'), 'needsAdmin'],
    [e(401, 'token_expired'), 'needsAdmin'],
    [e(401, 'oauth_problem'), 'needsAdmin'],
    [e(401, 'UNAUTHORIZED'), 'retryLater'],
    [e(429, 'TOO_MANY_REQUESTS', 3600), 'retryLater'],
    [e(503, 'SERVICE_UNAVAILABLE'), 'retryLater'],
    [e(500, 'INTERNAL_SERVER_ERROR'), 'retryLater'],
    [e(0, 'NETWORK_ERROR'), 'retryLater'],
    [e(0, 'TIMEOUT'), 'retryLater'],
    [e(400, 'USER_AGENT_INVALID'), 'fatal'],
    [e(400, 'MALFORMED_REQUEST_BODY'), 'fatal'],
    [e(404, 'PROFILE_NOT_FOUND'), 'fatal'],
    [e(200, 'MALFORMED_RESPONSE'), 'fatal'],
  ] as const)('%s → %s', (err, action) => {
    expect(classifyDepError(err)).toBe(action);
  });

  it('the run being aborted or timed out is retried later; anything else is fatal', () => {
    expect(classifyDepError(new DOMException('aborted', 'AbortError'))).toBe('retryLater');
    expect(classifyDepError(new DOMException('timed out', 'TimeoutError'))).toBe('retryLater');
    expect(classifyDepError(new Error('bug'))).toBe('fatal');
    expect(classifyDepError('string')).toBe('fatal');
  });

  it('errors that need an admin get a message for the token; others none', () => {
    expect(adminActionMessage(e(403, 'T_C_NOT_SIGNED'))).toMatch(/terms and conditions/);
    expect(adminActionMessage(e(401, 'token_rejected'))).toMatch(/Download a new token/);
    expect(adminActionMessage(e(401, 'token_expired'))).toMatch(/expired/);
    expect(adminActionMessage(e(403, 'ACCESS_DENIED'))).toMatch(/ACCESS_DENIED/);
    expect(adminActionMessage(e(503, 'SERVICE_UNAVAILABLE'))).toBeUndefined();
    expect(adminActionMessage(new Error('x'))).toBeUndefined();
  });
});

describe('depPageLimit', () => {
  const account = (maximum?: number) => ({ urls: maximum === undefined ? [] : [{ uri: '/server/devices', http_method: ['POST'], limit: { default: 100, maximum } }] });
  it('uses the advertised maximum, at most 1,000, else 100', () => {
    expect(depPageLimit(account(5000), '/server/devices')).toBe(1000);
    expect(depPageLimit(account(500), '/server/devices')).toBe(500);
    expect(depPageLimit(account(500), '/devices/sync')).toBe(DEFAULT_DEP_PAGE_LIMIT);
    expect(depPageLimit(account(), '/server/devices')).toBe(100);
    expect(depPageLimit(account(0), '/server/devices')).toBe(100);
    expect(depPageLimit(null, '/server/devices')).toBe(100);
  });
});

describe('syncStateFromRow', () => {
  it('maps the dep_tokens columns and defaults odd values', () => {
    expect(
      syncStateFromRow({
        cursor: '',
        sync_phase: 'weird',
        sync_status: 'weird',
        next_sync_full: 0,
        last_manual_sync_at: 'a',
        last_sync_started_at: 'b',
        last_full_sync_at: 'c',
      }),
    ).toEqual({ cursor: null, syncPhase: 'fetch', syncStatus: 'none', nextSyncFull: false, lastManualSyncAt: 'a', lastSyncStartedAt: 'b', lastFullSyncAt: 'c' });
  });
});
