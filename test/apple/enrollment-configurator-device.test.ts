import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAppleDevice, deviceOptionsFor, DeviceError, SCEP_INVALID_RESPONSE } from '../../sim/apple-device/index.js';
import { DAY } from '../../src/shared/time.js';
import { adeWorld, deviceCa, MANAGED_DEVICES, USER_PASSWORD, type AdeWorld } from '../helpers/apple-device.js';
import { basic, expectEnrollmentProfile, PASSWORD, signedMachineInfo, testDevice, type TestDevice } from './enrollment-ade-support.js';
import { configuratorHarness, type ConfiguratorHarness, type Json } from './enrollment-configurator-support.js';
import { testCa, testLeaf } from '../pki/fixtures.js';

/** The Configurator profile URL as devices use it (-D §9.4): Setup Assistant enrollment of imported serials. */

describe('Setup Assistant enrollment through the Configurator profile URL', () => {
  let h: ConfiguratorHarness;
  let userless: Json;
  let affinity: Json;
  let portal: Json;
  const url = (profileId: string, tenantId = h.tenantId) => `/enroll/apple/configurator/${tenantId}/${profileId}`;
  const post = (profileId: string, body: Buffer, headers: Record<string, string> = {}, tenantId?: string) =>
    h.t.app.server.inject({ method: 'POST', url: url(profileId, tenantId), payload: body, headers: { 'content-type': 'application/pkcs7-signature', 'user-agent': 'CloudConfiguration/1.0', ...headers } });
  const intentsOf = (serial: string) => h.t.store.db.selectFrom('enrollment_intents').selectAll().where('serial_number', '=', serial).execute();
  const device = async (serial: string) => (await h.ok({ method: 'GET', url: `${h.setting()}/importedAppleDeviceIdentities?$filter=serialNumber eq '${serial}'` })).value[0];
  async function imported(profileId: string, d?: Partial<Parameters<typeof testDevice>[0]>): Promise<TestDevice> {
    const dev = await testDevice({ imei: '356789012345678', ...d });
    const res = await h.csv(`${dev.serial},cart`, `?profileId=${profileId}`);
    expect(res.json().value[0].status).toBe('created');
    return dev;
  }

  beforeAll(async () => {
    h = await configuratorHarness();
    const tag = await h.ok({ method: 'POST', url: '/beta/deviceManagement/roleScopeTags', payload: { displayName: 'Warehouse' } }, 201);
    userless = await h.profile({ displayName: 'Scanners', roleScopeTagIds: ['0', tag.id] });
    affinity = await h.profile({ displayName: 'Assigned iPads', requiresUserAuthentication: true });
    portal = await h.profile({ displayName: 'Portal iPads', requiresUserAuthentication: true, enableAuthenticationViaCompanyPortal: true });
    await h.createUser('adele@contoso.com');
  });
  afterAll(() => h.close());

  it('serves an imported userless device its signed profile, behind an intent of source configurator', async () => {
    const d = await imported(userless.id);
    const res = await post(userless.id, signedMachineInfo(d));
    expectEnrollmentProfile(res);
    const [intent] = await intentsOf(d.serial);
    expect(intent).toMatchObject({
      source: 'configurator',
      enrollment_type: 'device',
      platform: 'iOS',
      udid: d.udid,
      imei: '356789012345678',
      os_version: '17.0',
      product: 'iPhone15,2',
      profile_id: userless.id,
      profile_name: 'Scanners',
      user_id: null,
      ownership: 'company',
      device_enrollment_type: 'appleBulkWithoutUser',
      reusable: 0,
      user_affinity: 'userless',
    });
    expect(JSON.parse(intent!.scope_tag_ids as string)).toEqual(userless.roleScopeTagIds);
    expect(JSON.parse(intent!.gate_request!)).toMatchObject({ method: 'appleConfigurator', userDriven: false, platform: 'ios', device: { serialNumber: d.serial } });
    expect(JSON.parse(intent!.gate_decision!)).toMatchObject({ allowed: true, ownership: 'company' });
    expect(await device(d.serial)).toMatchObject({ platform: 'ios', lastContactedDateTime: h.clock.now().toISOString(), enrollmentState: 'notContacted' });
  });

  it('refuses a serial that is not imported, and files the refusal', async () => {
    const d = await testDevice();
    const res = await post(userless.id, signedMachineInfo(d));
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('deviceNotRegistered');
    expect(res.json().error.message).toMatch(/not an Apple Configurator device/);
    const attempt = await h.t.store.db.selectFrom('enrollment_attempts').selectAll().where('reason', '=', 'deviceNotRegistered').executeTakeFirst();
    expect(attempt).toMatchObject({ outcome: 'failed', method: 'appleConfigurator', os_platform: 'iOS' });
    expect(res.json().error.details[0].message).toBe(attempt!.activity_id);
    expect(await intentsOf(d.serial)).toEqual([]);
  });

  it('with user affinity, Setup Assistant asks for the directory account (HTTP Basic) and the intent carries the user', async () => {
    const d = await imported(affinity.id);
    const mi = signedMachineInfo(d);
    const first = await post(affinity.id, mi);
    expect(first.statusCode).toBe(401);
    expect(first.headers['www-authenticate']).toBe('Basic realm="Assigned iPads", charset="UTF-8"');
    expect((await post(affinity.id, mi, { authorization: basic('adele@contoso.com', 'wrong') })).statusCode).toBe(401);
    const ok = await post(affinity.id, mi, { authorization: basic('ADELE@contoso.com', PASSWORD) });
    expectEnrollmentProfile(ok);
    const [intent] = await intentsOf(d.serial);
    const user = await h.t.store.db.selectFrom('users').select('id').where('upn_lower', '=', 'adele@contoso.com').executeTakeFirstOrThrow();
    expect(intent).toMatchObject({ user_id: user.id, device_enrollment_type: 'appleBulkWithUser', user_affinity: 'user', authentication_method: 'setupAssistantLegacy' });
    expect(JSON.parse(intent!.gate_request!)).toMatchObject({ userDriven: true, userId: user.id });
  });

  it('with Company Portal authentication, no prompt: the user signs in later', async () => {
    const d = await imported(portal.id);
    const res = await post(portal.id, signedMachineInfo(d));
    expectEnrollmentProfile(res);
    expect((await intentsOf(d.serial))[0]).toMatchObject({ user_id: null, device_enrollment_type: 'appleBulkWithUser', user_affinity: 'pendingCompanyPortal' });
  });

  it("the serial's assigned profile wins over the URL the device was prepared with", async () => {
    const d = await imported(affinity.id);
    // Prepared with the userless profile's URL, but assigned the affinity one: the user must sign in.
    expect((await post(userless.id, signedMachineInfo(d))).statusCode).toBe(401);
  });

  it('a device enrollment manager is refused by the gate (check 50), and the serial shows blocked', async () => {
    await h.createUser('dem@contoso.com');
    await h.ok({ method: 'POST', url: '/beta/deviceManagement/deviceEnrollmentManagers', payload: { userPrincipalName: 'dem@contoso.com' } }, 201);
    const d = await imported(affinity.id);
    const res = await post(affinity.id, signedMachineInfo(d), { authorization: basic('dem@contoso.com', PASSWORD) });
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('demNotAllowedForMethod');
    expect(await device(d.serial)).toMatchObject({ enrollmentState: 'blocked' });
    expect(await intentsOf(d.serial)).toEqual([]);
  });

  it('refuses MachineInfo it cannot trust or read, and URLs that are not a profile of the tenant', async () => {
    const d = await imported(userless.id);
    const otherCa = await testCa('Not Apple');
    const forged: TestDevice = { ...d, identity: await testLeaf(otherCa, { CN: d.udid }) };
    expect((await post(userless.id, signedMachineInfo(forged))).statusCode).toBe(403);
    expect((await post(userless.id, Buffer.from('not cms'))).statusCode).toBe(400);
    expect((await h.t.app.server.inject({ method: 'POST', url: url(userless.id), payload: { a: 1 } })).statusCode).toBe(415);
    expect((await post('no-such-profile', signedMachineInfo(d))).statusCode).toBe(404);
    const other = await h.t.createTenant('Other');
    expect((await post(userless.id, signedMachineInfo(d), {}, other.tenantId)).statusCode).toBe(404);
    expect(await intentsOf(d.serial)).toEqual([]);
  });
});

describe('Apple Configurator journeys (simulators only)', () => {
  let w: AdeWorld | undefined;
  afterEach(async () => {
    await w?.close();
    w = undefined;
  });

  const setting = (world: AdeWorld) => `/beta/deviceManagement/depOnboardingSettings/${world.t.tenantId}`;

  it('a prepared iPad enrolls from Setup Assistant; a Mac installs a direct-enrollment file; an old file fails at SCEP', async () => {
    w = await adeWorld();
    const world = w;
    const upn = 'lynne@contoso.com';
    const userId = await world.createUser(upn);
    const profile = await world.ok({ method: 'POST', url: `${setting(world)}/enrollmentProfiles`, payload: { displayName: 'Classroom iPads', requiresUserAuthentication: true } }, 201);
    const serial = 'DMPXC0NF1GCQ';
    const csv = await world.t.request({ method: 'POST', url: `${setting(world)}/importedAppleDeviceIdentities/importCsv?profileId=${profile.id}`, payload: `${serial},Room 12`, headers: { 'content-type': 'text/csv' } });
    expect(csv.statusCode).toBe(200);

    const opts = async (s: string, model: string, family: string) => deviceOptionsFor({ serial_number: s, model, device_family: family }, { deviceCa: await deviceCa(), trustAnchors: [world.tlsCertPem] });
    const ipad = createAppleDevice(await opts(serial, 'iPad Air (5th generation)', 'iPad'));
    try {
      const enrolled = await ipad.enrollWithConfigurator(profile.configurationEndpointUrl, { credentials: { username: upn, password: USER_PASSWORD } });
      expect(enrolled.mdm.topic).toBe(world.topic);
      const md = (await world.ok({ method: 'GET', url: `${MANAGED_DEVICES}?$filter=serialNumber eq '${serial}'` })).value[0];
      expect(md).toMatchObject({ serialNumber: serial, userId, userPrincipalName: upn, managedDeviceOwnerType: 'company', deviceEnrollmentType: 'appleBulkWithUser', enrollmentProfileName: 'Classroom iPads' });
      const row = (await world.ok({ method: 'GET', url: `${setting(world)}/importedAppleDeviceIdentities?$filter=serialNumber eq '${serial}'` })).value[0];
      expect(row).toMatchObject({ enrollmentState: 'enrolled', platform: 'ios' });
    } finally {
      ipad.close();
    }

    // Direct enrollment: no serial needed, no user, a file good for 14 days.
    const kiosk = await world.ok({ method: 'POST', url: `${setting(world)}/enrollmentProfiles`, payload: { displayName: 'Lab Macs' } }, 201);
    const file = Buffer.from((await world.ok({ method: 'GET', url: `${setting(world)}/enrollmentProfiles/${kiosk.id}/exportMobileConfig(platform='macOS')` })).value, 'base64');
    const mac = createAppleDevice(await opts('C02XK0N8Q05D', 'MacBook Air (M2, 2022)', 'Mac'));
    const late = createAppleDevice(await opts('C02XK0N8Q05E', 'MacBook Air (M2, 2022)', 'Mac'));
    try {
      await mac.installProfile(file);
      const md = (await world.ok({ method: 'GET', url: `${MANAGED_DEVICES}?$filter=serialNumber eq 'C02XK0N8Q05D'` })).value[0];
      expect(md).toMatchObject({ managedDeviceOwnerType: 'company', deviceEnrollmentType: 'appleBulkWithoutUser', enrollmentProfileName: 'Lab Macs', operatingSystem: 'macOS' });
      expect(md.userId ?? null).toBeNull();
      world.clock.advance(14 * DAY);
      const err = await late.installProfile(file).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DeviceError);
      expect((err as DeviceError).message.startsWith(SCEP_INVALID_RESPONSE)).toBe(true);
    } finally {
      mac.close();
      late.close();
    }
  });
});
