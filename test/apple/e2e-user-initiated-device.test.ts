import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adeWorld, testIphone, type AdeWorld } from '../helpers/apple-device.js';

/**
 * User-initiated enrollment with the device simulator, over TLS: Safari opens the enrollment page,
 * the user signs in and answers the questions, downloads the profile and installs it. With "I own
 * this device" and "only work-related apps and data" that is a User Enrollment: the device enrolls
 * with an EnrollmentID and keeps its serial number, UDID and IMEI to itself.
 */

let w: AdeWorld;
const upn = 'isaiah.langer@contoso.com';
const password = 'Str0ng-Passw0rd!';
beforeAll(async () => {
  w = await adeWorld();
  await w.createUser(upn, password);
  const p = await w.ok(
    {
      method: 'POST',
      url: '/beta/deviceManagement/appleUserInitiatedEnrollmentProfiles',
      payload: {
        displayName: 'Let users choose',
        platform: 'iOS',
        availableEnrollmentTypeOptions: [
          { ownerType: 'company', enrollmentType: 'device' },
          { ownerType: 'personal', enrollmentType: 'device' },
          { ownerType: 'personal', enrollmentType: 'user' },
        ],
      },
    },
    201,
  );
  await w.ok({ method: 'POST', url: `/beta/deviceManagement/appleUserInitiatedEnrollmentProfiles/${p.id}/assignments`, payload: { target: { '@odata.type': '#microsoft.graph.allLicensedUsersAssignmentTarget' } } }, 201);
});
afterAll(() => w.close());

const page = () => `${w.publicUrl}/enroll/apple/${w.t.tenantId}`;

describe('user-initiated enrollment (simulators only)', () => {
  it('"my organization owns this device": a device enrollment with the user', async () => {
    const iphone = await testIphone({ trustAnchors: [w.tlsCertPem] });
    const profile = await iphone.downloadProfile(page(), { credentials: { username: upn, password }, choices: { owner: 'company' } });
    await iphone.installProfile(profile);
    expect(iphone.isUserEnrollment).toBe(false);
    await iphone.poll();
    expect(await w.managedDevice(iphone.serial)).toMatchObject({ userPrincipalName: upn, managedDeviceOwnerType: 'company', udid: iphone.udid });
    iphone.close();
  });

  it('"I own it, secure only work apps and data": a User Enrollment that never reveals the hardware identifiers', async () => {
    const iphone = await testIphone({ trustAnchors: [w.tlsCertPem] });
    const profile = await iphone.downloadProfile(page(), { credentials: { username: upn, password }, choices: { owner: 'personal', scope: 'workOnly' } });
    const r = await iphone.installProfile(profile);
    expect('enrollmentId' in r).toBe(true);
    expect(iphone.isUserEnrollment).toBe(true);
    expect(iphone.enrollmentId).not.toBe(iphone.udid);
    expect(iphone.mdmSettings).toMatchObject({ enrollmentMode: 'BYOD', managedAppleId: expect.any(String) });
    const poll = await iphone.poll();
    const info = poll.commands.find((c) => c.requestType === 'DeviceInformation');
    expect(info?.status).toBe('Acknowledged');
    expect(Object.keys(info!.result.QueryResponses as object)).not.toContain('SerialNumber');
    const devices = (await w.ok({ method: 'GET', url: `/beta/deviceManagement/managedDevices?$filter=userPrincipalName eq '${upn}'` })).value as Array<Record<string, unknown>>;
    const ue = devices.find((d) => d.managedDeviceOwnerType === 'personal');
    expect(ue).toMatchObject({ userPrincipalName: upn, serialNumber: null, udid: null, imei: null });
    // No device in the tenant carries this iPhone's serial or UDID.
    expect(await w.managedDevice(iphone.serial)).toBeUndefined();
    iphone.close();
  });
});
