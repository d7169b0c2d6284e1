import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DAY, ManualClock, MINUTE } from '../../src/shared/time.js';
import { startAbmSimulator, type AbmSimulator } from '../../sim/apple-dep/index.js';
import { connectServer, Dep } from './abm-helpers.js';

describe('ABM simulator: devices, fetch and sync', () => {
  let clock: ManualClock;
  let sim: AbmSimulator;
  let dep: Dep;
  let serverUuid: string;

  beforeEach(async () => {
    clock = new ManualClock('2026-03-01T10:00:00Z');
    sim = await startAbmSimulator({ clock, limits: { default: 5, maximum: 20 }, orgName: 'Contoso', orgType: 'edu' });
    const s = connectServer(sim, 'OpenEnroll');
    serverUuid = s.serverUuid;
    dep = new Dep(sim, s.creds, { now: () => clock.now(), relogin: true });
  });
  afterEach(() => sim.close());

  it('advertises the page limits and the organisation in /account', async () => {
    const r = await dep.call('GET', '/account');
    expect(r.json).toMatchObject({ server_name: 'OpenEnroll', server_uuid: serverUuid, org_name: 'Contoso', org_type: 'edu', org_version: 'v2' });
    for (const k of ['org_email', 'org_phone', 'org_address', 'org_id', 'admin_id']) expect(typeof r.json[k], k).toBe('string');
    const urls = Object.fromEntries(r.json.urls.map((u: { uri: string }) => [u.uri, u]));
    expect(urls['/server/devices'].limit).toEqual({ default: 5, maximum: 20 });
    expect(urls['/devices/sync'].limit).toEqual({ default: 5, maximum: 20 });
    expect(urls['/profile/devices'].http_method).toEqual(['DELETE', 'POST', 'PUT']);
    expect(urls['/account'].limit).toBeUndefined();
  });

  it('pages a full fetch with the default limit, clamps to the maximum, then answers EXHAUSTED_CURSOR', async () => {
    const serials = sim.generateDevices(23, { serverUuid });
    sim.generateDevices(4, { prefix: 'POOL' }); // in the org, not assigned: never fetched

    const first = await dep.call('POST', '/server/devices', {});
    expect(first.status).toBe(200);
    expect(first.json.devices).toHaveLength(5);
    expect(first.json.more_to_follow).toBe(true);
    expect(first.json.cursor).toMatch(/^[0-9A-F]+$/);
    expect(first.json.cursor.length).toBeLessThanOrEqual(1000);
    expect(first.json.fetched_until).toBe('2026-03-01T10:00:00Z');
    expect(first.json.devices[0]).toMatchObject({ serial_number: serials[0], profile_status: 'empty', device_assigned_date: '2026-03-01T10:00:00Z' });
    expect(first.json.devices[0]).not.toHaveProperty('op_type');

    const second = await dep.call('POST', '/server/devices', { cursor: first.json.cursor, limit: 1000 });
    expect(second.json.devices).toHaveLength(18);
    expect(second.json.more_to_follow).toBe(false);
    const all = [...first.json.devices, ...second.json.devices].map((d: { serial_number: string }) => d.serial_number);
    expect(all).toEqual(serials);

    const again = await dep.call('POST', '/server/devices', { cursor: second.json.cursor });
    expect([again.status, again.text]).toEqual([400, 'EXHAUSTED_CURSOR']);
    // A page cursor may be used again (a client retrying a lost answer).
    expect((await dep.call('POST', '/server/devices', { cursor: first.json.cursor })).json.devices).toHaveLength(5);
    // A new fetch without a cursor starts over.
    expect((await dep.fetchAll(20)).serials).toEqual(serials);
  });

  it('rejects malformed fetch bodies and limits', async () => {
    for (const body of ['not json', '[]', '{"limit": 0}', '{"limit": 2.5}', '{"limit": "10"}', '{"cursor": 7}', '{"curser": "x"}', '']) {
      const r = await dep.call('POST', '/server/devices', body);
      expect([r.status, r.text], body).toEqual([400, 'MALFORMED_REQUEST_BODY']);
    }
    expect((await dep.call('POST', '/server/devices', { limit: 1 })).status).toBe(200);
    const wrongType = await dep.call('POST', '/server/devices', '{}', { 'Content-Type': 'text/plain' });
    expect([wrongType.status, wrongType.text]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
    const forged = await dep.call('POST', '/server/devices', { cursor: 'ABCDEF0123' });
    expect([forged.status, forged.text]).toEqual([400, 'INVALID_CURSOR']);
  });

  it('syncs the changes of this server since the cursor: added, modified, deleted', async () => {
    const [a, b, c] = sim.generateDevices(3, { serverUuid });
    const { cursor } = await dep.fetchAll();
    expect((await dep.syncAll(cursor)).ops).toEqual([]);

    sim.addDevices([{ serial_number: 'NEW0001', model: 'MacBook Pro' }], { orderNumber: 'PO-1' });
    expect(sim.assignDevicesToServer(serverUuid, { orderNumber: 'PO-1' })).toEqual(['NEW0001']);
    clock.advance(MINUTE);
    const define = await dep.call('POST', '/profile', { profile_name: 'Staff', url: 'https://mdm.example.com/enroll' });
    const profileUuid = define.json.profile_uuid as string;
    const assign = await dep.call('POST', '/profile/devices', { profile_uuid: profileUuid, devices: [a, 'NEW0001'] });
    expect(assign.json.devices).toEqual({ [a!]: 'SUCCESS', NEW0001: 'SUCCESS' });
    sim.unassignDevices([b!]);
    sim.releaseDevices([c!]);

    const r = await dep.call('POST', '/devices/sync', { cursor });
    expect(r.status).toBe(200);
    expect(r.json.devices).toHaveLength(5); // the default limit
    expect(r.json.more_to_follow).toBe(false);
    const { ops, cursor: next } = await dep.syncAll(cursor);
    expect(ops).toEqual([
      { serial: 'NEW0001', op: 'added' },
      { serial: a, op: 'modified', profile_uuid: profileUuid },
      { serial: 'NEW0001', op: 'modified', profile_uuid: profileUuid },
      { serial: b, op: 'deleted' },
      { serial: c, op: 'deleted' },
    ]);
    const added = r.json.devices[0];
    expect(added).toMatchObject({ op_type: 'added', op_date: '2026-03-01T10:00:00Z', model: 'MacBook Pro', device_family: 'Mac', os: 'OSX' });
    expect(r.json.devices[1]).toMatchObject({ op_type: 'modified', op_date: '2026-03-01T10:01:00Z', profile_status: 'assigned', profile_assign_time: '2026-03-01T10:01:00Z' });
    // Nothing new since: an empty page, and the same cursor keeps working.
    const quiet = await dep.call('POST', '/devices/sync', { cursor: next });
    expect(quiet.json).toMatchObject({ devices: [], more_to_follow: false });
    expect(sim.device(a!)).toMatchObject({ serverUuid, profile_uuid: profileUuid, profile_status: 'assigned' });
    expect(sim.device(b!)).toMatchObject({ serverUuid: null, profile_status: 'empty' });
    expect(sim.device(c!)).toBeUndefined();
  });

  it('pages sync results by limit', async () => {
    const { cursor } = await dep.fetchAll();
    sim.generateDevices(12, { serverUuid });
    const p1 = await dep.call('POST', '/devices/sync', { cursor, limit: 10 });
    expect(p1.json.devices).toHaveLength(10);
    expect(p1.json.more_to_follow).toBe(true);
    const p2 = await dep.call('POST', '/devices/sync', { cursor: p1.json.cursor, limit: 10 });
    expect(p2.json.devices).toHaveLength(2);
    expect(p2.json.more_to_follow).toBe(false);
  });

  it('keeps servers apart: moves between servers are deleted on one and added on the other', async () => {
    const other = connectServer(sim, 'Other MDM');
    const otherDep = new Dep(sim, other.creds, { now: () => clock.now() });
    const [x] = sim.generateDevices(1, { serverUuid });
    const mine = await dep.fetchAll();
    const theirs = await otherDep.fetchAll();
    expect(theirs.serials).toEqual([]);
    sim.assignDevicesToServer(other.serverUuid, { serials: [x!] });
    expect((await dep.syncAll(mine.cursor)).ops).toEqual([{ serial: x, op: 'deleted' }]);
    expect((await otherDep.syncAll(theirs.cursor)).ops).toEqual([{ serial: x, op: 'added' }]);
    // A cursor of another server is not ours.
    const cross = await dep.call('POST', '/devices/sync', { cursor: theirs.cursor });
    expect([cross.status, cross.text]).toEqual([400, 'INVALID_CURSOR']);
    const details = await dep.call('POST', '/devices', { devices: [x, 'NOSUCHSERIAL'] });
    expect(details.json.devices).toEqual({ [x!]: { response_status: 'NOT_ACCESSIBLE' }, NOSUCHSERIAL: { response_status: 'NOT_ACCESSIBLE' } });
    const theirDetails = await otherDep.call('POST', '/devices', { devices: [x] });
    expect(theirDetails.json.devices[x!]).toMatchObject({ serial_number: x, response_status: 'SUCCESS' });
  });

  it('answers CURSOR_REQUIRED, INVALID_CURSOR and EXPIRED_CURSOR on sync', async () => {
    sim.generateDevices(7, { serverUuid });
    const noCursor = await dep.call('POST', '/devices/sync', {});
    expect([noCursor.status, noCursor.text]).toEqual([400, 'CURSOR_REQUIRED']);
    expect((await dep.call('POST', '/devices/sync', { cursor: '' })).text).toBe('CURSOR_REQUIRED');
    expect((await dep.call('POST', '/devices/sync', { cursor: 'ZZZ' })).text).toBe('INVALID_CURSOR');
    const firstPage = await dep.call('POST', '/server/devices', {});
    const tampered = firstPage.json.cursor.slice(0, -2) + (firstPage.json.cursor.endsWith('00') ? '01' : '00');
    expect((await dep.call('POST', '/devices/sync', { cursor: tampered })).text).toBe('INVALID_CURSOR');
    // Syncing from the middle of a fetch would skip devices.
    expect((await dep.call('POST', '/devices/sync', { cursor: firstPage.json.cursor })).text).toBe('INVALID_CURSOR');

    const { cursor } = await dep.fetchAll();
    clock.advance(7 * DAY);
    expect((await dep.call('POST', '/devices/sync', { cursor })).status).toBe(200);
    clock.advance(1);
    const expired = await dep.call('POST', '/devices/sync', { cursor });
    expect([expired.status, expired.text]).toEqual([400, 'EXPIRED_CURSOR']);
    expect((await dep.call('POST', '/server/devices', { cursor: firstPage.json.cursor })).text).toBe('EXPIRED_CURSOR');

    const fresh = await dep.fetchAll();
    sim.expireCursors();
    expect((await dep.call('POST', '/devices/sync', { cursor: fresh.cursor })).text).toBe('EXPIRED_CURSOR');
    expect((await dep.fetchAll()).serials).toHaveLength(7);
  });

  it('skips devices that left during a fetch and reports them in the following sync', async () => {
    const serials = sim.generateDevices(10, { serverUuid });
    const p1 = await dep.call('POST', '/server/devices', { limit: 5 });
    sim.unassignDevices([serials[7]!]);
    sim.generateDevices(1, { serverUuid, prefix: 'LATE' });
    const p2 = await dep.call('POST', '/server/devices', { cursor: p1.json.cursor, limit: 5 });
    expect(p2.json.devices.map((d: { serial_number: string }) => d.serial_number)).toEqual([serials[5], serials[6], serials[8], serials[9]]);
    const { ops } = await dep.syncAll(p2.json.cursor);
    expect(ops.map((o) => o.op)).toEqual(['deleted', 'added']);
  });

  it('disowns devices: gone from the org, deleted in sync; others are NOT_ACCESSIBLE', async () => {
    const [a] = sim.generateDevices(1, { serverUuid });
    const [pool] = sim.generateDevices(1, { prefix: 'POOL' });
    const { cursor } = await dep.fetchAll();
    const r = await dep.call('POST', '/devices/disown', { devices: [a, pool] });
    expect(r.json.devices).toEqual({ [a!]: 'SUCCESS', [pool!]: 'NOT_ACCESSIBLE' });
    expect(sim.device(a!)).toBeUndefined();
    expect((await dep.syncAll(cursor)).ops).toEqual([{ serial: a, op: 'deleted' }]);
    expect((await dep.call('POST', '/devices/disown', { devices: [] })).text).toBe('DEVICE_ID_REQUIRED');
    expect((await dep.call('POST', '/devices', {})).text).toBe('DEVICE_ID_REQUIRED');
    expect((await dep.call('POST', '/devices', { devices: 'abc' })).text).toBe('MALFORMED_REQUEST_BODY');
  });

  it('assigns devices the ways ABM offers: serial numbers, order number, CSV file', () => {
    sim.addDevices([{ serial_number: 'C1' }, { serial_number: 'C2', model: 'iPad Pro' }], { orderNumber: 'PO-7' });
    sim.addDevices([{ serial_number: 'C3' }, { serial_number: 'C4' }]);
    expect(sim.assignDevicesToServer(serverUuid, { serials: ['C3'] })).toEqual(['C3']);
    expect(sim.assignDevicesToServer(serverUuid, { orderNumber: 'PO-7' })).toEqual(['C1', 'C2']);
    expect(sim.assignDevicesToServer(serverUuid, { csv: 'Serial Number\r\nC4\r\nC3\r\n' })).toEqual(['C4']);
    expect(sim.device('C2')).toMatchObject({ device_family: 'iPad', os: 'iPadOS', serverUuid, device_assigned_by: expect.stringContaining('@') });
    expect(() => sim.assignDevicesToServer(serverUuid, { serials: ['NOPE'] })).toThrow(/not in the organisation/);
    expect(() => sim.assignDevicesToServer(serverUuid, { orderNumber: 'PO-0' })).toThrow(/order number/);
    expect(() => sim.assignDevicesToServer('0000', { serials: ['C1'] })).toThrow(/no MDM server/);
    expect(() => sim.addDevices([{ serial_number: 'C1' }])).toThrow(/already/);
    expect(() => sim.addDevices([{ serial_number: 'bad serial' }])).toThrow(/invalid serial/);
    expect(() => sim.addDevices([{ serial_number: 'C9', device_family: 'Watch' }])).toThrow(/device_family/);
    expect(() => sim.addDevices([{ serial_number: 'C9', os: 'watchOS' }])).toThrow(/os must be/);
  });
});
