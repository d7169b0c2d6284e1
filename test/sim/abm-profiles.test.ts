import fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/shared/time.js';
import { startAbmSimulator, type AbmSimulator } from '../../sim/apple-dep/index.js';
import { connectServer, Dep, tokenRecipient } from './abm-helpers.js';

const FIXTURES = new URL('../fixtures/public/apple/', import.meta.url).pathname.replace(/\/$/, '');
const base = { profile_name: 'Corporate iPhones', url: 'https://mdm.example.com/mdm/enroll', is_mdm_removable: true };

describe('ABM simulator: profiles', () => {
  let clock: ManualClock;
  let sim: AbmSimulator;
  let dep: Dep;
  let serverUuid: string;
  let serials: string[];

  beforeEach(async () => {
    clock = new ManualClock('2026-03-01T10:00:00Z');
    sim = await startAbmSimulator({ clock });
    const s = connectServer(sim, 'OpenEnroll');
    serverUuid = s.serverUuid;
    dep = new Dep(sim, s.creds, { now: () => clock.now(), version: '10' });
    serials = sim.generateDevices(3, { serverUuid });
  });
  afterEach(() => sim.close());

  it('defines a profile, assigns it at define time, and GET /profile returns it with Apple defaults', async () => {
    const define = await dep.call('POST', '/profile', {
      ...base,
      is_supervised: true,
      is_mdm_removable: false,
      await_device_configured: true,
      department: 'IT',
      support_phone_number: '+1 408 555 1010',
      support_email_address: 'help@example.com',
      org_magic: '0729093D-D02C-4D8B-89DC-4EF900AED5B2',
      language: 'en',
      region: 'US',
      skip_setup_items: ['AppleID', 'Android', 'Siri'],
      anchor_certs: [tokenRecipient().certPem.replace(/-----[^-]+-----|\s/g, '')],
      devices: [serials[0], 'NOTMINE'],
    });
    expect(define.status).toBe(200);
    expect(define.json.profile_uuid).toMatch(/^[0-9A-F]{32}$/);
    expect(define.json.devices).toEqual({ [serials[0]!]: 'SUCCESS', NOTMINE: 'NOT_ACCESSIBLE' });
    const uuid = define.json.profile_uuid as string;

    const get = await dep.call('GET', `/profile?profile_uuid=${uuid}`);
    expect(get.status).toBe(200);
    expect(get.json).toMatchObject({ profile_uuid: uuid, profile_name: 'Corporate iPhones', is_mdm_removable: false, allow_pairing: true, is_mandatory: false, skip_setup_items: ['AppleID', 'Android', 'Siri'] });
    expect(get.json).not.toHaveProperty('devices');
    expect(sim.profile(uuid)).toEqual(get.json);
    expect(sim.device(serials[0]!)).toMatchObject({ profile_uuid: uuid, profile_status: 'assigned', profile_assign_time: '2026-03-01T10:00:00Z' });
  });

  it('accepts the define-profile fixture once its placeholders are real values', async () => {
    const fixture = JSON.parse(fs.readFileSync(`${FIXTURES}/dep-define-profile-request.example.json`, 'utf8'));
    const r = await dep.call('POST', '/profile', {
      ...fixture,
      configuration_web_url: 'https://sso.example.com/?redirect=enroll',
      department: 'IT',
      language: 'en',
      org_magic: 'magic',
      region: 'US',
      support_phone_number: '+1 408 555 1010',
      support_email_address: 'support@example.com',
      profile_name: 'Fixture',
    });
    expect([r.status, r.text]).toEqual([200, expect.any(String)]);
    expect(r.json.devices).toEqual({ SERIAL1: 'NOT_ACCESSIBLE', SERIAL2: 'NOT_ACCESSIBLE' });
    const get = JSON.parse(fs.readFileSync(`${FIXTURES}/dep-get-profile-response.json`, 'utf8'));
    const { profile_uuid: _u, ...rest } = get;
    expect((await dep.call('POST', '/profile', { ...rest, department: 'IT', support_phone_number: '+1', support_email_address: 'a@b.c' })).status).toBe(200);
  });

  it.each([
    ['no profile_name', { url: base.url }, 'CONFIG_NAME_REQUIRED'],
    ['empty profile_name', { ...base, profile_name: '' }, 'CONFIG_NAME_INVALID'],
    ['profile_name of 126 characters', { ...base, profile_name: 'x'.repeat(126) }, 'CONFIG_NAME_INVALID'],
    ['no url', { profile_name: 'p' }, 'CONFIG_URL_REQUIRED'],
    ['empty url', { ...base, url: '' }, 'CONFIG_URL_INVALID'],
    ['url without a scheme', { ...base, url: 'mdm.example.com/enroll' }, 'CONFIG_URL_INVALID'],
    ['url over 2000 characters', { ...base, url: `https://x.example/${'a'.repeat(2000)}` }, 'CONFIG_URL_INVALID'],
    ['a bad configuration_web_url', { ...base, configuration_web_url: 'nope' }, 'CONFIG_URL_INVALID'],
    ['non-removable without is_supervised', { ...base, is_mdm_removable: false }, 'FLAGS_INVALID'],
    ['non-removable and unsupervised', { ...base, is_mdm_removable: false, is_supervised: false }, 'FLAGS_INVALID'],
    ['empty department', { ...base, department: '' }, 'DEPARTMENT_INVALID'],
    ['department of 126 characters', { ...base, department: 'd'.repeat(126) }, 'DEPARTMENT_INVALID'],
    ['org_magic of 257 characters', { ...base, org_magic: 'm'.repeat(257) }, 'MAGIC_INVALID'],
    ['a malformed support email', { ...base, support_email_address: 'not-an-email' }, 'SUPPORT_EMAIL_INVALID'],
    ['support phone of 51 characters', { ...base, support_phone_number: '1'.repeat(51) }, 'SUPPORT_PHONE_INVALID'],
    ['a 7-letter language', { ...base, language: 'english' }, 'LOCALE_INVALID'],
    ['a lower-case region', { ...base, region: 'usa' }, 'LOCALE_INVALID'],
    ['an unknown skip_setup_items key', { ...base, skip_setup_items: ['AppleID', 'NotAPane'] }, 'MALFORMED_REQUEST_BODY'],
    ['a string is_supervised', { ...base, is_supervised: 'yes' }, 'MALFORMED_REQUEST_BODY'],
    ['the misspelt key is_mdm_removeable', { ...base, is_mdm_removeable: true }, 'MALFORMED_REQUEST_BODY'],
    ['anchor_certs that are not certificates', { ...base, anchor_certs: ['bm90IGEgY2VydA=='] }, 'MALFORMED_REQUEST_BODY'],
    ['devices as a string', { ...base, devices: 'C1' }, 'MALFORMED_REQUEST_BODY'],
    ['broken JSON', '{"profile_name": ', 'MALFORMED_REQUEST_BODY'],
  ])('refuses %s with 400 %s', async (_label, body, code) => {
    const r = await dep.call('POST', '/profile', body);
    expect([r.status, r.text]).toEqual([400, code]);
  });

  it('keeps the boundaries: 125-character name, 2000-character URL, supervised non-removable', async () => {
    const longUrl = `https://x.example/${'a'.repeat(2000 - 'https://x.example/'.length)}`;
    for (const body of [{ ...base, profile_name: 'x'.repeat(125) }, { ...base, url: longUrl }, { ...base, is_mdm_removable: false, is_supervised: true }, { ...base, department: 'd'.repeat(125) }]) {
      expect((await dep.call('POST', '/profile', body)).status).toBe(200);
    }
  });

  it('answers GET /profile with PROFILE_UUID_REQUIRED and 404 PROFILE_NOT_FOUND, also for another server’s profile', async () => {
    expect(await dep.call('GET', '/profile')).toMatchObject({ status: 400, text: 'PROFILE_UUID_REQUIRED' });
    expect(await dep.call('GET', '/profile?profile_uuid=0000')).toMatchObject({ status: 404, text: 'PROFILE_NOT_FOUND' });
    const other = connectServer(sim, 'Other');
    const otherDep = new Dep(sim, other.creds, { now: () => clock.now() });
    const theirs = (await otherDep.call('POST', '/profile', base)).json.profile_uuid as string;
    expect(await dep.call('GET', `/profile?profile_uuid=${theirs}`)).toMatchObject({ status: 404, text: 'PROFILE_NOT_FOUND' });
    expect(await dep.call('POST', '/profile/devices', { profile_uuid: theirs, devices: [serials[0]] })).toMatchObject({ status: 404, text: 'PROFILE_NOT_FOUND' });
  });

  it('assigns with POST and PUT, reports per-device results, and errors without ids', async () => {
    const uuid = (await dep.call('POST', '/profile', base)).json.profile_uuid as string;
    const other = connectServer(sim, 'Other');
    const [theirs] = sim.generateDevices(1, { serverUuid: other.serverUuid, prefix: 'THEIRS' });
    const post = await dep.call('POST', '/profile/devices', { profile_uuid: uuid, devices: [serials[0], theirs] });
    expect(post.json).toEqual({ profile_uuid: uuid, devices: { [serials[0]!]: 'SUCCESS', [theirs!]: 'NOT_ACCESSIBLE' } });
    const put = await dep.call('PUT', '/profile/devices', { profile_uuid: uuid, devices: [serials[1]] });
    expect(put.json.devices).toEqual({ [serials[1]!]: 'SUCCESS' });
    expect(await dep.call('POST', '/profile/devices', { profile_uuid: uuid, devices: [] })).toMatchObject({ status: 400, text: 'DEVICE_ID_REQUIRED' });
    expect(await dep.call('POST', '/profile/devices', { profile_uuid: uuid })).toMatchObject({ status: 400, text: 'DEVICE_ID_REQUIRED' });
    expect(await dep.call('POST', '/profile/devices', { devices: [serials[0]] })).toMatchObject({ status: 400, text: 'PROFILE_UUID_REQUIRED' });
    expect(await dep.call('POST', '/profile/devices', { profile_uuid: 'F00', devices: [serials[0]] })).toMatchObject({ status: 404, text: 'PROFILE_NOT_FOUND' });
    expect(await dep.call('POST', '/profile/devices', { profile_uuid: uuid, devices: [serials[0]], extra: 1 })).toMatchObject({ status: 400, text: 'MALFORMED_REQUEST_BODY' });
  });

  it('reports FAILED and THROTTLED (with retry_after_seconds from protocol 10) when told to', async () => {
    const uuid = (await dep.call('POST', '/profile', base)).json.profile_uuid as string;
    sim.setAssignmentOutcome([serials[0]!], 'THROTTLED', 120);
    sim.setAssignmentOutcome([serials[1]!], 'FAILED');
    const r = await dep.call('POST', '/profile/devices', { profile_uuid: uuid, devices: serials });
    expect(r.json).toEqual({ profile_uuid: uuid, devices: { [serials[0]!]: 'THROTTLED', [serials[1]!]: 'FAILED', [serials[2]!]: 'SUCCESS' }, retry_after_seconds: 120 });
    const v7 = new Dep(sim, dep.creds, { now: () => clock.now(), version: '7' });
    const old = await v7.call('POST', '/profile/devices', { profile_uuid: uuid, devices: [serials[0]] });
    expect(old.json).toEqual({ profile_uuid: uuid, devices: { [serials[0]!]: 'FAILED' } });
    sim.setAssignmentOutcome([serials[0]!], null);
    expect((await dep.call('POST', '/profile/devices', { profile_uuid: uuid, devices: [serials[0]] })).json.devices[serials[0]!]).toBe('SUCCESS');
  });

  it('removes profiles with DELETE /profile/devices, producing modified ops', async () => {
    const { cursor } = await dep.fetchAll();
    const uuid = (await dep.call('POST', '/profile', { ...base, devices: [serials[0], serials[1]] })).json.profile_uuid as string;
    sim.pushProfile(serials[1]!);
    expect(sim.device(serials[1]!)).toMatchObject({ profile_status: 'pushed', profile_push_time: '2026-03-01T10:00:00Z' });
    const del = await dep.call('DELETE', '/profile/devices', { devices: [serials[0], serials[1], serials[2], 'NOTMINE'] });
    expect(del.json.devices).toEqual({ [serials[0]!]: 'SUCCESS', [serials[1]!]: 'SUCCESS', [serials[2]!]: 'SUCCESS', NOTMINE: 'NOT_ACCESSIBLE' });
    expect(sim.device(serials[0]!)).toMatchObject({ profile_status: 'removed' });
    expect(sim.device(serials[0]!)).not.toHaveProperty('profile_uuid');
    const { ops } = await dep.syncAll(cursor);
    expect(ops).toEqual([
      { serial: serials[0], op: 'modified', profile_uuid: uuid },
      { serial: serials[1], op: 'modified', profile_uuid: uuid },
      { serial: serials[1], op: 'modified', profile_uuid: uuid },
      { serial: serials[0], op: 'modified' },
      { serial: serials[1], op: 'modified' },
    ]);
    expect(await dep.call('DELETE', '/profile/devices', { devices: [] })).toMatchObject({ status: 400, text: 'DEVICE_ID_REQUIRED' });
    // Naming a profile the device doesn't have.
    await dep.call('POST', '/profile/devices', { profile_uuid: uuid, devices: [serials[2]] });
    expect((await dep.call('DELETE', '/profile/devices', { profile_uuid: 'OTHER', devices: [serials[2]] })).json.devices).toEqual({ [serials[2]!]: 'FAILED' });
  });

  it('drops a device’s profile when it moves to another server', async () => {
    const uuid = (await dep.call('POST', '/profile', { ...base, devices: [serials[0]] })).json.profile_uuid as string;
    expect(sim.device(serials[0]!)!.profile_uuid).toBe(uuid);
    const other = sim.createMdmServer('Other');
    sim.assignDevicesToServer(other.serverUuid, { serials: [serials[0]!] });
    expect(sim.device(serials[0]!)).toMatchObject({ serverUuid: other.serverUuid, profile_status: 'empty' });
    expect(sim.device(serials[0]!)).not.toHaveProperty('profile_uuid');
  });
});
