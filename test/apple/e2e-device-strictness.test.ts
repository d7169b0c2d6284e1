import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anchorsFromPem, verifyMachineInfo, verifyMachineInfoHeader } from '../../src/apple/enrollment/machine-info.js';
import { createSignedData } from '../../src/pki/signed.js';
import { buildPlist, parsePlistDict } from '../../src/shared/plist.js';
import { runCommand, type CommandHost } from '../../sim/apple-device/commands.js';
import { DeviceError, SCEP_INVALID_RESPONSE, type AppleDevice, type InstalledProfile } from '../../sim/apple-device/index.js';
import { deviceCa, enrollmentProfileDict, profileSigner, signProfile, startFakeServer, testIphone, type FakeAnswer, type FakeServer } from '../helpers/apple-device.js';
import type { TestIdentity } from '../pki/fixtures.js';

/**
 * The device simulator is as strict as a device: it refuses what a real iPhone refuses. OpenEnroll
 * never serves these, so a tiny https server in the test plays a misbehaving MDM.
 */

const PROFILE_TYPE = { 'content-type': 'application/x-apple-aspen-config' };

let fake: FakeServer;
let signing: { ca: TestIdentity; signer: TestIdentity };
let device: AppleDevice;

beforeAll(async () => {
  fake = await startFakeServer();
  signing = await profileSigner();
  device = await testIphone({ trustAnchors: [fake.certPem, signing.ca.cert.pem] });
});
afterAll(async () => {
  device.close();
  await fake.close();
});

async function refusal(p: Promise<unknown>): Promise<DeviceError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DeviceError);
  return err as DeviceError;
}

const profile = (mutate: (d: Record<string, unknown>) => void = () => {}) => {
  const d = enrollmentProfileDict(fake.url);
  mutate(d);
  return d;
};
const mdm = (d: Record<string, unknown>) => (d.PayloadContent as Array<Record<string, unknown>>).find((p) => p.PayloadType === 'com.apple.mdm')!;
const scep = (d: Record<string, unknown>) => (d.PayloadContent as Array<Record<string, unknown>>).find((p) => p.PayloadType === 'com.apple.security.scep')!;

describe('MachineInfo', () => {
  it('is the plist of machineinfo.yaml, signed by a device identity that OpenEnroll verifies against the simulated device CA', async () => {
    const anchors = anchorsFromPem((await deviceCa()).certPem, 'device simulator CA');
    const signed = await device.signedMachineInfo();
    const { info, signer } = verifyMachineInfo(signed, anchors);
    expect(info).toMatchObject({ udid: device.udid, serialNumber: device.serial, product: 'iPhone15,2', buildVersion: '21G93', osVersion: '17.6.1', imei: device.imei, platform: 'iOS', language: 'en' });
    expect(signer.subject.text).toContain(device.udid);
    expect(parsePlistDict(device.machineInfo())).toMatchObject({ UDID: device.udid, SERIAL: device.serial, PRODUCT: 'iPhone15,2', VERSION: '21G93', OS_VERSION: '17.6.1' });
    // As the web view's header, too.
    expect(verifyMachineInfoHeader(signed.toString('base64'), anchors).info.udid).toBe(device.udid);
  });
});

describe('the ADE profile request', () => {
  it('POSTs signed MachineInfo as application/pkcs7-signature', async () => {
    fake.handle(() => ({ status: 500 }));
    await refusal(device.enrollAde(`${fake.url}/ade`));
    const req = fake.requests.at(-1)!;
    expect(req).toMatchObject({ method: 'POST', url: '/ade' });
    expect(req.headers['content-type']).toBe('application/pkcs7-signature');
    expect(verifyMachineInfo(req.body, anchorsFromPem((await deviceCa()).certPem, 'sim')).info.serialNumber).toBe(device.serial);
  });

  it('refuses a profile served with another content type', async () => {
    fake.handle(() => ({ headers: { 'content-type': 'text/html' }, body: signProfile(profile(), signing.signer) }));
    const err = await refusal(device.enrollAde(`${fake.url}/ade`));
    expect(err.code).toBe('wrongContentType');
    expect(err.message).toMatch(/text\/html.*application\/x-apple-aspen-config/);
  });

  it('refuses a profile whose signature does not verify (content changed after signing)', async () => {
    const good = signProfile(profile(), signing.signer);
    const at = good.indexOf(Buffer.from('Example MDM enrollment'));
    expect(at).toBeGreaterThan(0);
    const tampered = Buffer.from(good);
    tampered[at] = 'e'.charCodeAt(0);
    fake.handle(() => ({ headers: PROFILE_TYPE, body: tampered }));
    const err = await refusal(device.enrollAde(`${fake.url}/ade`));
    expect(err.code).toBe('badSignature');
    expect(err.message).toMatch(/signature is invalid/);
  });

  it('refuses, in strict mode, a signer it does not trust and a profile that is not signed', async () => {
    const stranger = await profileSigner();
    fake.handle(() => ({ headers: PROFILE_TYPE, body: signProfile(profile(), stranger.signer) }));
    expect((await refusal(device.enrollAde(`${fake.url}/ade`))).code).toBe('unverifiedProfile');
    fake.handle(() => ({ headers: PROFILE_TYPE, body: Buffer.from(buildPlist(profile())) }));
    expect((await refusal(device.enrollAde(`${fake.url}/ade`))).code).toBe('unsignedProfile');
  });

  it('goes on with an unverified profile when not strict, and then fails SCEP like a device', async () => {
    const lenient = await testIphone({ trustAnchors: [fake.certPem], strict: false });
    const stranger = await profileSigner();
    fake.handle((req) => (req.url === '/ade' ? { headers: PROFILE_TYPE, body: signProfile(profile(), stranger.signer) } : { status: 500 }));
    const err = await refusal(lenient.enrollAde(`${fake.url}/ade`));
    expect(err.code).toBe('scep');
    expect(err.message.startsWith(SCEP_INVALID_RESPONSE)).toBe(true);
    expect(fake.requests.at(-1)!.url).toBe('/scep?operation=GetCACert');
    expect(lenient.enrolled).toBe(false);
    lenient.close();
  });

  const malformed: Array<[string, (d: Record<string, unknown>) => void, RegExp]> = [
    ['PayloadType is not Configuration', (d) => (d.PayloadType = 'com.apple.mdm'), /PayloadType must be Configuration/],
    ['no PayloadVersion', (d) => delete d.PayloadVersion, /PayloadVersion/],
    ['PayloadContent is not an array', (d) => (d.PayloadContent = {}), /PayloadContent must be an array/],
    ['no com.apple.mdm payload', (d) => (d.PayloadContent = (d.PayloadContent as unknown[]).filter((p) => p !== mdm(d))), /com\.apple\.mdm payload/],
    ['two com.apple.mdm payloads', (d) => (d.PayloadContent as unknown[]).push({ ...mdm(d), PayloadUUID: 'B0B0B0B0-0000-0000-0000-000000000000' }), /only one com\.apple\.mdm/],
    ['ServerURL over http', (d) => (mdm(d).ServerURL = 'http://mdm.example.com/server'), /ServerURL must be https/],
    ['no ServerURL', (d) => delete mdm(d).ServerURL, /ServerURL is missing/],
    ['a Topic outside com.apple.mgmt.', (d) => (mdm(d).Topic = 'com.example.push'), /Topic must start with com\.apple\.mgmt\./],
    ['an IdentityCertificateUUID naming no payload', (d) => (mdm(d).IdentityCertificateUUID = 'NOT-THERE'), /names no payload/],
    ['an IdentityCertificateUUID naming the MDM payload itself', (d) => (mdm(d).IdentityCertificateUUID = mdm(d).PayloadUUID), /not an identity/],
    ['SignMessage that is not a boolean', (d) => (mdm(d).SignMessage = 'yes'), /SignMessage must be a boolean/],
    ['AccessRights 0', (d) => (mdm(d).AccessRights = 0), /AccessRights must be between 1 and 8191/],
    ['AccessRights 2 without 1', (d) => (mdm(d).AccessRights = 2), /needs 1/],
    ['a SCEP payload without URL', (d) => delete (scep(d).PayloadContent as Record<string, unknown>).URL, /URL is missing/],
    ['a SCEP Keysize of 512', (d) => ((scep(d).PayloadContent as Record<string, unknown>).Keysize = 512), /Keysize/],
    ['a duplicated PayloadUUID', (d) => (mdm(d).PayloadUUID = scep(d).PayloadUUID), /used twice/],
    ['BYOD without a Managed Apple ID', (d) => Object.assign(mdm(d), { EnrollmentMode: 'BYOD' }), /needs a ManagedAppleID/],
  ];
  it.each(malformed)('refuses a malformed profile: %s', async (_name, mutate, message) => {
    fake.handle(() => ({ headers: PROFILE_TYPE, body: signProfile(profile(mutate), signing.signer) }));
    const err = await refusal(device.enrollAde(`${fake.url}/ade`));
    expect(err.code).toBe('malformedProfile');
    expect(err.message).toMatch(message);
    expect(fake.requests.at(-1)!.url).toBe('/ade'); // refused before any SCEP request
  });

  it('refuses signed content that is not a property list, and a plist declaring entities', async () => {
    const sign = (text: string) => createSignedData(Buffer.from(text), { certificatePem: signing.signer.cert.pem, privateKeyPem: signing.signer.keyPem });
    fake.handle(() => ({ headers: PROFILE_TYPE, body: sign('{"PayloadType": "Configuration"}') }));
    expect((await refusal(device.enrollAde(`${fake.url}/ade`))).message).toMatch(/not an XML property list/);
    const evil = `<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY x "y">]><plist version="1.0"><dict><key>a</key><string>&x;</string></dict></plist>`;
    fake.handle(() => ({ headers: PROFILE_TYPE, body: sign(evil) }));
    const err = await refusal(device.enrollAde(`${fake.url}/ade`));
    expect(err.code).toBe('malformedProfile');
    expect(err.message).toMatch(/entities/);
  });

  it('answers a 401 Basic challenge with the credentials (Setup Assistant legacy sign-in), and refuses without', async () => {
    fake.handle((req) => {
      if (req.url !== '/ade') return { status: 500 };
      if (req.headers.authorization !== `Basic ${Buffer.from('alex@contoso.com:pa55 word').toString('base64')}`) return { status: 401, headers: { 'www-authenticate': 'Basic realm="OpenEnroll"' } };
      return { headers: PROFILE_TYPE, body: signProfile(profile(), signing.signer) };
    });
    const without = await refusal(device.enrollAde(`${fake.url}/ade`));
    expect(without).toMatchObject({ code: 'authenticationRequired', status: 401 });
    const wrong = await refusal(device.enrollAde(`${fake.url}/ade`, { credentials: { username: 'alex@contoso.com', password: 'nope' } }));
    expect(wrong.message).toMatch(/user name or password is incorrect/);
    // Right credentials: the profile is accepted and the device moves on to SCEP.
    const err = await refusal(device.enrollAde(`${fake.url}/ade`, { credentials: { username: 'alex@contoso.com', password: 'pa55 word' } }));
    expect(err.code).toBe('scep');
    const posts = fake.requests.filter((r) => r.url === '/ade').slice(-2);
    expect(posts.map((r) => r.headers.authorization === undefined)).toEqual([true, false]);
  });

  it('runs the configuration_web_url flow: deviceinfo header, sign-in form, redirect, profile from the same host', async () => {
    fake.handle((req): FakeAnswer => {
      if (req.method === 'GET' && req.url === '/web') {
        if (!req.headers['x-apple-aspen-deviceinfo']) return { status: 400 };
        return {
          headers: { 'content-type': 'text/html; charset=utf-8', 'set-cookie': 'sid=abc123; Path=/; Secure; HttpOnly' },
          body: `<html><body><form method="post" action="/web/signin"><input type="hidden" name="csrf" value="t&amp;1"><input type="email" name="username"><input type="password" name="password"><input type="submit" value="Sign in"></form></body></html>`,
        };
      }
      if (req.method === 'POST' && req.url === '/web/signin') {
        const form = new URLSearchParams(req.body.toString());
        if (req.headers.cookie !== 'sid=abc123' || form.get('csrf') !== 't&1' || form.get('username') !== 'alex@contoso.com' || form.get('password') !== 'pw') return { status: 403, body: 'no' };
        return { status: 303, headers: { location: '/web/profile' } };
      }
      if (req.url === '/web/profile') return { headers: PROFILE_TYPE, body: signProfile(profile(), signing.signer) };
      return { status: 500 };
    });
    const before = fake.requests.length;
    const err = await refusal(device.enrollAde(`${fake.url}/ade`, { configurationWebUrl: `${fake.url}/web`, credentials: { username: 'alex@contoso.com', password: 'pw' } }));
    expect(err.code).toBe('scep'); // the profile was accepted
    const flow = fake.requests.slice(before).map((r) => `${r.method} ${r.url}`);
    expect(flow.slice(0, 3)).toEqual(['GET /web', 'POST /web/signin', 'GET /web/profile']);
    const header = fake.requests[before]!.headers['x-apple-aspen-deviceinfo'] as string;
    expect(verifyMachineInfoHeader(header, anchorsFromPem((await deviceCa()).certPem, 'sim')).info.serialNumber).toBe(device.serial);
    // No credentials: the device stops at the sign-in page.
    expect((await refusal(device.enrollAde(`${fake.url}/ade`, { configurationWebUrl: `${fake.url}/web` }))).code).toBe('authenticationRequired');
  });

  it("shows Apple's softwareupdate.required error and refuses other statuses", async () => {
    fake.handle(() => ({ status: 403, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: 'com.apple.softwareupdate.required', details: { OSVersion: '18.1', BuildVersion: '22B83' } }) }));
    const err = await refusal(device.enrollAde(`${fake.url}/ade`));
    expect(err).toMatchObject({ code: 'httpStatus', status: 403 });
    expect(err.message).toMatch(/software update is required/);
    fake.handle(() => ({ status: 404 }));
    expect(await refusal(device.enrollAde(`${fake.url}/ade`))).toMatchObject({ code: 'httpStatus', status: 404 });
  });

  it("doesn't trust a TLS certificate it wasn't given, and never speaks plain http", async () => {
    const stranger = await testIphone({ trustAnchors: [] });
    expect((await refusal(stranger.enrollAde(`${fake.url}/ade`))).code).toBe('network');
    expect((await refusal(stranger.enrollAde(`http://localhost:1/ade`))).message).toMatch(/only connects to https/);
    stranger.close();
  });
});

describe('installing a profile', () => {
  it('refuses the same things through installProfile (Configurator, direct and user-initiated enrollment)', async () => {
    const tampered = signProfile(profile((d) => (mdm(d).Topic = 'nope')), signing.signer);
    expect((await refusal(device.installProfile(tampered))).code).toBe('malformedProfile');
    expect((await refusal(device.installProfile(Buffer.from('not a profile')))).code).toBe('unsignedProfile');
  });

  it('installs a signed profile without MDM payload and lists it', async () => {
    const wifi = {
      PayloadType: 'Configuration',
      PayloadVersion: 1,
      PayloadIdentifier: 'com.example.wifi',
      PayloadUUID: '11111111-2222-3333-4444-555555555555',
      PayloadDisplayName: 'Wi-Fi',
      PayloadContent: [{ PayloadType: 'com.apple.wifi.managed', PayloadVersion: 1, PayloadIdentifier: 'com.example.wifi.p', PayloadUUID: '11111111-2222-3333-4444-666666666666', SSID_STR: 'Corp' }],
    };
    const installed = await device.installProfile(signProfile(wifi, signing.signer));
    expect(installed).toMatchObject({ identifier: 'com.example.wifi', verified: true, managed: false });
    expect(device.profiles.map((p) => p.identifier)).toContain('com.example.wifi');
  });

  it('downloads a profile only when it is served as application/x-apple-aspen-config', async () => {
    fake.handle(() => ({ headers: { 'content-type': 'application/octet-stream' }, body: signProfile(profile(), signing.signer) }));
    expect((await refusal(device.downloadProfile(`${fake.url}/enroll/profile`))).code).toBe('wrongContentType');
    fake.handle(() => ({ headers: PROFILE_TYPE, body: signProfile(profile(), signing.signer) }));
    expect((await device.downloadProfile(`${fake.url}/enroll/profile`)).length).toBeGreaterThan(100);
  });
});

describe('commands, answered as a device answers them', () => {
  function host(over: Partial<CommandHost> = {}): CommandHost & { removed: string[] } {
    const removed: string[] = [];
    const profiles: InstalledProfile[] = [
      { identifier: 'com.example.enrollment', uuid: 'U1', displayName: 'MDM', organization: 'Example', version: 1, removalDisallowed: false, payloads: [], signerCertificates: [], verified: true, managed: true, isMdmProfile: true, installedAt: new Date(), dict: {} },
      { identifier: 'com.example.wifi', uuid: 'U2', displayName: 'Wi-Fi', organization: undefined, version: 1, removalDisallowed: false, payloads: [], signerCertificates: [], verified: false, managed: true, isMdmProfile: false, installedAt: new Date(), dict: {} },
      { identifier: 'com.user.vpn', uuid: 'U3', displayName: 'VPN', organization: undefined, version: 1, removalDisallowed: false, payloads: [], signerCertificates: [], verified: false, managed: false, isMdmProfile: false, installedAt: new Date(), dict: {} },
    ];
    return {
      platform: 'iOS',
      supervised: true,
      userEnrollment: false,
      accessRights: 8191,
      deviceName: 'iPhone',
      hostName: undefined,
      awaitingConfiguration: false,
      facts: () => ({ UDID: 'UDID-1', DeviceName: 'iPhone', OSVersion: '18.1', SerialNumber: undefined }),
      profiles: () => profiles,
      installManagedProfile: () => {
        throw new DeviceError('malformedProfile', 'The profile is not valid.');
      },
      removeProfile: (id) => void removed.push(id),
      accountConfiguration: () => {},
      releaseFromSetup: () => {},
      erase: () => {},
      log: () => {},
      removed,
      ...over,
    };
  }
  const chainOf = (r: { ErrorChain?: Array<{ ErrorCode: number; ErrorDomain: string }> }) => r.ErrorChain?.map((e) => `${e.ErrorDomain} ${e.ErrorCode}`);

  it('answers an unknown RequestType with Error 12021, and a command missing its keys with CommandFormatError', () => {
    const r = runCommand(host(), { RequestType: 'PlaySound' });
    expect(r.Status).toBe('Error');
    expect(chainOf(r)).toEqual(['MCMDMErrorDomain 12021']);
    expect(runCommand(host(), { RequestType: 'DeviceInformation' }).Status).toBe('CommandFormatError');
    expect(runCommand(host(), { RequestType: 'DeviceInformation', Queries: 'UDID' }).Status).toBe('CommandFormatError');
    expect(runCommand(host(), { RequestType: 'InstallProfile' }).Status).toBe('CommandFormatError');
    expect(runCommand(host(), { RequestType: 'RemoveProfile' }).Status).toBe('CommandFormatError');
    expect(runCommand(host(), {}).Status).toBe('CommandFormatError');
  });

  it('answers only the queries it knows', () => {
    expect(runCommand(host(), { RequestType: 'DeviceInformation', Queries: ['UDID', 'OSVersion', 'SerialNumber', 'NoSuchQuery'] })).toEqual({ Status: 'Acknowledged', QueryResponses: { UDID: 'UDID-1', OSVersion: '18.1' } });
  });

  it('checks the access rights of the MDM payload', () => {
    const r = runCommand(host({ accessRights: 1 | 16 }), { RequestType: 'InstallProfile', Payload: Buffer.from('x') });
    expect(chainOf(r)).toEqual(['MCMDMErrorDomain 12025']);
    expect(runCommand(host({ accessRights: 1 | 16 }), { RequestType: 'ProfileList' }).Status).toBe('Acknowledged');
  });

  it('lists profiles (ManagedOnly: only MDM-installed ones) and removes only what MDM installed, never the enrollment profile', () => {
    const all = runCommand(host(), { RequestType: 'ProfileList' }).ProfileList as Array<{ PayloadIdentifier: string }>;
    expect(all.map((p) => p.PayloadIdentifier)).toEqual(['com.example.enrollment', 'com.example.wifi', 'com.user.vpn']);
    const managed = runCommand(host(), { RequestType: 'ProfileList', ManagedOnly: true }).ProfileList as Array<{ PayloadIdentifier: string }>;
    expect(managed.map((p) => p.PayloadIdentifier)).toEqual(['com.example.enrollment', 'com.example.wifi']);
    const h = host();
    expect(runCommand(h, { RequestType: 'RemoveProfile', Identifier: 'com.example.wifi' }).Status).toBe('Acknowledged');
    expect(chainOf(runCommand(h, { RequestType: 'RemoveProfile', Identifier: 'com.example.enrollment' }))).toEqual(['MCProfileErrorDomain 1004']);
    expect(chainOf(runCommand(h, { RequestType: 'RemoveProfile', Identifier: 'com.user.vpn' }))).toEqual(['MCProfileErrorDomain 1004']);
    expect(chainOf(runCommand(h, { RequestType: 'RemoveProfile', Identifier: 'com.nope' }))).toEqual(['MCProfileErrorDomain 1001']);
    expect(h.removed).toEqual(['com.example.wifi']);
    expect(chainOf(runCommand(h, { RequestType: 'InstallProfile', Payload: Buffer.from('x') }))).toEqual(['MCProfileErrorDomain 1000']);
  });

  it('renames only supervised iPhones, answers each setting, and refuses unknown ones', () => {
    const sup = host();
    const r = runCommand(sup, { RequestType: 'Settings', Settings: [{ Item: 'DeviceName', DeviceName: 'Kiosk 1' }, { Item: 'Wallpaper' }] });
    expect(r.Status).toBe('Acknowledged');
    expect((r.Settings as Array<{ Status: string }>).map((s) => s.Status)).toEqual(['Acknowledged', 'Error']);
    expect(sup.deviceName).toBe('Kiosk 1');
    const unsup = host({ supervised: false });
    expect((runCommand(unsup, { RequestType: 'Settings', Settings: [{ Item: 'DeviceName', DeviceName: 'X' }] }).Settings as Array<{ Status: string }>)[0]!.Status).toBe('Error');
    expect(unsup.deviceName).toBe('iPhone');
    expect(runCommand(host({ platform: 'macOS', supervised: false }), { RequestType: 'Settings', Settings: [{ Item: 'HostName', HostName: 'mac-1' }] }).Status).toBe('Acknowledged');
    expect(runCommand(host(), { RequestType: 'Settings', Settings: [{ DeviceName: 'no Item' }] }).Status).toBe('CommandFormatError');
  });

  it('takes DeviceConfigured and AccountConfiguration only while awaiting configuration (AccountConfiguration on a Mac)', () => {
    expect(chainOf(runCommand(host(), { RequestType: 'DeviceConfigured' }))).toEqual(['MCMDMErrorDomain 12070']);
    let released = false;
    expect(runCommand(host({ awaitingConfiguration: true, releaseFromSetup: () => void (released = true) }), { RequestType: 'DeviceConfigured' }).Status).toBe('Acknowledged');
    expect(released).toBe(true);
    expect(chainOf(runCommand(host({ awaitingConfiguration: true }), { RequestType: 'AccountConfiguration' }))).toEqual(['MCMDMErrorDomain 12021']);
    const mac = host({ platform: 'macOS', awaitingConfiguration: true });
    expect(runCommand(mac, { RequestType: 'AccountConfiguration', SkipPrimarySetupAccountCreation: true }).Status).toBe('CommandFormatError');
    expect(runCommand(mac, { RequestType: 'AccountConfiguration', AutoSetupAdminAccounts: [{ shortName: 'admin' }] }).Status).toBe('Acknowledged');
  });

  it('keeps a User Enrollment away from device commands', () => {
    const ue = host({ userEnrollment: true, supervised: false, accessRights: 0 });
    expect(chainOf(runCommand(ue, { RequestType: 'EraseDevice' }))).toEqual(['MCMDMErrorDomain 12021']);
    expect((runCommand(ue, { RequestType: 'Settings', Settings: [{ Item: 'DeviceName', DeviceName: 'X' }] }).Settings as Array<{ Status: string }>)[0]!.Status).toBe('Error');
    expect(runCommand(ue, { RequestType: 'ProfileList' }).Status).toBe('Acknowledged');
  });
});
