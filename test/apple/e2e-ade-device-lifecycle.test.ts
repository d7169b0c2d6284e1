import { afterEach, describe, expect, it } from 'vitest';
import { buildPlist, parsePlistDict } from '../../src/shared/plist.js';
import type { AppleDevice } from '../../sim/apple-device/index.js';
import { adeWorld, MACOS_PROFILE, MANAGED_DEVICES, profileSigner, signProfile, type AdeWorld } from '../helpers/apple-device.js';

/**
 * After the ADE journey: Setup Assistant held until DeviceConfigured (with AccountConfiguration on
 * a Mac), the Mac's user channel, admin commands a device installs or refuses, the Graph actions
 * that become commands or pushes, and CheckOut. Simulators only, over TLS.
 */

let w: AdeWorld | undefined;
afterEach(async () => {
  await w?.close();
  w = undefined;
});

async function pollUntilQuiet(device: AppleDevice): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await device.poll();
    seen.push(...r.commands.map((c) => `${c.requestType}:${c.status}`));
    if (r.commands.length === 0) break;
  }
  return seen;
}

describe('ADE device lifecycle (simulators only)', () => {
  it('a Mac held in Setup Assistant gets its admin account and DeviceConfigured, then a user signs in, then it checks out', async () => {
    w = await adeWorld();
    const serial = 'C02ZK5N8MD6V';
    await w.addDevices([{ serial, model: 'MacBook Air (M2, 2022)', device_family: 'Mac' }]);
    await w.profile(
      {
        '@odata.type': MACOS_PROFILE,
        displayName: 'Macs with admin',
        requiresUserAuthentication: false,
        waitForDeviceConfiguredConfirmation: true,
        adminAccountUserName: 'itadmin',
        adminAccountFullName: 'IT Admin',
        adminAccountPassword: 'Correct-Horse-1',
      },
      { isDefault: true },
    );
    expect(w.abm.profile(w.abm.device(serial)!.profile_uuid!)!.await_device_configured).toBe(true);
    const mac = await w.device(serial);
    await mac.enrollAdeFromCloud(w.abm);
    expect(mac.awaitingConfiguration).toBe(true);
    const md = (await w.managedDevice(serial))!;
    expect((await w.ok({ method: 'GET', url: `${MANAGED_DEVICES}/${md.id}/appleMdmEnrollment` })).awaitingConfiguration).toBe(true);

    const seen = await pollUntilQuiet(mac);
    expect(seen).toEqual(expect.arrayContaining(['AccountConfiguration:Acknowledged', 'DeviceConfigured:Acknowledged']));
    // Apple: DeviceConfigured ends Setup Assistant, so it comes after the account.
    expect(seen.indexOf('DeviceConfigured:Acknowledged')).toBeGreaterThan(seen.indexOf('AccountConfiguration:Acknowledged'));
    expect(mac.awaitingConfiguration).toBe(false);
    const admin = mac.configuredAccounts[0]!.AutoSetupAdminAccounts as Array<Record<string, unknown>>;
    expect(admin[0]).toMatchObject({ shortName: 'itadmin', fullName: 'IT Admin' });
    const hash = parsePlistDict(admin[0]!.passwordHash as Buffer)['SALTED-SHA512-PBKDF2'] as Record<string, unknown>;
    expect((hash.entropy as Buffer).length).toBe(128);
    const enrollment = await w.ok({ method: 'GET', url: `${MANAGED_DEVICES}/${md.id}/appleMdmEnrollment` });
    expect(enrollment).toMatchObject({ awaitingConfiguration: false, enabled: true, pushable: true, topic: w.topic });
    expect(enrollment.deviceConfiguredDateTime).toBeTruthy();

    // A user signs in: the user channel's TokenUpdate.
    await mac.loginUser({ shortName: 'alex', longName: 'Alex Wilber' });
    const withUser = await w.ok({ method: 'GET', url: `${MANAGED_DEVICES}/${md.id}/appleMdmEnrollment` });
    expect(withUser.userChannels).toEqual([expect.objectContaining({ userId: mac.userChannel!.userId, userShortName: 'alex', userLongName: 'Alex Wilber', enabled: true })]);
    expect((await mac.pollUser()).commands).toEqual([]);

    // The user removes management: CheckOut; the server stops queueing commands for it.
    await mac.removeManagementProfile();
    expect(mac.enrolled).toBe(false);
    expect((await w.ok({ method: 'GET', url: `${MANAGED_DEVICES}/${md.id}/appleMdmEnrollment` })).checkedOutDateTime).toBeTruthy();
    await w.ok({ method: 'POST', url: `${MANAGED_DEVICES}/${md.id}/appleMdmCommands`, payload: { requestType: 'ProfileList' } }, 409);
  });

  it('an iPhone awaiting configuration is released by DeviceConfigured; it installs a signed profile, refuses a malformed one, and obeys setDeviceName and syncDevice', async () => {
    w = await adeWorld();
    const serial = 'F4LXK6N8HG7M';
    await w.addDevices([{ serial, model: 'iPhone 15', device_family: 'iPhone' }]);
    await w.profile({ displayName: 'Held iPhones', requiresUserAuthentication: false, awaitDeviceConfiguredConfirmation: true }, { isDefault: true });
    const iphone = await w.device(serial);
    await iphone.enrollAdeFromCloud(w.abm);
    expect(iphone.awaitingConfiguration).toBe(true);
    expect(await pollUntilQuiet(iphone)).toContain('DeviceConfigured:Acknowledged');
    expect(iphone.awaitingConfiguration).toBe(false);
    const md = (await w.managedDevice(serial))!;
    const stopApns = iphone.listenForPushes(w.apns);

    // InstallProfile with a signed Wi-Fi profile: pushed, installed, acknowledged.
    const { signer } = await profileSigner();
    const wifi = {
      PayloadType: 'Configuration',
      PayloadVersion: 1,
      PayloadIdentifier: 'com.contoso.wifi',
      PayloadUUID: '7D0E0C3A-5B6A-4D8E-9C59-3B2B8C1F0A11',
      PayloadDisplayName: 'Contoso Wi-Fi',
      PayloadContent: [{ PayloadType: 'com.apple.wifi.managed', PayloadVersion: 1, PayloadIdentifier: 'com.contoso.wifi.corp', PayloadUUID: '7D0E0C3A-5B6A-4D8E-9C59-3B2B8C1F0A12', SSID_STR: 'Contoso' }],
    };
    let woke = iphone.waitForPoll({ timeoutMs: 15_000 });
    const install = await w.ok({ method: 'POST', url: `${MANAGED_DEVICES}/${md.id}/appleMdmCommands`, payload: { requestType: 'InstallProfile', payload: { Payload: signProfile(wifi, signer).toString('base64') } } }, 201);
    await w.drain();
    await woke;
    expect((await w.ok({ method: 'GET', url: `${MANAGED_DEVICES}/${md.id}/appleMdmCommands/${install.commandUuid}` })).status).toBe('Acknowledged');
    expect(iphone.profiles.find((p) => p.identifier === 'com.contoso.wifi')).toMatchObject({ managed: true, verified: false, displayName: 'Contoso Wi-Fi' });

    // A profile whose payload has no PayloadUUID: the device answers Error with its error chain.
    const broken = { ...wifi, PayloadIdentifier: 'com.contoso.broken', PayloadUUID: '7D0E0C3A-5B6A-4D8E-9C59-3B2B8C1F0A13', PayloadContent: [{ PayloadType: 'com.apple.wifi.managed', PayloadVersion: 1, PayloadIdentifier: 'x' }] };
    woke = iphone.waitForPoll({ timeoutMs: 15_000 });
    const refused = await w.ok({ method: 'POST', url: `${MANAGED_DEVICES}/${md.id}/appleMdmCommands`, payload: { requestType: 'InstallProfile', payload: { Payload: Buffer.from(buildPlist(broken)).toString('base64') } } }, 201);
    await w.drain();
    await woke;
    const failed = await w.ok({ method: 'GET', url: `${MANAGED_DEVICES}/${md.id}/appleMdmCommands/${refused.commandUuid}` });
    expect(failed.status).toBe('Error');
    expect(failed.errorChain).toEqual([expect.objectContaining({ errorCode: 1000, errorDomain: 'MCProfileErrorDomain', usEnglishDescription: expect.stringMatching(/PayloadUUID is missing/) })]);

    // Graph setDeviceName becomes a Settings command; the device takes the name and the record follows.
    woke = iphone.waitForPoll({ timeoutMs: 15_000 });
    await w.ok({ method: 'POST', url: `${MANAGED_DEVICES}/${md.id}/setDeviceName`, payload: { deviceName: 'Front desk' } }, 204);
    await w.drain();
    await woke;
    expect(iphone.deviceName).toBe('Front desk');
    await pollUntilQuiet(iphone);
    expect((await w.managedDevice(serial))!.deviceName).toBe('Front desk');

    // Graph syncDevice: a push, and the device checks in.
    const pushesBefore = w.apns.delivered(iphone.pushTokenHex).length;
    woke = iphone.waitForPoll({ timeoutMs: 15_000 });
    await w.ok({ method: 'POST', url: `${MANAGED_DEVICES}/${md.id}/syncDevice`, payload: {} }, 204);
    await woke;
    expect(w.apns.delivered(iphone.pushTokenHex).length).toBe(pushesBefore + 1);
    expect(iphone.pushErrors).toEqual([]);

    // A device acts only on its own push magic and topic.
    stopApns();
    let deliver: ((n: unknown) => void) | undefined;
    iphone.listenForPushes({ subscribe: (_token, listener) => void (deliver = listener) });
    const polls = () => iphone.commandLog.length;
    const before = polls();
    const noPoll = iphone.waitForPoll({ timeoutMs: 300 });
    deliver!({ pushMagic: 'not-ours', topic: w.topic });
    deliver!({ pushMagic: iphone.pushMagic, topic: 'com.apple.mgmt.External.someone-else' });
    await expect(noPoll).rejects.toThrow(/No poll finished/);
    woke = iphone.waitForPoll({ timeoutMs: 15_000 });
    await w.ok({ method: 'POST', url: `${MANAGED_DEVICES}/${md.id}/appleMdmCommands`, payload: { requestType: 'ProfileList' } }, 201);
    deliver!(JSON.stringify({ mdm: iphone.pushMagic }));
    expect((await woke).commands.map((c) => c.requestType)).toContain('ProfileList');
    expect(polls()).toBeGreaterThan(before);
  });
});
