import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceError } from '../../sim/apple-device/index.js';
import { adeWorld, MANAGED_DEVICES, testIphone, TOKENS, USER_PASSWORD, type AdeWorld } from '../helpers/apple-device.js';

/**
 * The other front doors with the device simulator, over TLS: Apple Configurator (a prepared device
 * POSTs MachineInfo to the Configurator profile URL, the user signs in on the 401) and direct
 * enrollment (the exported .mobileconfig installed as a file).
 */

let w: AdeWorld;
beforeAll(async () => {
  w = await adeWorld();
});
afterAll(() => w.close());

const setting = () => `${TOKENS}/${w.t.tenantId}`;

describe('Apple Configurator and direct enrollment (simulators only)', () => {
  it('a prepared iPhone enrolls through the Configurator profile URL with its user', async () => {
    const upn = 'debra.berger@contoso.com';
    await w.createUser(upn);
    const p = await w.ok({ method: 'POST', url: `${setting()}/enrollmentProfiles`, payload: { '@odata.type': '#microsoft.graph.enrollmentProfile', displayName: 'Front desk', requiresUserAuthentication: true } }, 201);
    const serial = 'CFGXK7N8HG7P';
    const res = await w.t.request({ method: 'POST', url: `${setting()}/importedAppleDeviceIdentities/importCsv?profileId=${p.id}`, payload: `${serial},front desk`, headers: { 'content-type': 'text/csv' } });
    expect(res.statusCode, res.body).toBe(200);

    const iphone = await testIphone({ serial, trustAnchors: [w.tlsCertPem] });
    const url = `${w.publicUrl}/enroll/apple/configurator/${w.t.tenantId}/${p.id}`;
    const anonymous = await iphone.enrollWithConfigurator(url).catch((e: unknown) => e);
    expect(anonymous).toBeInstanceOf(DeviceError);
    expect((anonymous as DeviceError).code).toBe('authenticationRequired');
    await iphone.enrollWithConfigurator(url, { credentials: { username: upn, password: USER_PASSWORD } });
    for (let i = 0; i < 3 && (await iphone.poll()).commands.length > 0; i++);
    expect(await w.managedDevice(serial)).toMatchObject({ serialNumber: serial, userPrincipalName: upn, enrollmentProfileName: 'Front desk', managedDeviceOwnerType: 'company', model: 'iPhone15,2' });
    iphone.close();
  });

  it('direct enrollment: the exported profile installs as a file and enrolls a device without a user', async () => {
    const p = await w.ok({ method: 'POST', url: `${setting()}/enrollmentProfiles`, payload: { '@odata.type': '#microsoft.graph.enrollmentProfile', displayName: 'Lab devices' } }, 201);
    const exported = await w.ok({ method: 'GET', url: `${setting()}/enrollmentProfiles/${p.id}/exportMobileConfig()` });
    const iphone = await testIphone({ trustAnchors: [w.tlsCertPem] });
    const r = await iphone.installProfile(Buffer.from(exported.value as string, 'base64'));
    expect('enrollmentId' in r && r.enrollmentId).toBe(iphone.udid);
    expect(iphone.supervised).toBe(false);
    await iphone.poll();
    const md = await w.managedDevice(iphone.serial);
    expect(md).toMatchObject({ serialNumber: iphone.serial, enrollmentProfileName: 'Lab devices', userPrincipalName: null });
    // Unsupervised: the device refuses a rename, as an iPhone does.
    await w.ok({ method: 'POST', url: `${MANAGED_DEVICES}/${md!.id}/setDeviceName`, payload: { deviceName: 'Lab 1' } }, 204);
    const poll = await iphone.poll();
    expect(poll.commands.find((c) => c.requestType === 'Settings')?.result.Settings).toEqual([expect.objectContaining({ Status: 'Error' })]);
    expect(iphone.deviceName).toBe('iPhone');
    iphone.close();
  });
});
