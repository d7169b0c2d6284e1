import { afterEach, describe, expect, it } from 'vitest';
import { ADE_CLEANUP_JOB, ADE_CLEANUP_JOB_KEY, ADE_SYNC_JOB, AdeSyncJobs, adeSyncJobKey } from '../../src/apple/ade/sync/index.js';
import { systemActor } from '../../src/auth/principal.js';
import type { DeviceRecords } from '../../src/devices/service.js';
import { GraphError } from '../../src/graph/errors.js';
import { DAY, HOUR, MINUTE } from '../../src/shared/time.js';
import { TOKENS } from '../helpers/apple.js';
import { syncHarness, type SyncHarness } from './ade-sync-support.js';

let h: SyncHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const depCalls = (hh: SyncHarness, path?: string) => hh.sim.requests.filter((r) => r.path !== '/session' && (!path || r.path === path));

async function syncJob(hh: SyncHarness) {
  return hh.t.store.db.selectFrom('jobs').selectAll().where('dedupe_key', '=', adeSyncJobKey(hh.tokenId)).executeTakeFirstOrThrow();
}

describe('ADE sync: first sync and deltas', () => {
  it('syncs every device right after upload, then schedules a delta every 12 hours', async () => {
    h = await syncHarness();
    const serials = h.sim.generateDevices(2500, { serverUuid: h.serverUuid, prefix: 'FIRST' });
    const uploadedAt = h.clock.now().toISOString();
    await h.drain();

    const devices = await h.devices();
    expect(devices.size).toBe(2500);
    const one = devices.get(serials[0]!)!;
    const apple = h.sim.device(serials[0]!)!;
    expect(one).toMatchObject({
      model: apple.model,
      description: apple.description,
      color: apple.color,
      device_family: apple.device_family,
      os: apple.os,
      discovery_source: 'deviceEnrollmentProgram',
      apple_profile_status: 'empty',
      seen_at_apple: 1,
      removed_from_apple_at: null,
      deleted_at: null,
    });
    expect(['ios', 'macOS', 'tvOS', 'visionOS']).toContain(one.platform);
    const token = await h.token();
    expect(token).toMatchObject({
      sync_status: 'succeeded',
      sync_phase: 'sync',
      next_sync_full: 0,
      synced_device_count: 2500,
      last_sync_triggered_at: uploadedAt,
      last_successful_sync_at: uploadedAt,
      last_full_sync_at: uploadedAt,
      apple_status: null,
      fetch_limit: 1000,
    });
    expect(token.cursor).toBeTruthy();
    // 3 pages of 1,000, then the changes since the fetch began (none).
    expect(depCalls(h).map((r) => r.path)).toEqual(['/account', '/server/devices', '/server/devices', '/server/devices', '/devices/sync']);
    const job = await syncJob(h);
    expect(job).toMatchObject({ kind: ADE_SYNC_JOB, status: 'pending', interval_ms: 12 * HOUR, run_at: new Date(h.clock.now().getTime() + 12 * HOUR).toISOString() });
  });

  it('a delta adds new devices, refreshes changed ones and marks released ones removed', async () => {
    h = await syncHarness();
    const serials = h.sim.generateDevices(50, { serverUuid: h.serverUuid });
    await h.drain();
    h.clock.advance(HOUR);
    const added = h.sim.generateDevices(3, { serverUuid: h.serverUuid, prefix: 'NEW' });
    const releasedAt = h.clock.now().toISOString();
    h.sim.releaseDevices([serials[0]!]);
    h.sim.unassignDevices([serials[1]!]);
    h.sim.injectFault({ path: '/server/devices', status: 500, times: Infinity });
    h.clock.advance(11 * HOUR - 1);
    await h.drain();
    expect(depCalls(h, '/devices/sync').length).toBe(1); // not due yet
    h.clock.advance(1);
    await h.drain();

    const devices = await h.devices();
    expect(devices.size).toBe(53);
    for (const s of added) expect(devices.get(s)).toMatchObject({ last_op_type: 'added', removed_from_apple_at: null });
    expect(devices.get(serials[0]!)).toMatchObject({ removed_from_apple_at: releasedAt, last_op_type: 'deleted' });
    expect(devices.get(serials[1]!)?.removed_from_apple_at).toBe(releasedAt);
    expect(devices.get(serials[2]!)?.removed_from_apple_at).toBeNull();
    expect(await h.token()).toMatchObject({ sync_status: 'succeeded', synced_device_count: 51, last_sync_triggered_at: h.clock.now().toISOString() });
    // A delta only: no fetch was attempted.
    expect(depCalls(h, '/server/devices').filter((r) => r.status !== 200)).toEqual([]);
  });
});

describe('ADE sync: manual sync at most once per 15 minutes', () => {
  it('refuses at 14:59 with Retry-After and a clear message, allows at 15:00, and runs the sync now', async () => {
    h = await syncHarness();
    h.sim.generateDevices(10, { serverUuid: h.serverUuid });
    await h.drain();
    const actor = systemActor(h.t.tenantId, 'req-1');
    h.clock.advance(HOUR);
    await h.sync.scheduler.requestManualSync(actor, h.tokenId);
    const first = h.clock.now().toISOString();
    expect(await h.token()).toMatchObject({ last_manual_sync_at: first, last_sync_triggered_at: first });
    await h.drain();
    expect((await h.token()).last_successful_sync_at).toBe(first);

    h.clock.advance(15 * MINUTE - 1000);
    const refused = await h.sync.scheduler.requestManualSync(actor, h.tokenId).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(GraphError);
    expect(refused).toMatchObject({ statusCode: 429, code: 'TooManyRequests', options: { retryAfterSeconds: 1 } });
    expect((refused as Error).message).toMatch(/at most once every 15 minutes.*Try again in 1 second/);
    expect((await h.token()).last_manual_sync_at).toBe(first);

    h.clock.advance(1000);
    await h.sync.scheduler.requestManualSync(actor, h.tokenId);
    expect((await h.token()).last_manual_sync_at).toBe(h.clock.now().toISOString());
    // The job runs now and keeps its 12-hour period.
    expect(await syncJob(h)).toMatchObject({ run_at: h.clock.now().toISOString(), interval_ms: 12 * HOUR });
  });

  it('of two requests at once, exactly one is allowed', async () => {
    h = await syncHarness();
    await h.drain();
    h.clock.advance(HOUR);
    const results = await Promise.allSettled([1, 2, 3].map((n) => h!.sync.scheduler.requestManualSync(systemActor(h!.t.tenantId, `r${n}`), h!.tokenId)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason)).toEqual([expect.objectContaining({ statusCode: 429 }), expect.objectContaining({ statusCode: 429 })]);
  });

  it('is refused while a sync runs', async () => {
    h = await syncHarness();
    h.sim.generateDevices(10, { serverUuid: h.serverUuid });
    h.sim.injectFault({ path: '/server/devices', delayMs: 400 });
    const running = h.drain();
    const deadline = Date.now() + 5000;
    while ((await h.token()).sync_status !== 'running' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const refused = await h.sync.scheduler.requestManualSync(systemActor(h.t.tenantId, 'r'), h.tokenId).catch((e: unknown) => e);
    expect(refused).toMatchObject({ statusCode: 429, options: { retryAfterSeconds: 15 * 60 } });
    expect((refused as Error).message).toMatch(/already running/);
    await running;
    h.clock.advance(1);
    await h.sync.scheduler.requestManualSync(systemActor(h.t.tenantId, 'r'), h.tokenId);
  });
});

describe('ADE sync: full syncs', () => {
  it('a failed delta makes the next sync full; within 7 days it only adds new serials, at 7 days it refreshes everything', async () => {
    h = await syncHarness();
    const serials = h.sim.generateDevices(20, { serverUuid: h.serverUuid });
    await h.drain();
    const t0 = h.clock.now().getTime();
    expect((await h.token()).last_full_sync_at).toBe(new Date(t0).toISOString());

    // The 12-hour delta fails.
    h.clock.advance(12 * HOUR);
    h.sim.injectFault({ path: '/devices/sync', status: 500, times: Infinity });
    await h.drain();
    expect(await h.token()).toMatchObject({ sync_status: 'failed', next_sync_full: 1, last_sync_error_code: 500 });
    expect((await h.token()).last_sync_error).toMatch(/HTTP 500/);
    h.sim.clearFaults();

    // Meanwhile at Apple: a new device, and a changed one; here an admin deletes a device.
    h.clock.set(t0 + 7 * DAY - 1);
    const [fresh] = h.sim.generateDevices(1, { serverUuid: h.serverUuid, prefix: 'LATE' });
    h.sim.unassignDevices([serials[0]!]);
    h.sim.assignDevicesToServer(h.serverUuid, { serials: [serials[0]!] });
    await h.t.store.db.updateTable('dep_devices').set({ deleted_at: h.clock.now().toISOString() }).where('serial_number', '=', serials[1]!).execute();
    const before = await h.devices();
    await h.drain(); // the retry, one millisecond before 7 days: restricted

    let devices = await h.devices();
    expect(devices.get(fresh!)).toBeDefined();
    // Untouched but for the fetch's own bookkeeping.
    expect({ ...devices.get(serials[0]!), fetch_id: null }).toEqual({ ...before.get(serials[0]!), fetch_id: null });
    expect(devices.get(serials[1]!)?.deleted_at).not.toBeNull();
    expect(await h.token()).toMatchObject({ sync_status: 'succeeded', next_sync_full: 0, last_full_sync_at: new Date(t0).toISOString() });

    // An admin describes the changed device; Apple's refresh keeps that.
    const changedId = devices.get(serials[0]!)!.id;
    await h.ade.ok({ method: 'PATCH', url: `${TOKENS}/${h.tokenId}/importedAppleDeviceIdentities/${changedId}`, payload: { description: 'Front desk' } });

    // Exactly 7 days after the last full sync: a manual sync is a full one.
    h.clock.set(t0 + 7 * DAY);
    await h.sync.scheduler.requestManualSync(systemActor(h.t.tenantId, 'r'), h.tokenId);
    await h.drain();
    devices = await h.devices();
    expect(devices.get(serials[0]!)?.last_op_type).toBe(before.get(serials[0]!)?.last_op_type ?? null);
    expect(devices.get(serials[0]!)?.device_assigned_date).not.toBe(before.get(serials[0]!)?.device_assigned_date);
    expect(devices.get(serials[0]!)?.description).toBe('Front desk');
    // Deleted here but still assigned at Apple: it returns.
    expect(devices.get(serials[1]!)?.deleted_at).toBeNull();
    expect(await h.token()).toMatchObject({ last_full_sync_at: new Date(t0 + 7 * DAY).toISOString(), synced_device_count: 21 });
  });
});

describe('ADE sync: cursors', () => {
  it('EXPIRED_CURSOR on a delta clears the cursor and fetches everything', async () => {
    h = await syncHarness();
    h.sim.generateDevices(30, { serverUuid: h.serverUuid });
    await h.drain();
    const old = (await h.token()).cursor;
    h.sim.expireCursors();
    const [late] = h.sim.generateDevices(1, { serverUuid: h.serverUuid, prefix: 'LATE' });
    const from = h.sim.requests.length;
    h.clock.advance(12 * HOUR);
    await h.drain();
    const calls = h.sim.requests.slice(from).filter((r) => r.path !== '/session');
    expect(calls.map((r) => `${r.path} ${r.status}`)).toEqual(['/devices/sync 400', '/server/devices 200', '/devices/sync 200']);
    const token = await h.token();
    expect(token).toMatchObject({ sync_status: 'succeeded', sync_phase: 'sync', synced_device_count: 31 });
    expect(token.cursor).not.toBe(old);
    expect((await h.devices()).get(late!)).toBeDefined();
  });

  it('INVALID_CURSOR does the same', async () => {
    h = await syncHarness();
    h.sim.generateDevices(5, { serverUuid: h.serverUuid });
    await h.drain();
    await h.t.store.db.updateTable('dep_tokens').set({ cursor: 'DEADBEEF' }).where('id', '=', h.tokenId).execute();
    const from = h.sim.requests.length;
    h.clock.advance(12 * HOUR);
    await h.drain();
    expect(
      h.sim.requests
        .slice(from)
        .filter((r) => r.path !== '/session')
        .map((r) => `${r.path} ${r.status}`),
    ).toEqual(['/devices/sync 400', '/server/devices 200', '/devices/sync 200']);
    expect(await h.token()).toMatchObject({ sync_status: 'succeeded', synced_device_count: 5 });
  });

  it('EXHAUSTED_CURSOR on a fetch carries on with sync from the same cursor', async () => {
    h = await syncHarness();
    h.sim.generateDevices(5, { serverUuid: h.serverUuid });
    await h.drain();
    // As if the fetch's last page was stored but not the switch to sync.
    await h.t.store.db.updateTable('dep_tokens').set({ sync_phase: 'fetch' }).where('id', '=', h.tokenId).execute();
    const [late] = h.sim.generateDevices(1, { serverUuid: h.serverUuid, prefix: 'LATE' });
    const from = h.sim.requests.length;
    h.clock.advance(12 * HOUR);
    await h.drain();
    expect(
      h.sim.requests
        .slice(from)
        .filter((r) => r.path !== '/session')
        .map((r) => `${r.path} ${r.status}`),
    ).toEqual(['/server/devices 400', '/devices/sync 200']);
    expect(await h.token()).toMatchObject({ sync_status: 'succeeded', sync_phase: 'sync', synced_device_count: 6 });
    expect((await h.devices()).get(late!)?.last_op_type).toBe('added');
  });
});

describe('ADE sync: Apple refusals and throttling', () => {
  it('T_C_NOT_SIGNED is shown on the token and not retried in a loop; the schedule goes on', async () => {
    h = await syncHarness();
    h.sim.generateDevices(5, { serverUuid: h.serverUuid });
    await h.drain();
    h.sim.setTermsSigned(false);
    const from = h.sim.requests.length;
    h.clock.advance(12 * HOUR);
    await h.drain();
    await h.drain();
    expect(h.sim.requests.slice(from).map((r) => `${r.path} ${r.status}`)).toEqual(['/session 403']);
    const token = await h.token();
    expect(token).toMatchObject({ sync_status: 'failed', last_sync_error_code: 403, next_sync_full: 1 });
    expect(token.apple_status).toMatch(/terms and conditions.*\(T_C_NOT_SIGNED\)$/);
    // The admin sees it on the token.
    expect(await h.ade.ok({ method: 'GET', url: `${TOKENS}/${h.tokenId}` })).toMatchObject({
      status: 'termsNotSigned',
      syncStatus: 'failed',
      lastSyncErrorCode: 403,
      lastSyncErrorMessage: expect.stringMatching(/T_C_NOT_SIGNED/),
    });
    expect(await syncJob(h)).toMatchObject({ status: 'pending', run_at: new Date(h.clock.now().getTime() + 12 * HOUR).toISOString(), last_error: null });

    // Twelve hours on: one more attempt, no more.
    h.clock.advance(12 * HOUR);
    await h.drain();
    expect(h.sim.requests.slice(from).map((r) => `${r.path} ${r.status}`)).toEqual(['/session 403', '/session 403']);

    // Once the terms are accepted, a manual sync clears the status.
    h.sim.setTermsSigned(true);
    await h.sync.scheduler.requestManualSync(systemActor(h.t.tenantId, 'r'), h.tokenId);
    await h.drain();
    expect(await h.token()).toMatchObject({ sync_status: 'succeeded', apple_status: null, last_sync_error: null, last_sync_error_code: 0, next_sync_full: 0 });
    expect(await h.ade.ok({ method: 'GET', url: `${TOKENS}/${h.tokenId}` })).toMatchObject({ status: 'active', syncStatus: 'succeeded', lastSyncErrorMessage: null });
  });

  it('a rejected server token (a newer one was downloaded) is shown on the token with one attempt', async () => {
    h = await syncHarness();
    await h.drain();
    h.sim.downloadServerToken(h.serverUuid);
    const from = h.sim.requests.length;
    h.clock.advance(12 * HOUR);
    await h.drain();
    expect(h.sim.requests.slice(from).map((r) => `${r.path} ${r.status}`)).toEqual(['/session 401']);
    expect((await h.token()).apple_status).toMatch(/rejected the server token \(token_rejected\)/);
  });

  it('429 Retry-After is honoured between attempts', { timeout: 20_000 }, async () => {
    h = await syncHarness({ realTimeSim: true });
    h.sim.generateDevices(5, { serverUuid: h.serverUuid });
    h.sim.injectFault({ path: '/server/devices', status: 429, retryAfter: 1, times: 2 });
    await h.drain();
    const fetches = h.sim.requests.filter((r) => r.path === '/server/devices');
    expect(fetches.map((r) => r.status)).toEqual([429, 429, 200]);
    for (let i = 1; i < fetches.length; i++) expect(fetches[i]!.at.getTime() - fetches[i - 1]!.at.getTime()).toBeGreaterThanOrEqual(990);
    expect(await h.token()).toMatchObject({ sync_status: 'succeeded', synced_device_count: 5 });
  });

  it('retries are bounded; the job then backs off, and a Retry-After beyond a minute reschedules at that time', { timeout: 20_000 }, async () => {
    h = await syncHarness({ realTimeSim: true });
    h.sim.injectFault({ path: '/server/devices', status: 503, retryAfter: 0, times: Infinity });
    await h.drain();
    expect(h.sim.requests.filter((r) => r.path === '/server/devices').map((r) => r.status)).toEqual([503, 503, 503, 503, 503, 503]);
    expect(await h.token()).toMatchObject({ sync_status: 'failed', last_sync_error_code: 503 });
    let job = await syncJob(h);
    expect(job.last_error).toMatch(/HTTP 503/);
    expect(Date.parse(job.run_at) - h.clock.now().getTime()).toBeGreaterThanOrEqual(48_000);

    h.sim.clearFaults();
    h.sim.injectFault({ path: '/server/devices', status: 429, retryAfter: 120 });
    // The simulator checks OAuth timestamps against real time, so no clock jump: an admin asks instead.
    await h.sync.scheduler.requestManualSync(systemActor(h.t.tenantId, 'r'), h.tokenId);
    await h.drain();
    expect(h.sim.requests.filter((r) => r.path === '/server/devices').map((r) => r.status)).toEqual([503, 503, 503, 503, 503, 503, 429]);
    job = await syncJob(h);
    expect(job.run_at).toBe(new Date(h.clock.now().getTime() + 120_000).toISOString());
    expect(await h.token()).toMatchObject({ sync_status: 'failed', last_sync_error_code: 429 });
  });
});

describe('ADE sync: devices released in ABM/ASM', () => {
  it('shows them removed, keeps them 44 days 23:59 and deletes them at 45 days, leaving the enrolled record', async () => {
    h = await syncHarness();
    const serials = h.sim.generateDevices(10, { serverUuid: h.serverUuid });
    await h.drain();
    // The first device is enrolled here.
    const devicesModule = h.t.app.modules.find((m) => m.name === 'devices') as unknown as { devices: DeviceRecords };
    const managed = (await h.t.store.transaction((trx) => devicesModule.devices.upsert(trx, h!.t.tenantId, { serialNumber: serials[0]! }))).row;
    await h.t.store.db.updateTable('dep_devices').set({ managed_device_id: managed.id, enrollment_state: 'enrolled' }).where('serial_number', '=', serials[0]!).execute();

    h.clock.advance(HOUR);
    const released = h.clock.now().getTime();
    h.sim.releaseDevices([serials[0]!, serials[1]!]);
    await h.sync.scheduler.requestManualSync(systemActor(h.t.tenantId, 'r'), h.tokenId);
    await h.drain();
    let devices = await h.devices();
    expect(devices.get(serials[0]!)?.removed_from_apple_at).toBe(new Date(released).toISOString());
    expect(devices.get(serials[1]!)?.removed_from_apple_at).toBe(new Date(released).toISOString());
    expect((await h.token()).synced_device_count).toBe(8);
    // The admin sees them as "Removed from ABM/ASM".
    const shown = await h.ade.ok({ method: 'GET', url: `${TOKENS}/${h.tokenId}/importedAppleDeviceIdentities/${devices.get(serials[1]!)!.id}` });
    expect(shown).toMatchObject({ serialNumber: serials[1], deviceStatus: 'removedFromAbm', isDeleted: true, removedFromAppleDateTime: new Date(released).toISOString() });
    expect((await h.ade.ok({ method: 'GET', url: `${TOKENS}/${h.tokenId}` })).deviceStatusCounts).toMatchObject({ removedFromAbm: 2 });

    h.clock.set(released + 45 * DAY - MINUTE);
    await h.drain(); // the periodic sync and the daily cleanup both ran
    devices = await h.devices();
    expect(devices.has(serials[0]!)).toBe(true);
    expect(devices.has(serials[1]!)).toBe(true);

    h.clock.set(released + 45 * DAY);
    await h.sync.scheduler.requestManualSync(systemActor(h.t.tenantId, 'r'), h.tokenId);
    await h.drain();
    devices = await h.devices();
    expect(devices.has(serials[0]!)).toBe(false);
    expect(devices.has(serials[1]!)).toBe(false);
    expect(devices.size).toBe(8);
    const stillManaged = await h.t.store.db.selectFrom('managed_devices').select('id').where('id', '=', managed.id).executeTakeFirst();
    expect(stillManaged).toBeDefined();
    const audit = await h.t.store.db.selectFrom('audit_events').selectAll().where('activity', '=', 'Delete devices released from Apple Business Manager').execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]!.resources).toContain(serials[1]!);
  });

  it('the daily cleanup deletes them even while the token cannot sync', async () => {
    h = await syncHarness();
    const serials = h.sim.generateDevices(3, { serverUuid: h.serverUuid });
    await h.drain();
    const start = h.clock.now().getTime();
    h.sim.releaseDevices([serials[0]!]);
    h.clock.advance(12 * HOUR);
    await h.drain();
    expect((await h.devices()).get(serials[0]!)?.removed_from_apple_at).not.toBeNull();
    h.sim.setTermsSigned(false);
    // Day by day: every sync fails, the cleanup runs daily.
    for (let day = 1; day <= 46; day++) {
      h.clock.set(start + day * DAY + MINUTE);
      await h.drain();
    }
    expect((await h.token()).sync_status).toBe('failed');
    const devices = await h.devices();
    expect(devices.has(serials[0]!)).toBe(false);
    expect(devices.size).toBe(2);
  });
});

describe('ADE sync: runs cut short', () => {
  it('a run past its time limit is aborted and recorded as failed; a failed delta makes the next sync full', async () => {
    h = await syncHarness({ runTimeoutMs: 300 });
    h.sim.generateDevices(5, { serverUuid: h.serverUuid });
    await h.drain();
    h.sim.injectFault({ path: '/devices/sync', delayMs: 2000 });
    h.clock.advance(12 * HOUR);
    await h.drain();
    const token = await h.token();
    expect(token).toMatchObject({ sync_status: 'failed', next_sync_full: 1, last_sync_error: 'The sync with Apple did not finish within 1 second.' });
    expect((await syncJob(h)).last_error).toMatch(/timed out/);
  });

  it('a run that lost its lease (token deleted) writes nothing more', async () => {
    h = await syncHarness({ sim: { limits: { default: 100, maximum: 100 } } });
    h.sim.generateDevices(3000, { serverUuid: h.serverUuid });
    h.sim.injectFault({ path: '/server/devices', delayMs: 30, times: Infinity });
    const running = h.drain();
    const count = async () => (await h!.devices()).size;
    const deadline = Date.now() + 10_000;
    while ((await count()) < 300 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await h.sync.scheduler.cancel(h.t.store.db, h.t.tenantId, h.tokenId);
    await running;
    const stored = await count();
    expect(stored % 100).toBe(0);
    expect(stored).toBeLessThan(3000);
    await new Promise((r) => setTimeout(r, 200));
    expect(await count()).toBe(stored);
    // Fenced out: nothing recorded as a failure either.
    expect((await h.token()).sync_status).toBe('running');
  });

  it('a node shutting down mid-sync gives the job back; the next node resumes from the saved cursor', async () => {
    h = await syncHarness({ sim: { limits: { default: 100, maximum: 100 } } });
    const serials = h.sim.generateDevices(2000, { serverUuid: h.serverUuid });
    h.sim.injectFault({ path: '/server/devices', delayMs: 20, times: Infinity });
    void h.jobs.pollOnce();
    const deadline = Date.now() + 10_000;
    while ((await h.devices()).size < 500 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await h.jobs.stop(0);
    const saved = await h.token();
    const stored = (await h.devices()).size;
    const fetchesBefore = h.sim.requests.filter((r) => r.path === '/server/devices').length;
    expect(saved.sync_phase).toBe('fetch');
    expect(saved.cursor).toBeTruthy();

    h.sim.clearFaults();
    h.jobs.start();
    const done = Date.now() + 15_000;
    while ((await h.token()).sync_status !== 'succeeded' && Date.now() < done) await new Promise((r) => setTimeout(r, 20));
    await h.jobs.stop(0);
    const devices = await h.devices();
    expect(devices.size).toBe(2000);
    expect(new Set(devices.keys())).toEqual(new Set(serials));
    // Only the pages not stored were fetched again (at most the one in flight).
    const fetchesAfter = h.sim.requests.filter((r) => r.path === '/server/devices').length - fetchesBefore;
    expect(fetchesAfter).toBeLessThanOrEqual(20 - stored / 100 + 1);
    expect(await h.token()).toMatchObject({ sync_status: 'succeeded', synced_device_count: 2000, last_full_sync_at: h.clock.now().toISOString() });
  });
});

describe('ADE sync: tokens', () => {
  it('a device moved to another MDM server at Apple moves to that token, losing the old profile choice', async () => {
    h = await syncHarness();
    const serials = h.sim.generateDevices(4, { serverUuid: h.serverUuid });
    const other = await h.addToken('Second');
    await h.drain();
    await h.t.store.db.updateTable('dep_devices').set({ requested_profile_id: 'x_profile' }).where('serial_number', '=', serials[0]!).execute();
    h.sim.assignDevicesToServer(other.serverUuid, { serials: [serials[0]!] });
    h.clock.advance(12 * HOUR);
    await h.drain();
    const row = await h.t.store.db.selectFrom('dep_devices').selectAll().where('serial_number', '=', serials[0]!).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ token_id: other.tokenId, requested_profile_id: null, removed_from_apple_at: null });
    expect((await h.token()).synced_device_count).toBe(3);
  });

  it('a manual sync of a token out of the caller scope is 404', async () => {
    h = await syncHarness();
    const actor = systemActor(h.t.tenantId, 'r');
    const scoped = { ...actor, principal: { ...actor.principal, scopeTagIds: ['7'] } };
    await expect(h.sync.scheduler.requestManualSync(scoped, h.tokenId)).rejects.toMatchObject({ statusCode: 404 });
    await expect(h.sync.scheduler.requestManualSync(actor, 'nope')).rejects.toMatchObject({ statusCode: 404 });
  });
});

describe('ADE sync: schedule at start-up', () => {
  it('recreates a missing sync job (a restored store) and applies a changed interval without moving the next run', async () => {
    h = await syncHarness();
    await h.drain();
    await h.sync.scheduler.cancel(h.t.store.db, h.t.tenantId, h.tokenId);
    await h.sync.start();
    expect(await syncJob(h)).toMatchObject({ status: 'pending', run_at: h.clock.now().toISOString(), interval_ms: 12 * HOUR });
    await h.drain();
    const next = (await syncJob(h)).run_at;
    const daily = new AdeSyncJobs({ store: h.t.store, jobs: h.jobs, clock: h.clock, audit: h.t.app.core.audit, intervalMs: 24 * HOUR });
    await daily.ensureScheduled();
    expect(await syncJob(h)).toMatchObject({ run_at: next, interval_ms: 24 * HOUR });
    const cleanup = await h.t.store.db.selectFrom('jobs').selectAll().where('kind', '=', ADE_CLEANUP_JOB).execute();
    expect(cleanup).toHaveLength(1);
    expect(cleanup[0]).toMatchObject({ interval_ms: DAY, dedupe_key: ADE_CLEANUP_JOB_KEY });
  });
});

describe('OPENENROLL_ADE_SYNC_INTERVAL_HOURS', () => {
  it('is 12 hours by default; 15 minutes to 24 hours are accepted', async () => {
    const { loadConfig, ConfigError } = await import('../../src/config.js');
    expect(loadConfig({}).adeSyncIntervalMs).toBe(12 * HOUR);
    expect(loadConfig({ OPENENROLL_ADE_SYNC_INTERVAL_HOURS: '24' }).adeSyncIntervalMs).toBe(24 * HOUR);
    expect(loadConfig({ OPENENROLL_ADE_SYNC_INTERVAL_HOURS: '0.25' }).adeSyncIntervalMs).toBe(15 * MINUTE);
    for (const bad of ['0.2', '24.5', '0', '-1', 'twelve', '1e1']) {
      expect(() => loadConfig({ OPENENROLL_ADE_SYNC_INTERVAL_HOURS: bad })).toThrow(ConfigError);
    }
    expect(() => loadConfig({ OPENENROLL_ADE_SYNC_INTERVAL_HOURS: '25' })).toThrow(/between 15 minutes and 24 hours, got "25"/);
  });

  it('sets the period of every token sync job', async () => {
    h = await syncHarness({ env: { OPENENROLL_ADE_SYNC_INTERVAL_HOURS: '24' } });
    await h.drain();
    expect(await syncJob(h)).toMatchObject({ interval_ms: 24 * HOUR, run_at: new Date(h.clock.now().getTime() + 24 * HOUR).toISOString() });
  });
});
