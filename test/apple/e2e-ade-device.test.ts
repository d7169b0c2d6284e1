import { afterEach, describe, expect, it } from 'vitest';
import { MINUTE } from '../../src/shared/time.js';
import { DeviceError, SCEP_INVALID_RESPONSE, type AppleDevice } from '../../sim/apple-device/index.js';
import { adeWorld, MACOS_PROFILE, MANAGED_DEVICES, USER_PASSWORD, type AdeWorld } from '../helpers/apple-device.js';

/**
 * The acceptance test of Apple enrollment, with simulators only: the ABM simulator (token, sync,
 * profile assignment), the APNs simulator, and the device simulator talking to OpenEnroll over TLS
 * through Apple's protocols. An ADE device of a synced token enrolls (MachineInfo, profile, SCEP,
 * Authenticate, TokenUpdate), shows Enrolled with the right facts, is renamed by the name template,
 * and answers an admin command that went through an APNs push, a check-in and a result.
 */

let w: AdeWorld | undefined;
afterEach(async () => {
  await w?.close();
  w = undefined;
});

const TEMPLATE = '{{DEVICETYPE}}-{{SERIAL}}';

/** Polls until the server has nothing more, as a device does after enrollment (a few sessions). */
async function settle(device: AppleDevice, rounds = 3): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < rounds; i++) {
    const r = await device.poll();
    seen.push(...r.commands.map((c) => `${c.requestType}:${c.status}`));
    if (r.commands.length === 0) break;
  }
  return seen;
}

describe('ADE device journey (simulators only)', () => {
  it('an iPhone with user affinity enrolls, shows Enrolled, is renamed, and answers a pushed command', async () => {
    w = await adeWorld();
    const serial = 'F2LXK0N8HG7F';
    await w.addDevices([{ serial, model: 'iPhone 15', device_family: 'iPhone' }]);
    const upn = 'alex.wilber@contoso.com';
    const userId = await w.createUser(upn);
    const profileId = await w.profile({ displayName: 'Corporate iPhones', requiresUserAuthentication: true, deviceNameTemplate: TEMPLATE }, { isDefault: true });
    expect((await w.adeDevice(serial)).deviceStatus).toBe('readyToEnroll');

    // Setup Assistant: the cloud configuration from Apple, MachineInfo, 401, the user's credentials.
    const iphone = await w.device(serial, process.env.DEVICE_LOG ? { logger: (l) => console.log(`[device] ${l}`) } : {});
    const enrolled = await iphone.enrollAdeFromCloud(w.abm, { credentials: { username: upn, password: USER_PASSWORD } });
    expect(enrolled.profile.verified).toBe(true);
    expect(enrolled.mdm.topic).toBe(w.topic);
    expect(enrolled.mdm.serverUrl.startsWith(`${w.publicUrl}/`)).toBe(true);
    expect(w.abm.device(serial)!.profile_status).toBe('pushed');

    const first = await settle(iphone);
    expect(first).toContain('Settings:Acknowledged');
    expect(iphone.deviceName).toBe(`iPhone-${serial}`);

    const md = await w.managedDevice(serial);
    expect(md).toMatchObject({
      serialNumber: serial,
      deviceName: `iPhone-${serial}`,
      enrollmentProfileName: 'Corporate iPhones',
      model: 'iPhone15,4',
      osVersion: '18.1',
      operatingSystem: 'iOS',
      managedDeviceOwnerType: 'company',
      userId,
      userPrincipalName: upn,
      udid: iphone.udid,
    });
    expect(md!.imei).toBe(iphone.imei);
    expect(await w.adeDevice(serial)).toMatchObject({ deviceStatus: 'enrolled' });
    expect(md).toMatchObject({ isSupervised: true, deviceEnrollmentType: 'appleBulkWithUser', manufacturer: 'Apple' });
    expect(profileId).toBeTruthy();

    // An admin command: queued, pushed through APNs, the device wakes, checks in, answers.
    iphone.listenForPushes(w.apns);
    const woke = iphone.waitForPoll({ timeoutMs: 15_000 });
    const queued = await w.ok({ method: 'POST', url: `${MANAGED_DEVICES}/${md!.id}/appleMdmCommands`, payload: { requestType: 'DeviceInformation', payload: { Queries: ['DeviceName', 'OSVersion', 'SerialNumber', 'BatteryLevel'] } } }, 201);
    await w.drain();
    const poll = await woke;
    expect(poll.commands.map((c) => [c.commandUuid, c.status])).toContainEqual([queued.commandUuid, 'Acknowledged']);
    expect(w.apns.delivered(iphone.pushTokenHex).length).toBeGreaterThan(0);
    expect(w.apns.delivered(iphone.pushTokenHex).at(-1)!.pushMagic).toBe(iphone.pushMagic);
    const done = await w.ok({ method: 'GET', url: `${MANAGED_DEVICES}/${md!.id}/appleMdmCommands/${queued.commandUuid}` });
    expect(done).toMatchObject({ requestType: 'DeviceInformation', status: 'Acknowledged' });
    expect(done.result.QueryResponses).toMatchObject({ DeviceName: `iPhone-${serial}`, OSVersion: '18.1', SerialNumber: serial, BatteryLevel: 0.87 });
  });

  it('a userless profile enrolls without sign-in and without a user; a busy device answers NotNow, then the command again', async () => {
    w = await adeWorld();
    const serial = 'DMPXK1N8Q1GC';
    await w.addDevices([{ serial, model: 'iPad Air (5th generation)', device_family: 'iPad' }]);
    await w.profile({ displayName: 'Shared iPads', requiresUserAuthentication: false, deviceNameTemplate: TEMPLATE }, { isDefault: true });
    const ipad = await w.device(serial);
    await ipad.enrollAdeFromCloud(w.abm);
    await settle(ipad);
    expect(ipad.deviceName).toBe(`iPad-${serial}`);
    const md = await w.managedDevice(serial);
    expect(md).toMatchObject({ enrollmentProfileName: 'Shared iPads', model: 'iPad13,16', operatingSystem: 'iPadOS', managedDeviceOwnerType: 'company', deviceName: `iPad-${serial}` });
    expect(md!.userPrincipalName ?? '').toBe('');
    expect(md!.userId ?? null).toBeNull();

    ipad.busyFor(1);
    const queued = await w.ok({ method: 'POST', url: `${MANAGED_DEVICES}/${md!.id}/appleMdmCommands`, payload: { requestType: 'ProfileList' } }, 201);
    const busy = await ipad.poll();
    expect(busy.commands).toEqual([expect.objectContaining({ commandUuid: queued.commandUuid, status: 'NotNow' })]);
    expect((await w.ok({ method: 'GET', url: `${MANAGED_DEVICES}/${md!.id}/appleMdmCommands/${queued.commandUuid}` })).status).toBe('NotNow');
    const later = await ipad.poll();
    expect(later.commands).toEqual([expect.objectContaining({ commandUuid: queued.commandUuid, status: 'Acknowledged' })]);
    const done = await w.ok({ method: 'GET', url: `${MANAGED_DEVICES}/${md!.id}/appleMdmCommands/${queued.commandUuid}` });
    expect(done.status).toBe('Acknowledged');
    expect(done.result.ProfileList.map((p: { PayloadIdentifier: string }) => p.PayloadIdentifier)).toContain(ipad.profiles.find((p) => p.isMdmProfile)!.identifier);
  });

  it('modern authentication: the configuration_web_url sign-in in the web view gives the profile and the user', async () => {
    w = await adeWorld();
    const serial = 'G6TXK2N8Q1GH';
    await w.addDevices([{ serial, model: 'iPhone 15', device_family: 'iPhone' }]);
    const upn = 'megan.bowen@contoso.com';
    await w.createUser(upn);
    await w.profile({ displayName: 'Modern auth', requiresUserAuthentication: true, configurationWebUrl: true, deviceNameTemplate: TEMPLATE }, { isDefault: true });
    const iphone = await w.device(serial);
    const profile = w.abm.profile(w.abm.device(serial)!.profile_uuid!)!;
    expect(profile.configuration_web_url).toMatch(/^https:\/\/localhost:\d+\/enroll\/apple\/ade\/.+\/web$/);

    // Wrong password: the page says so and the device stays at sign-in.
    const wrong = await iphone.enrollAdeFromCloud(w.abm, { credentials: { username: upn, password: 'not-it' } }).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(DeviceError);
    expect((wrong as DeviceError).code).toBe('authenticationRequired');

    await iphone.enrollAdeFromCloud(w.abm, { credentials: { username: upn, password: USER_PASSWORD } });
    await settle(iphone);
    expect(await w.managedDevice(serial)).toMatchObject({ userPrincipalName: upn, enrollmentProfileName: 'Modern auth', managedDeviceOwnerType: 'company', deviceName: `iPhone-${serial}` });
  });

  it('a Mac enrolls again through `profiles renew` (the same ADE url, no Setup Assistant) and is renamed Mac-<serial>', async () => {
    w = await adeWorld();
    const serial = 'C02ZK3N8MD6T';
    await w.addDevices([{ serial, model: 'MacBook Air (M2, 2022)', device_family: 'Mac' }]);
    await w.profile({ '@odata.type': MACOS_PROFILE, displayName: 'Corporate Macs', requiresUserAuthentication: false, deviceNameTemplate: TEMPLATE }, { isDefault: true });
    const mac = await w.device(serial);
    const cloud = w.abm.profile(w.abm.device(serial)!.profile_uuid!)!;
    const r = await mac.enrollAde(cloud.url!, { setupAssistant: false });
    expect(r.enrollmentId).toBe(mac.udid);
    expect(mac.awaitingConfiguration).toBe(false);
    await settle(mac);
    expect(mac.deviceName).toBe(`Mac-${serial}`);
    expect(await w.managedDevice(serial)).toMatchObject({ operatingSystem: 'macOS', model: 'Mac14,2', osVersion: '15.1', enrollmentProfileName: 'Corporate Macs', managedDeviceOwnerType: 'company', deviceName: `Mac-${serial}` });
    expect(await w.adeDevice(serial)).toMatchObject({ deviceStatus: 'enrolled' });
  });

  it('a SCEP challenge older than 15 minutes gives "The SCEP server returned an invalid response."', async () => {
    w = await adeWorld();
    const serial = 'F9LXK4N8HG7K';
    await w.addDevices([{ serial, model: 'iPhone 15', device_family: 'iPhone' }]);
    await w.profile({ displayName: 'Slow setup', requiresUserAuthentication: false }, { isDefault: true });
    const iphone = await w.device(serial);
    const url = w.abm.profile(w.abm.device(serial)!.profile_uuid!)!.url!;
    const profile = await iphone.fetchAdeProfile(url);
    w.clock.advance(15 * MINUTE + 1000);
    const err = await iphone.installProfile(profile, { supervised: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceError);
    expect((err as DeviceError).code).toBe('scep');
    expect((err as DeviceError).message.startsWith(SCEP_INVALID_RESPONSE)).toBe(true);
    expect((err as DeviceError).detail).toMatch(/failInfo badRequest/);
    expect(iphone.enrolled).toBe(false);
    expect(await w.managedDevice(serial)).toBeUndefined();
    // A fresh profile (a new challenge) works.
    await iphone.enrollAde(url);
    expect(iphone.enrolled).toBe(true);
  });
});
