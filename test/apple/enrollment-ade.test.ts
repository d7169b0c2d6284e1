import { afterEach, describe, expect, it } from 'vitest';
import { uploadPushCertificate } from '../helpers/apple.js';
import { DAY, MINUTE } from '../../src/shared/time.js';
import { createSignedData } from '../../src/pki/index.js';
import { testCa } from '../pki/fixtures.js';
import {
  adeEnrollHarness,
  appleStyleMachineInfo,
  basic,
  expectEnrollmentProfile,
  MACOS,
  PASSWORD,
  signedMachineInfo,
  testDevice,
  type AdeEnrollHarness,
} from './enrollment-ade-support.js';

/**
 * The ADE profile `url`: a device POSTs its CMS-signed MachineInfo and gets its signed enrollment
 * profile, through the push certificate, its ADE record, its effective profile, user affinity and
 * the enrollment gate (requirements-004-D §1.3, §2.8, §2.11, §12 checks 10, 15, 35, 50; -E §3).
 */

let h: AdeEnrollHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const CONFIGS = '/beta/deviceManagement/deviceEnrollmentConfigurations';

describe('ADE enrollment endpoint (the profile url)', () => {
  it('serves a synced device its default profile: a signed .mobileconfig with com.apple.mdm, and a userless intent', async () => {
    h = await adeEnrollHarness();
    const d = await testDevice({ imei: '35 209900 176148 1' });
    await h.addDevices([{ serial: d.serial }]);
    const profileId = await h.profile({ displayName: 'Kiosk iPhones' }, { isDefault: true });
    const topic = (await h.t.store.db.selectFrom('apple_push_certificates').select('topic').executeTakeFirstOrThrow()).topic!;

    const res = await h.post(profileId, signedMachineInfo(d));
    const profile = expectEnrollmentProfile(res, topic);
    expect(profile.PayloadContent).toBeTruthy();

    const [intent, ...more] = await h.intents();
    expect(more).toHaveLength(0);
    const device = await h.t.store.db.selectFrom('dep_devices').selectAll().where('serial_number', '=', d.serial).executeTakeFirstOrThrow();
    expect(intent).toMatchObject({
      source: 'ade',
      enrollment_type: 'device',
      platform: 'iOS',
      serial_number: d.serial,
      udid: d.udid,
      imei: '35 209900 176148 1',
      os_version: '17.0',
      product: 'iPhone15,2',
      dep_device_id: device.id,
      profile_id: profileId,
      profile_name: 'Kiosk iPhones',
      profile_revision: 1,
      user_id: null,
      ownership: 'company',
      device_enrollment_type: 'appleBulkWithoutUser',
      scope_tag_ids: '["0"]',
      reusable: 0,
      consumed_at: null,
      user_affinity: 'userless',
      authentication_method: 'none',
    });
    expect(intent!.id).toMatch(/^[0-9a-f]{32}$/);
    expect(Date.parse(intent!.expires_at as string) - h.clock.now().getTime()).toBe(DAY);
    expect(JSON.parse(intent!.gate_request as string)).toMatchObject({ method: 'appleAde', platform: 'ios', userDriven: false, device: { serialNumber: d.serial, model: 'iPhone15,2', osPlatform: 'iOS' } });
    expect(JSON.parse(intent!.gate_decision as string)).toMatchObject({ allowed: true, ownership: 'company' });
    expect(device.last_contacted_at).toBe(h.clock.now().toISOString());
    // The gate records successes later (at Authenticate); nothing failed.
    expect(await h.attempts()).toEqual([]);
  });

  it('accepts MachineInfo signed the way devices sign it (SHA-1, no signed attributes, no OS_VERSION before iOS 17)', async () => {
    h = await adeEnrollHarness();
    const d = await testDevice({ osVersion: null, version: '20H19' });
    await h.addDevices([{ serial: d.serial }]);
    const profileId = await h.profile({}, { isDefault: true });
    expectEnrollmentProfile(await h.post(profileId, appleStyleMachineInfo(d)));
    // The build's train gives the major version (20H = iOS 16).
    expect((await h.intents())[0]).toMatchObject({ os_version: '16' });
  });

  it('refuses a serial with no ADE record, and files deviceNotRegistered in the failures report', async () => {
    h = await adeEnrollHarness();
    const profileId = await h.profile({}, { isDefault: true });
    const d = await testDevice();
    const res = await h.post(profileId, signedMachineInfo(d));
    expect(res.statusCode).toBe(403);
    const err = res.json().error;
    expect(err.code).toBe('deviceNotRegistered');
    expect(err.message).toContain(d.serial);
    const [row, ...rest] = await h.attempts();
    expect(rest).toHaveLength(0);
    expect(row).toMatchObject({ outcome: 'failed', reason: 'deviceNotRegistered', method: 'appleAde', os_platform: 'iOS' });
    expect(err.details).toEqual([{ code: 'ActivityId', message: row!.activity_id }]);
    expect(await h.intents()).toEqual([]);
  });

  it('refuses a device released from Apple Business Manager as not registered', async () => {
    h = await adeEnrollHarness();
    const d = await testDevice();
    await h.addDevices([{ serial: d.serial }]);
    const profileId = await h.profile({}, { isDefault: true });
    await h.t.store.db.updateTable('dep_devices').set({ removed_from_apple_at: h.clock.now().toISOString() }).where('serial_number', '=', d.serial).execute();
    const res = await h.post(profileId, signedMachineInfo(d));
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('deviceNotRegistered');
    expect(res.json().error.message).toContain('released');
  });

  it('refuses a device without an assigned or default profile (missingProfile), and one whose profile is for another platform', async () => {
    h = await adeEnrollHarness();
    const d = await testDevice();
    await h.addDevices([{ serial: d.serial }]);
    const notDefault = await h.profile({ displayName: 'Unused' });
    const res = await h.post(notDefault, signedMachineInfo(d));
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('missingProfile');
    expect(await h.attempts()).toMatchObject([{ outcome: 'failed', reason: 'missingProfile', method: 'appleAde' }]);

    // An iPhone MachineInfo for a record the admin imported as macOS, with a macOS profile chosen.
    const mac = await h.profile({ '@odata.type': MACOS, displayName: 'Macs' });
    await h.t.store.db.updateTable('dep_devices').set({ requested_profile_id: mac }).where('serial_number', '=', d.serial).execute();
    const wrong = await h.post(mac, signedMachineInfo(d));
    expect(wrong.statusCode).toBe(403);
    expect(wrong.json().error).toMatchObject({ code: 'missingProfile' });
    expect(wrong.json().error.message).toContain('is for macOS');
    expect(await h.intents()).toEqual([]);
  });

  it('serves the effective profile when the device asks through another profile url (Apple still holds an older assignment)', async () => {
    h = await adeEnrollHarness();
    const d = await testDevice();
    await h.addDevices([{ serial: d.serial }]);
    const old = await h.profile({ displayName: 'Old' }, { isDefault: true });
    const chosen = await h.profile({ displayName: 'Chosen' });
    const deviceId = (await h.t.store.db.selectFrom('dep_devices').select('id').where('serial_number', '=', d.serial).executeTakeFirstOrThrow()).id;
    await h.ok({ method: 'PATCH', url: `/beta/deviceManagement/depOnboardingSettings/${h.tokenId}/importedAppleDeviceIdentities/${deviceId}`, payload: { requestedEnrollmentProfileId: chosen } });
    expectEnrollmentProfile(await h.post(old, signedMachineInfo(d)));
    expect((await h.intents())[0]).toMatchObject({ profile_id: chosen, profile_name: 'Chosen' });
  });

  describe('refuses what it cannot verify, writing nothing', () => {
    it('bad signatures, other CAs, tampered content, oversized and malformed bodies', async () => {
      h = await adeEnrollHarness();
      const d = await testDevice();
      await h.addDevices([{ serial: d.serial }]);
      const profileId = await h.profile({}, { isDefault: true });
      const good = signedMachineInfo(d);

      // Tampered: flip a byte inside the attached plist (the serial).
      const tampered = Buffer.from(good);
      const at = tampered.indexOf(Buffer.from(d.serial));
      tampered[at] = tampered[at] === 0x41 ? 0x42 : 0x41;
      // Another CA: a device identity Apple never issued.
      const stranger = await testDevice({ serial: d.serial, ca: await testCa('Not Apple') });

      const cases: [string, Buffer, number, string, Record<string, string>?][] = [
        ['tampered', tampered, 403, 'MachineInfoUntrusted'],
        ['another CA', signedMachineInfo(stranger), 403, 'MachineInfoUntrusted'],
        ['not CMS', Buffer.from('<plist><dict/></plist>'), 400, 'MachineInfoInvalid'],
        ['truncated', good.subarray(0, good.length - 40), 400, 'MachineInfoInvalid'],
        ['empty', Buffer.alloc(0), 400, 'BadRequest'],
        ['no SERIAL', signedMachineInfo(d, { SERIAL: undefined }), 400, 'MachineInfoInvalid'],
        ['SERIAL not a string', signedMachineInfo(d, { SERIAL: 42 }), 400, 'MachineInfoInvalid'],
        ['an Apple TV', signedMachineInfo(d, { PRODUCT: 'AppleTV11,1' }), 403, 'UnsupportedDevice'],
        ['oversized', Buffer.alloc(64 * 1024 + 1, 0x30), 413, 'RequestEntityTooLarge'],
        ['text/plain', good, 415, 'UnsupportedMediaType', { 'content-type': 'text/plain' }],
      ];
      for (const [name, body, status, code, headers] of cases) {
        const res = await h.post(profileId, body, headers);
        expect(res.statusCode, `${name}: ${res.body}`).toBe(status);
        if (code !== 'BadRequest') expect(res.json().error.code, name).toBe(code);
      }
      // A plist with an entity declaration is refused before it is parsed.
      const entity = Buffer.from('<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY x "y">]><plist><dict><key>SERIAL</key><string>&x;</string></dict></plist>');
      const withEntity = createSignedData(entity, { certificatePem: d.identity.cert.pem, privateKeyPem: d.identity.keyPem });
      const res = await h.post(profileId, withEntity);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.message).toMatch(/entity/i);

      expect(await h.intents()).toEqual([]);
      expect(await h.attempts()).toEqual([]);
      expect(await h.t.store.db.selectFrom('scep_challenges').select('id').execute()).toEqual([]);
      // And the genuine one still works.
      expectEnrollmentProfile(await h.post(profileId, good));
    });
  });

  it('refuses while the push certificate is missing or expired, with the stated reason, and files it', async () => {
    h = await adeEnrollHarness();
    const d = await testDevice();
    await h.addDevices([{ serial: d.serial }]);
    const profileId = await h.profile({}, { isDefault: true });
    await h.ok({ method: 'DELETE', url: '/beta/deviceManagement/applePushNotificationCertificate' }, 204);
    const missing = await h.post(profileId, signedMachineInfo(d));
    expect(missing.statusCode).toBe(409);
    expect(missing.json().error.code).toBe('PushCertificateRequired');
    expect(missing.json().error.message).toContain('no Apple MDM push certificate');

    await uploadPushCertificate(h.t);
    expectEnrollmentProfile(await h.post(profileId, signedMachineInfo(d)));

    h.clock.advance(366 * DAY);
    const expired = await h.post(profileId, signedMachineInfo(d));
    expect(expired.statusCode).toBe(409);
    expect(expired.json().error.code).toBe('PushCertificateExpired');
    expect((await h.attempts()).map((a) => a.reason)).toEqual(['pushCertificateNotReady', 'pushCertificateNotReady']);
    expect(await h.intents()).toHaveLength(1);
  });

  it('answers 403 invalidProfile when the default restriction blocks iOS (check 35), and devicePlatformBlocked for a blocked Mac', async () => {
    h = await adeEnrollHarness();
    const iphone = await testDevice();
    const mac = await testDevice({ product: 'MacBookPro18,3', version: '23A344', osVersion: '14.0' });
    await h.addDevices([{ serial: iphone.serial }, { serial: mac.serial, model: 'MacBook Pro (14-inch, 2021)' }]);
    const iosProfile = await h.profile({}, { isDefault: true });
    const macProfile = await h.profile({ '@odata.type': MACOS, displayName: 'Macs' }, { isDefault: true });
    const res = await h.request({
      method: 'PATCH',
      url: `${CONFIGS}/${h.t.tenantId}_DefaultPlatformRestrictions`,
      payload: { '@odata.type': '#microsoft.graph.deviceEnrollmentPlatformRestrictionsConfiguration', iosRestriction: { platformBlocked: true, personalDeviceEnrollmentBlocked: false }, macRestriction: { platformBlocked: true, personalDeviceEnrollmentBlocked: false } },
    });
    expect(res.statusCode, res.body).toBe(200);

    const blocked = await h.post(iosProfile, signedMachineInfo(iphone));
    expect(blocked.statusCode).toBe(403);
    expect(blocked.json().error.code).toBe('invalidProfile');
    const blockedMac = await h.post(macProfile, signedMachineInfo(mac));
    expect(blockedMac.statusCode).toBe(403);
    expect(blockedMac.json().error.code).toBe('devicePlatformBlocked');
    expect((await h.attempts()).map((a) => [a.reason, a.method, a.os_platform])).toEqual([
      ['invalidProfile', 'appleAde', 'iOS'],
      ['devicePlatformBlocked', 'appleAde', 'macOS'],
    ]);
    expect(await h.intents()).toEqual([]);
  });

  describe('user affinity on the url (Setup Assistant legacy: HTTP Basic)', () => {
    it('challenges, refuses a wrong password, and enrolls with the right one: the intent carries the user', async () => {
      h = await adeEnrollHarness();
      const d = await testDevice();
      await h.addDevices([{ serial: d.serial }]);
      const profileId = await h.profile({ displayName: 'Staff', requiresUserAuthentication: true }, { isDefault: true });
      const userId = await h.createUser('ada@contoso.test');

      const first = await h.post(profileId, signedMachineInfo(d));
      expect(first.statusCode).toBe(401);
      expect(first.headers['www-authenticate']).toBe('Basic realm="Staff", charset="UTF-8"');
      const wrong = await h.post(profileId, signedMachineInfo(d), { authorization: basic('ada@contoso.test', 'nope') });
      expect(wrong.statusCode).toBe(401);
      const unknown = await h.post(profileId, signedMachineInfo(d), { authorization: basic('nobody@contoso.test', PASSWORD) });
      expect(unknown.statusCode).toBe(401);
      expect(unknown.body).toBe(wrong.body);
      expect(await h.intents()).toEqual([]);

      const ok = await h.post(profileId, signedMachineInfo(d), { authorization: basic('ADA@contoso.test', PASSWORD) });
      expectEnrollmentProfile(ok);
      expect((await h.intents())[0]).toMatchObject({
        user_id: userId,
        device_enrollment_type: 'appleBulkWithUser',
        user_affinity: 'user',
        authentication_method: 'setupAssistantLegacy',
      });
      expect(JSON.parse((await h.intents())[0]!.gate_request as string)).toMatchObject({ userDriven: true, userId });
    });

    it('a modern-authentication profile asked on the url falls back to the Basic prompt; iOS 12.4 resolves to legacy (check 10)', async () => {
      h = await adeEnrollHarness();
      const modern = await testDevice();
      const old = await testDevice({ osVersion: '12.4', version: '16G77' });
      const oldNoOsVersion = await testDevice({ osVersion: null, version: '16G77' });
      await h.addDevices([{ serial: modern.serial }, { serial: old.serial }, { serial: oldNoOsVersion.serial }]);
      const profileId = await h.profile({ requiresUserAuthentication: true, configurationWebUrl: true }, { isDefault: true });
      await h.createUser('ada@contoso.test');
      for (const d of [modern, old, oldNoOsVersion]) {
        expect((await h.post(profileId, signedMachineInfo(d))).statusCode).toBe(401);
        expectEnrollmentProfile(await h.post(profileId, signedMachineInfo(d), { authorization: basic('ada@contoso.test', PASSWORD) }));
      }
      expect((await h.intents()).map((i) => i.authentication_method)).toEqual(['setupAssistantModern', 'setupAssistantLegacy', 'setupAssistantLegacy']);
    });

    it('locks a device out after 10 failed prompts for 15 minutes, then lets it try again', async () => {
      h = await adeEnrollHarness();
      const d = await testDevice();
      await h.addDevices([{ serial: d.serial }]);
      const profileId = await h.profile({ requiresUserAuthentication: true }, { isDefault: true });
      await h.createUser('ada@contoso.test');
      for (let i = 0; i < 10; i++) {
        // Different user names: the device's own counter locks.
        expect((await h.post(profileId, signedMachineInfo(d), { authorization: basic(`guess${i}@contoso.test`, 'wrong') })).statusCode).toBe(401);
      }
      const locked = await h.post(profileId, signedMachineInfo(d), { authorization: basic('ada@contoso.test', PASSWORD) });
      expect(locked.statusCode).toBe(429);
      expect(locked.headers['retry-after']).toBe(String(15 * 60));
      h.clock.advance(15 * MINUTE + 1000);
      expectEnrollmentProfile(await h.post(profileId, signedMachineInfo(d), { authorization: basic('ada@contoso.test', PASSWORD) }));
    });

    it('refuses a device enrollment manager account (check 50)', async () => {
      h = await adeEnrollHarness();
      const d = await testDevice();
      await h.addDevices([{ serial: d.serial }]);
      const profileId = await h.profile({ requiresUserAuthentication: true }, { isDefault: true });
      await h.createUser('dem@contoso.test');
      await h.ok({ method: 'POST', url: '/beta/deviceManagement/deviceEnrollmentManagers', payload: { userPrincipalName: 'dem@contoso.test' } }, 201);
      const res = await h.post(profileId, signedMachineInfo(d), { authorization: basic('dem@contoso.test', PASSWORD) });
      expect(res.statusCode).toBe(403);
      expect(res.json().error.code).toBe('demNotAllowedForMethod');
    });
  });

  it('Company Portal authentication enrolls userless now, with user affinity pending', async () => {
    h = await adeEnrollHarness();
    const d = await testDevice();
    await h.addDevices([{ serial: d.serial }]);
    const profileId = await h.profile({ requiresUserAuthentication: true, enableAuthenticationViaCompanyPortal: true }, { isDefault: true });
    expectEnrollmentProfile(await h.post(profileId, signedMachineInfo(d)));
    expect((await h.intents())[0]).toMatchObject({ user_id: null, user_affinity: 'pendingCompanyPortal', authentication_method: 'companyPortal', device_enrollment_type: 'appleBulkWithUser' });
  });

  it('enrolls a Mac through the same url (profiles renew -type enrollment after Setup Assistant)', async () => {
    h = await adeEnrollHarness();
    const mac = await testDevice({ product: 'MacBookPro18,3', version: '21G72', osVersion: null });
    await h.addDevices([{ serial: mac.serial, model: 'MacBook Pro (14-inch, 2021)' }]);
    const profileId = await h.profile({ '@odata.type': MACOS, displayName: 'Macs' }, { isDefault: true });
    const res = await h.post(profileId, signedMachineInfo(mac));
    const profile = expectEnrollmentProfile(res);
    expect(profile.PayloadType).toBe('Configuration');
    expect((await h.intents())[0]).toMatchObject({ platform: 'macOS', product: 'MacBookPro18,3', os_version: '12', profile_id: profileId });
    expect(JSON.parse((await h.intents())[0]!.gate_request as string)).toMatchObject({ platform: 'mac', device: { isVirtualMachine: false, osPlatform: 'macOS' } });
  });

  it("tenant B's url can't enroll tenant A's device", async () => {
    h = await adeEnrollHarness();
    const d = await testDevice();
    await h.addDevices([{ serial: d.serial }]);
    const profileId = await h.profile({}, { isDefault: true });
    const b = await h.t.createTenant('Fabrikam');
    await uploadPushCertificate(h.t, { key: b.adminKey });
    const res = await h.post(profileId, signedMachineInfo(d), {}, b.tenantId);
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('deviceNotRegistered');
    expect(await h.intents(b.tenantId)).toEqual([]);
    expect(await h.intents()).toEqual([]);
    expect(await h.attempts()).toEqual([]);
    expect((await h.attempts(b.tenantId)).map((a) => a.reason)).toEqual(['deviceNotRegistered']);
    // An unknown tenant is simply not found.
    const nowhere = await h.post(profileId, signedMachineInfo(d), {}, 'no-such-tenant');
    expect(nowhere.statusCode).toBe(404);
  });
});
