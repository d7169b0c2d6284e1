import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DEPENDENCY_RULES,
  deviceNameTemplateProblem,
  parseProfileCreate,
  parseProfilePatch,
  PROFILE_LIMITS,
  readStoredSettings,
  renderDeviceName,
  storedProfileFromRow,
  toGraphEntity,
  validateProfile,
  type DepProfileWrite,
  type IosProfileSettings,
  type MacProfileSettings,
  type StoredDepProfile,
} from '../../src/apple/ade/profiles/index.js';
import { GraphError } from '../../src/graph/errors.js';

x509.cryptoProvider.set('default', webcrypto as never);

const IOS = '#microsoft.graph.depIOSEnrollmentProfile';
const MAC = '#microsoft.graph.depMacOSEnrollmentProfile';

const ios = (over: Record<string, unknown> = {}) => ({ '@odata.type': IOS, displayName: 'Corporate iPhones', ...over });
const mac = (over: Record<string, unknown> = {}) => ({ '@odata.type': MAC, displayName: 'Corporate Macs', ...over });

function refusal(fn: () => unknown): GraphError {
  try {
    fn();
  } catch (err) {
    if (err instanceof GraphError) return err;
    throw err;
  }
  throw new Error('expected a 400');
}

/** Every property a refusal names: the first in target, the rest in details. */
function named(err: GraphError): string[] {
  return [err.options.target ?? '', ...(err.options.details ?? []).map((d) => d.target ?? '')];
}

function expectRefused(body: unknown, property: string, text?: RegExp): GraphError {
  const err = refusal(() => parseProfileCreate(body));
  expect(err.statusCode).toBe(400);
  expect(err.code).toBe('BadRequest');
  expect(named(err)).toContain(property);
  expect(err.message).toMatch(/'[^']+'/);
  if (text) expect([err.message, ...(err.options.details ?? []).map((d) => d.message)].join('\n')).toMatch(text);
  return err;
}

const iosSettings = (w: DepProfileWrite) => {
  if (w.platform !== 'iOS') throw new Error('expected iOS');
  return w.settings;
};
const macWrite = (w: DepProfileWrite) => {
  if (w.platform !== 'macOS') throw new Error('expected macOS');
  return w;
};

const stored = (w: DepProfileWrite, id = 'p1'): StoredDepProfile => ({ ...w, id, isDefault: false }) as StoredDepProfile;

async function selfSigned(cn: string): Promise<Buffer> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '0a',
    name: `CN=${cn}`,
    notBefore: new Date('2024-01-01T00:00:00Z'),
    notAfter: new Date('2034-01-01T00:00:00Z'),
    signingAlgorithm: alg,
    keys,
  });
  return Buffer.from(cert.rawData);
}

const sha1 = async (der: Buffer) => Buffer.from(await webcrypto.subtle.digest('SHA-1', der)).toString('hex').toUpperCase();

let certs: Buffer[] = [];
beforeAll(async () => {
  certs = await Promise.all(Array.from({ length: 11 }, (_, i) => selfSigned(`Configurator ${i}`)));
});

const SHARED = { enableSharedIPad: true, requiresUserAuthentication: false, supervisedModeEnabled: true, sharedIPadMaximumUserCount: 24 };
const CP_AUTH = { requiresUserAuthentication: true, enableAuthenticationViaCompanyPortal: true, supervisedModeEnabled: true };

describe('ADE profile bodies', () => {
  it('a minimal iOS body gets every default', () => {
    const w = parseProfileCreate(ios());
    expect(w.platform).toBe('iOS');
    const s = iosSettings(w);
    expect(s).toMatchObject({
      requiresUserAuthentication: false,
      supervisedModeEnabled: true,
      isMandatory: true,
      iTunesPairingMode: 'allow',
      managementCertificates: [],
      enrollmentTimeAzureAdGroupIds: [],
      passcodeLockGracePeriodInSeconds: null,
      sharedIPadMaximumUserCount: 0,
      deviceNameTemplate: null,
    });
    expect(w.description).toBeNull();
  });

  it('requires @odata.type on create and picks the platform from it, with or without #', () => {
    expectRefused({ displayName: 'x' }, '@odata.type');
    expect(parseProfileCreate({ ...mac(), '@odata.type': 'microsoft.graph.depMacOSEnrollmentProfile' }).platform).toBe('macOS');
    for (const t of ['#microsoft.graph.enrollmentProfile', '#microsoft.graph.depTvOSEnrollmentProfile', '#microsoft.graph.depEnrollmentProfile', 'depIOSEnrollmentProfile', 42]) {
      expectRefused(ios({ '@odata.type': t }), '@odata.type');
    }
  });

  it('refuses a body that is not an object', () => {
    for (const b of [null, [], 'x', 3, true]) expect(refusal(() => parseProfileCreate(b)).message).toBe('The request body must be a JSON object.');
  });

  it('refuses unknown properties, naming them, including inside certificates', () => {
    expectRefused(ios({ frobnicate: true }), 'frobnicate', /not a known property of '#microsoft\.graph\.depIOSEnrollmentProfile'/);
    // Platform-specific properties are unknown on the other platform.
    expectRefused(mac({ enableSharedIPad: true }), 'enableSharedIPad');
    expectRefused(ios({ adminAccountUserName: 'admin' }), 'adminAccountUserName');
    expectRefused(ios({ iTunesPairingMode: 'requiresCertificate', managementCertificates: [{ certificate: certs[0]!.toString('base64'), extra: 1 }] }), 'managementCertificates[0].extra');
  });

  it('checks Graph types: configurationWebUrl is a Boolean, enums are strings', () => {
    expectRefused(ios({ configurationWebUrl: 'https://sso.example.com' }), 'configurationWebUrl', /must be true or false/);
    expectRefused(ios({ iTunesPairingMode: 'Allow' }), 'iTunesPairingMode', /one of 'disallow', 'allow', 'requiresCertificate'/);
    expectRefused(ios({ supervisedModeEnabled: null }), 'supervisedModeEnabled');
    expectRefused(ios({ sharedIPadMaximumUserCount: 1.5 }), 'sharedIPadMaximumUserCount', /integer/);
    expectRefused(ios({ sharedIPadMaximumUserCount: 2 ** 31 }), 'sharedIPadMaximumUserCount');
    expectRefused(ios({ enrollmentTimeAzureAdGroupIds: ['not-a-guid'] }), 'enrollmentTimeAzureAdGroupIds[0]', /GUID/);
    expectRefused(ios({ displayName: 7 }), 'displayName');
  });

  it('accepts and ignores read-only properties a client sends back', () => {
    const w = parseProfileCreate(ios({ id: 'x_y', isDefault: true, enabledSkipKeys: ['Siri'], configurationEndpointUrl: null }));
    expect(iosSettings(w).siriDisabled).toBe(false);
    expect('isDefault' in w.settings).toBe(false);
  });

  it('displayName is required, trimmed, not blank, at most 125 characters (Apple profile_name)', () => {
    expectRefused({ '@odata.type': IOS }, 'displayName', /required/);
    expectRefused(ios({ displayName: '' }), 'displayName');
    expectRefused(ios({ displayName: '   ' }), 'displayName', /blank/);
    expect(parseProfileCreate(ios({ displayName: '  Kiosk  ' })).displayName).toBe('Kiosk');
    expect(parseProfileCreate(ios({ displayName: 'n'.repeat(125) })).displayName).toHaveLength(125);
    expectRefused(ios({ displayName: 'n'.repeat(126) }), 'displayName', /1 to 125 characters/);
  });

  it('description: up to 1,500 characters', () => {
    expect(parseProfileCreate(ios({ description: 'd'.repeat(1500) })).description).toHaveLength(1500);
    expectRefused(ios({ description: 'd'.repeat(1501) }), 'description');
  });

  it('department and phone: Apple limits, empty means none', () => {
    const s = iosSettings(parseProfileCreate(ios({ supportDepartment: 'd'.repeat(125), supportPhoneNumber: ' +1 408 555 1010 ' })));
    expect(s.supportPhoneNumber).toBe('+1 408 555 1010');
    expectRefused(ios({ supportDepartment: 'd'.repeat(126) }), 'supportDepartment');
    expect(iosSettings(parseProfileCreate(ios({ supportPhoneNumber: '5'.repeat(50) }))).supportPhoneNumber).toHaveLength(50);
    expectRefused(ios({ supportPhoneNumber: '5'.repeat(51) }), 'supportPhoneNumber');
    expect(iosSettings(parseProfileCreate(ios({ supportDepartment: '' }))).supportDepartment).toBeNull();
    expectRefused(ios({ supportDepartment: 'IT\nDesk' }), 'supportDepartment', /control/);
  });

  it('one enrollment-time group at most, lower-cased', () => {
    const g = 'ABCDEF01-2345-6789-ABCD-EF0123456789';
    expect(iosSettings(parseProfileCreate(ios({ enrollmentTimeAzureAdGroupIds: [g] }))).enrollmentTimeAzureAdGroupIds).toEqual([g.toLowerCase()]);
    expectRefused(ios({ enrollmentTimeAzureAdGroupIds: [g, g.replace('A', 'B')] }), 'enrollmentTimeAzureAdGroupIds');
    expect(iosSettings(parseProfileCreate(ios({ enrollmentTimeAzureAdGroupIds: null }))).enrollmentTimeAzureAdGroupIds).toEqual([]);
  });

  it('validateProfile takes Graph properties without @odata.type and applies defaults', () => {
    const w = validateProfile('macOS', { displayName: 'Macs', fileVaultDisabled: true });
    expect(w.settings.fileVaultDisabled).toBe(true);
    expect(w.settings.supervisedModeEnabled).toBe(true);
    expect(refusal(() => validateProfile('iOS', { displayName: 'x', '@odata.type': MAC })).options.target).toBe('@odata.type');
  });
});

describe('user affinity (check 9)', () => {
  const withoutAffinity: [string, unknown][] = [
    ['enableAuthenticationViaCompanyPortal', true],
    ['configurationWebUrl', true],
    ['requireCompanyPortalOnSetupAssistantEnrolledDevices', true],
    ['companyPortalVppTokenId', 'vpp-1'],
    ['enableSingleAppEnrollmentMode', true],
  ];
  it.each(withoutAffinity)('without user affinity, %s is refused', (property, value) => {
    expectRefused(ios({ requiresUserAuthentication: false, [property]: value }), property, /requiresUserAuthentication/);
  });

  it('without user affinity, the defaults are accepted', () => {
    const s = iosSettings(parseProfileCreate(ios({ requiresUserAuthentication: false, enableAuthenticationViaCompanyPortal: false, companyPortalVppTokenId: null })));
    expect(s.requiresUserAuthentication).toBe(false);
  });

  it('with user affinity, Company Portal + VPP + Single App Mode are accepted', () => {
    const s = iosSettings(parseProfileCreate(ios({ ...CP_AUTH, companyPortalVppTokenId: 'vpp-1', enableSingleAppEnrollmentMode: true })));
    expect(s).toMatchObject({ enableAuthenticationViaCompanyPortal: true, companyPortalVppTokenId: 'vpp-1', enableSingleAppEnrollmentMode: true });
  });

  it('macOS: modern authentication and the primary account prefill need user affinity', () => {
    expectRefused(mac({ configurationWebUrl: true }), 'configurationWebUrl');
    expectRefused(mac({ usePlatformSSODuringSetupAssistant: true }), 'usePlatformSSODuringSetupAssistant');
    for (const [k, v] of [['primaryAccountUserName', 'ann'], ['primaryAccountFullName', 'Ann'], ['dontAutoPopulatePrimaryAccountInfo', true], ['enableRestrictEditing', true]] as const) {
      expectRefused(mac({ [k]: v }), k, /user affinity/);
      expect(() => parseProfileCreate(mac({ requiresUserAuthentication: true, [k]: v }))).not.toThrow();
    }
  });
});

describe('authentication method', () => {
  it('one method per profile: Company Portal and modern authentication together are refused', () => {
    expectRefused(ios({ ...CP_AUTH, configurationWebUrl: true }), 'configurationWebUrl', /one authentication method/);
  });

  it('Company Portal requires supervision (check 14); modern and legacy Setup Assistant do not', () => {
    expectRefused(ios({ ...CP_AUTH, supervisedModeEnabled: false }), 'enableAuthenticationViaCompanyPortal', /supervisedModeEnabled/);
    expect(() => parseProfileCreate(ios({ requiresUserAuthentication: true, configurationWebUrl: true, supervisedModeEnabled: false }))).not.toThrow();
    expect(() => parseProfileCreate(ios({ requiresUserAuthentication: true, supervisedModeEnabled: false }))).not.toThrow();
  });

  it('a Company Portal VPP token needs a method that installs Company Portal', () => {
    expectRefused(ios({ requiresUserAuthentication: true, companyPortalVppTokenId: 'vpp-1' }), 'companyPortalVppTokenId');
    for (const method of [{ enableAuthenticationViaCompanyPortal: true }, { configurationWebUrl: true }, { requireCompanyPortalOnSetupAssistantEnrolledDevices: true }]) {
      expect(() => parseProfileCreate(ios({ requiresUserAuthentication: true, companyPortalVppTokenId: 'vpp-1', ...method }))).not.toThrow();
    }
    expectRefused(ios({ ...CP_AUTH, companyPortalVppTokenId: 'vpp 1' }), 'companyPortalVppTokenId');
    expect(iosSettings(parseProfileCreate(ios({ ...CP_AUTH, companyPortalVppTokenId: '' }))).companyPortalVppTokenId).toBeNull();
  });

  it('macOS authenticates in Setup Assistant only; Platform SSO excludes modern authentication', () => {
    expectRefused(mac({ requiresUserAuthentication: true, enableAuthenticationViaCompanyPortal: true }), 'enableAuthenticationViaCompanyPortal', /macOS/);
    expectRefused(mac({ requiresUserAuthentication: true, configurationWebUrl: true, usePlatformSSODuringSetupAssistant: true }), 'usePlatformSSODuringSetupAssistant');
    expect(() => parseProfileCreate(mac({ requiresUserAuthentication: true, usePlatformSSODuringSetupAssistant: true }))).not.toThrow();
  });
});

describe('Single App Mode (check 11)', () => {
  it('is refused without a Company Portal VPP token', () => {
    expectRefused(ios({ ...CP_AUTH, enableSingleAppEnrollmentMode: true }), 'enableSingleAppEnrollmentMode', /companyPortalVppTokenId/);
  });
  it('is refused with a VPP token but Setup Assistant authentication', () => {
    expectRefused(
      ios({ requiresUserAuthentication: true, requireCompanyPortalOnSetupAssistantEnrolledDevices: true, companyPortalVppTokenId: 'vpp-1', enableSingleAppEnrollmentMode: true }),
      'enableSingleAppEnrollmentMode',
      /enableAuthenticationViaCompanyPortal/,
    );
  });
});

describe('locked enrollment (check 13)', () => {
  it('needs supervision on iOS and macOS', () => {
    expectRefused(ios({ profileRemovalDisabled: true, supervisedModeEnabled: false }), 'profileRemovalDisabled', /supervisedModeEnabled/);
    expectRefused(mac({ profileRemovalDisabled: true, supervisedModeEnabled: false }), 'profileRemovalDisabled');
    expect(iosSettings(parseProfileCreate(ios({ profileRemovalDisabled: true, supervisedModeEnabled: true }))).profileRemovalDisabled).toBe(true);
    expect(macWrite(parseProfileCreate(mac({ profileRemovalDisabled: true }))).settings.profileRemovalDisabled).toBe(true);
  });
});

describe('Shared iPad (checks 16, 18–21)', () => {
  it('requires no user affinity and supervision (check 16)', () => {
    expect(iosSettings(parseProfileCreate(ios(SHARED))).enableSharedIPad).toBe(true);
    expectRefused(ios({ ...SHARED, requiresUserAuthentication: true }), 'enableSharedIPad', /without user affinity/);
    expectRefused(ios({ ...SHARED, supervisedModeEnabled: false }), 'enableSharedIPad', /supervision/);
  });

  it('needs at least one cached user unless sessions are temporary only', () => {
    expectRefused(ios({ ...SHARED, sharedIPadMaximumUserCount: 0 }), 'sharedIPadMaximumUserCount');
    expect(iosSettings(parseProfileCreate(ios({ ...SHARED, sharedIPadMaximumUserCount: 1 }))).sharedIPadMaximumUserCount).toBe(1);
    expect(() => parseProfileCreate(ios({ ...SHARED, sharedIPadMaximumUserCount: 0, forceTemporarySession: true }))).not.toThrow();
  });

  const subSettings: [string, unknown][] = [
    ['sharedIPadMaximumUserCount', 24],
    ['passcodeLockGracePeriodInSeconds', 0],
    ['userSessionTimeoutInSeconds', 300],
    ['temporarySessionTimeoutInSeconds', 300],
    ['forceTemporarySession', true],
  ];
  it.each(subSettings)('%s exists only with Shared iPad', (property, value) => {
    expectRefused(ios({ [property]: value }), property, /enableSharedIPad/);
  });

  it('without Shared iPad, the sub-settings at their defaults are accepted', () => {
    expect(() =>
      parseProfileCreate(ios({ sharedIPadMaximumUserCount: 0, passcodeLockGracePeriodInSeconds: null, userSessionTimeoutInSeconds: 0, temporarySessionTimeoutInSeconds: null, forceTemporarySession: false })),
    ).not.toThrow();
  });

  it('screen-lock grace period: 0 and 14,400 accepted, -1 and 14,401 refused (check 18)', () => {
    for (const v of [0, 60, 14_400, null]) {
      expect(iosSettings(parseProfileCreate(ios({ ...SHARED, passcodeLockGracePeriodInSeconds: v }))).passcodeLockGracePeriodInSeconds).toBe(v);
    }
    for (const v of [-1, 14_401]) expectRefused(ios({ ...SHARED, passcodeLockGracePeriodInSeconds: v }), 'passcodeLockGracePeriodInSeconds', /0 to 14400/);
  });

  it('user-session inactivity: blank, 0 and 30 accepted; 1–29 refused (check 19)', () => {
    for (const [v, stored] of [[null, 0], [0, 0], [30, 30], [31, 31], [PROFILE_LIMITS.int32Max, PROFILE_LIMITS.int32Max]] as const) {
      expect(iosSettings(parseProfileCreate(ios({ ...SHARED, userSessionTimeoutInSeconds: v }))).userSessionTimeoutInSeconds).toBe(stored);
    }
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 29 }), (v) => {
        expectRefused(ios({ ...SHARED, userSessionTimeoutInSeconds: v }), 'userSessionTimeoutInSeconds', /0 \(never\) or at least 30/);
      }),
    );
    expectRefused(ios({ ...SHARED, userSessionTimeoutInSeconds: -1 }), 'userSessionTimeoutInSeconds');
  });

  it('temporary-session inactivity: blank, 0 and 30 accepted; 1–29 refused (check 19)', () => {
    const temp = { ...SHARED, forceTemporarySession: true };
    for (const [v, stored] of [[null, 0], [0, 0], [30, 30]] as const) {
      expect(iosSettings(parseProfileCreate(ios({ ...temp, temporarySessionTimeoutInSeconds: v }))).temporarySessionTimeoutInSeconds).toBe(stored);
    }
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 29 }), (v) => {
        expectRefused(ios({ ...temp, temporarySessionTimeoutInSeconds: v }), 'temporarySessionTimeoutInSeconds', /at least 30/);
      }),
    );
  });

  it('temporary session only clears cached users, screen-lock seconds and user-session inactivity (check 20)', () => {
    const s = iosSettings(
      parseProfileCreate(
        ios({ ...SHARED, forceTemporarySession: true, sharedIPadMaximumUserCount: 24, passcodeLockGracePeriodInSeconds: 300, userSessionTimeoutInSeconds: 600, temporarySessionTimeoutInSeconds: 900 }),
      ),
    );
    expect(s).toMatchObject({ sharedIPadMaximumUserCount: 0, passcodeLockGracePeriodInSeconds: null, userSessionTimeoutInSeconds: 0, temporarySessionTimeoutInSeconds: 900 });
    // Ignored, so even an out-of-rule user timeout is no error.
    expect(() => parseProfileCreate(ios({ ...SHARED, forceTemporarySession: true, userSessionTimeoutInSeconds: 5 }))).not.toThrow();
  });

  it('temporary-session inactivity is refused when sessions are not temporary only (check 21)', () => {
    expectRefused(ios({ ...SHARED, forceTemporarySession: false, temporarySessionTimeoutInSeconds: 300 }), 'temporarySessionTimeoutInSeconds', /forceTemporarySession/);
    expect(() => parseProfileCreate(ios({ ...SHARED, forceTemporarySession: false, temporarySessionTimeoutInSeconds: 0 }))).not.toThrow();
  });

  it("Await final configuration isn't available with Shared iPad", () => {
    expectRefused(ios({ ...SHARED, awaitDeviceConfiguredConfirmation: true }), 'awaitDeviceConfiguredConfirmation');
    expectRefused(ios({ ...SHARED, waitForDeviceConfiguredConfirmation: true }), 'waitForDeviceConfiguredConfirmation');
    expect(iosSettings(parseProfileCreate(ios({ awaitDeviceConfiguredConfirmation: true }))).awaitDeviceConfiguredConfirmation).toBe(true);
  });

  it('shared device mode is userless and not a Shared iPad', () => {
    expect(iosSettings(parseProfileCreate(ios({ userlessSharedAadModeEnabled: true }))).userlessSharedAadModeEnabled).toBe(true);
    expectRefused(ios({ userlessSharedAadModeEnabled: true, requiresUserAuthentication: true }), 'userlessSharedAadModeEnabled');
    expectRefused(ios({ ...SHARED, userlessSharedAadModeEnabled: true }), 'userlessSharedAadModeEnabled');
  });
});

describe('sync with computers (check 22)', () => {
  const entry = (der: Buffer, thumbprint?: string | null) => ({ '@odata.type': '#microsoft.graph.managementCertificateWithThumbprint', certificate: der.toString('base64'), thumbprint });

  it("'requiresCertificate' without a certificate is refused", () => {
    expectRefused(ios({ iTunesPairingMode: 'requiresCertificate' }), 'managementCertificates', /at least one certificate/);
    expectRefused(ios({ iTunesPairingMode: 'requiresCertificate', managementCertificates: [] }), 'managementCertificates');
    expectRefused(ios({ iTunesPairingMode: 'requiresCertificate', managementCertificates: null }), 'managementCertificates');
  });

  it('computes the SHA-1 thumbprint and checks a given one', async () => {
    const der = certs[0]!;
    const thumb = await sha1(der);
    const s = iosSettings(parseProfileCreate(ios({ iTunesPairingMode: 'requiresCertificate', managementCertificates: [entry(der)] })));
    expect(s.managementCertificates).toEqual([{ certificate: der.toString('base64'), thumbprint: thumb }]);
    const spaced = thumb.toLowerCase().match(/../g)!.join(':');
    expect(() => parseProfileCreate(ios({ iTunesPairingMode: 'requiresCertificate', managementCertificates: [entry(der, spaced)] }))).not.toThrow();
    expectRefused(ios({ iTunesPairingMode: 'requiresCertificate', managementCertificates: [entry(der, '00'.repeat(20))] }), 'managementCertificates[0].thumbprint', new RegExp(thumb));
  });

  it('accepts PEM and base64-wrapped PEM, keeps base64 DER', () => {
    const der = certs[1]!;
    const pem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
    for (const certificate of [pem, Buffer.from(pem).toString('base64')]) {
      const s = iosSettings(parseProfileCreate(ios({ iTunesPairingMode: 'requiresCertificate', managementCertificates: [{ certificate }] })));
      expect(s.managementCertificates[0]!.certificate).toBe(der.toString('base64'));
    }
  });

  it('refuses what is not exactly one certificate', () => {
    const bad = ['', 'not base64!', Buffer.from('hello').toString('base64'), Buffer.concat([certs[0]!, Buffer.from([0, 0])]).toString('base64')];
    for (const certificate of bad) {
      expectRefused(ios({ iTunesPairingMode: 'requiresCertificate', managementCertificates: [{ certificate }] }), 'managementCertificates[0].certificate');
    }
    expectRefused(ios({ iTunesPairingMode: 'requiresCertificate', managementCertificates: [{ thumbprint: 'AB' }] }), 'managementCertificates[0].certificate', /required/);
    expectRefused(ios({ iTunesPairingMode: 'requiresCertificate', managementCertificates: [entry(certs[0]!), entry(certs[0]!)] }), 'managementCertificates[1].certificate', /twice/);
  });

  it('takes up to 10 certificates', () => {
    expect(iosSettings(parseProfileCreate(ios({ iTunesPairingMode: 'requiresCertificate', managementCertificates: certs.slice(0, 10).map((c) => entry(c)) }))).managementCertificates).toHaveLength(10);
    expectRefused(ios({ iTunesPairingMode: 'requiresCertificate', managementCertificates: certs.map((c) => entry(c)) }), 'managementCertificates', /at most 10/);
  });

  it("certificates are refused unless the mode is 'requiresCertificate'", () => {
    for (const mode of ['allow', 'disallow']) {
      expectRefused(ios({ iTunesPairingMode: mode, managementCertificates: [entry(certs[0]!)] }), 'managementCertificates', /requiresCertificate/);
      expect(iosSettings(parseProfileCreate(ios({ iTunesPairingMode: mode }))).iTunesPairingMode).toBe(mode);
    }
  });
});

describe('device name template (check 23)', () => {
  it('63 characters including variables accepted, 64 refused', () => {
    const t63 = `{{DEVICETYPE}}-{{SERIAL}}-${'x'.repeat(63 - 26)}`;
    expect(t63).toHaveLength(63);
    expect(iosSettings(parseProfileCreate(ios({ deviceNameTemplate: t63 }))).deviceNameTemplate).toBe(t63);
    expectRefused(ios({ deviceNameTemplate: `${t63}x` }), 'deviceNameTemplate', /at most 63/);
    expect(iosSettings(parseProfileCreate(ios({ deviceNameTemplate: 'n'.repeat(63) }))).deviceNameTemplate).toHaveLength(63);
    expectRefused(ios({ deviceNameTemplate: 'n'.repeat(64) }), 'deviceNameTemplate');
    // Characters, not UTF-16 units.
    expect(deviceNameTemplateProblem('😀'.repeat(63))).toBeNull();
    expect(deviceNameTemplateProblem('😀'.repeat(64))).toMatch(/at most 63/);
  });

  it('"Apply device name template" is a non-null template; empty means No, blank is refused', () => {
    expect(iosSettings(parseProfileCreate(ios({ deviceNameTemplate: '' }))).deviceNameTemplate).toBeNull();
    expect(iosSettings(parseProfileCreate(ios({ deviceNameTemplate: null }))).deviceNameTemplate).toBeNull();
    expectRefused(ios({ deviceNameTemplate: '   ' }), 'deviceNameTemplate', /blank/);
  });

  it('only {{SERIAL}} and {{DEVICETYPE}}, in any case', () => {
    expect(() => parseProfileCreate(mac({ deviceNameTemplate: 'Contoso-{{serial}}-{{DeviceType}}' }))).not.toThrow();
    for (const t of ['{{SERIALNUMBER}}', '{{UDID}}', 'A-{{}}', '{{SERIAL}', 'A}}B', '{{ {{SERIAL}} }}']) {
      expectRefused(ios({ deviceNameTemplate: t }), 'deviceNameTemplate');
    }
    expectRefused(ios({ deviceNameTemplate: 'a\tb' }), 'deviceNameTemplate', /control/);
    expect(deviceNameTemplateProblem('{SERIAL}')).toBeNull(); // single braces are literal text
  });

  it('renders names with the serial and device type, cut to 63 characters', () => {
    expect(renderDeviceName('{{DEVICETYPE}}-{{SERIAL}}', { serialNumber: 'C02XL0GQJGH5', deviceType: 'iPad' })).toBe('iPad-C02XL0GQJGH5');
    expect(renderDeviceName('x'.repeat(53) + '{{SERIAL}}', { serialNumber: 'C02XL0GQJGH5', deviceType: 'iPad' })).toHaveLength(63);
  });
});

describe('cellular data plan (check 24)', () => {
  it('needs an https carrier activation URL when on; empty means off', () => {
    expect(iosSettings(parseProfileCreate(ios({ carrierActivationUrl: 'https://activate.carrier.example/esim' }))).carrierActivationUrl).toBe('https://activate.carrier.example/esim');
    expect(iosSettings(parseProfileCreate(ios({ carrierActivationUrl: '' }))).carrierActivationUrl).toBeNull();
    for (const url of ['http://activate.carrier.example', 'activate.carrier.example', 'https://', 'https://user:pw@carrier.example', 'https://carrier.example/a b', 'ftp://carrier.example']) {
      expectRefused(ios({ carrierActivationUrl: url }), 'carrierActivationUrl');
    }
    expectRefused(ios({ carrierActivationUrl: `https://c.example/${'a'.repeat(2048)}` }), 'carrierActivationUrl', /2048/);
  });
});

describe('macOS accounts and Auto Advance', () => {
  const affinity = { requiresUserAuthentication: true };

  it('admin-account settings need adminAccountUserName', () => {
    for (const [k, v] of [
      ['adminAccountFullName', 'IT Admin'],
      ['adminAccountPassword', 'correct horse'],
      ['hideAdminAccount', true],
      ['depProfileAdminAccountPasswordRotationSetting', { autoRotationPeriodInDays: 30 }],
      ['setPrimarySetupAccountAsRegularUser', true],
      ['skipPrimarySetupAccountCreation', true],
    ] as const) {
      expectRefused(mac({ [k]: v }), k, /adminAccountUserName/);
      expect(() => parseProfileCreate(mac({ adminAccountUserName: 'itadmin', [k]: v }))).not.toThrow();
    }
  });

  it('an admin account turns Await final configuration on; its password is kept out of the settings', () => {
    const w = macWrite(parseProfileCreate(mac({ adminAccountUserName: 'itadmin', adminAccountFullName: 'IT Admin', adminAccountPassword: 'correct horse' })));
    expect(w.settings.waitForDeviceConfiguredConfirmation).toBe(true);
    expect(w.adminAccountPassword).toBe('correct horse');
    expect(JSON.stringify(w.settings)).not.toContain('correct horse');
    expectRefused(mac({ adminAccountUserName: 'itadmin', adminAccountPassword: '1234567' }), 'adminAccountPassword', /8 to 128/);
    expect(macWrite(parseProfileCreate(mac({ adminAccountUserName: 'itadmin', adminAccountPassword: '12345678' }))).adminAccountPassword).toBe('12345678');
  });

  it('account names are macOS short names; the primary one may use {{partialupn}}', () => {
    for (const bad of ['it admin', '.hidden', '-x', 'é', '{{partialupn}}']) expectRefused(mac({ adminAccountUserName: bad }), 'adminAccountUserName');
    expect(() => parseProfileCreate(mac({ ...affinity, primaryAccountUserName: '{{partialupn}}', primaryAccountFullName: '{{username}}' }))).not.toThrow();
    expect(() => parseProfileCreate(mac({ ...affinity, primaryAccountUserName: 'mac-{{PartialUPN}}' }))).not.toThrow();
    expectRefused(mac({ ...affinity, primaryAccountUserName: '{{username}}' }), 'primaryAccountUserName', /partialupn/);
    expectRefused(mac({ ...affinity, primaryAccountFullName: '{{partialupn}}' }), 'primaryAccountFullName', /username/);
    expectRefused(mac({ ...affinity, adminAccountUserName: 'Ann', primaryAccountUserName: 'ann' }), 'primaryAccountUserName', /differ/);
  });

  it('a skipped primary account cannot be configured', () => {
    expectRefused(mac({ ...affinity, adminAccountUserName: 'itadmin', skipPrimarySetupAccountCreation: true, primaryAccountUserName: 'ann' }), 'skipPrimarySetupAccountCreation');
    expect(() => parseProfileCreate(mac({ adminAccountUserName: 'itadmin', skipPrimarySetupAccountCreation: true }))).not.toThrow();
  });

  it('password rotation: 1–180 days, a retrieval delay of 1–24 hours only when rotation on retrieval is on', () => {
    const rot = (r: unknown) => mac({ adminAccountUserName: 'itadmin', depProfileAdminAccountPasswordRotationSetting: r });
    for (const d of [1, 180]) expect(() => parseProfileCreate(rot({ autoRotationPeriodInDays: d }))).not.toThrow();
    for (const d of [0, 181]) expectRefused(rot({ autoRotationPeriodInDays: d }), 'depProfileAdminAccountPasswordRotationSetting.autoRotationPeriodInDays');
    expectRefused(rot({}), 'depProfileAdminAccountPasswordRotationSetting.autoRotationPeriodInDays', /required/);
    const delay = (h: number, enabled = true) => rot({ autoRotationPeriodInDays: 30, depProfileDelayAutoRotationSetting: { onRetrievalAutoRotatePasswordEnabled: enabled, onRetrievalDelayAutoRotatePasswordInHours: h } });
    for (const h of [1, 24]) expect(() => parseProfileCreate(delay(h))).not.toThrow();
    for (const h of [0, 25]) expectRefused(delay(h), 'depProfileAdminAccountPasswordRotationSetting.depProfileDelayAutoRotationSetting.onRetrievalDelayAutoRotatePasswordInHours');
    expectRefused(delay(4, false), 'depProfileAdminAccountPasswordRotationSetting.depProfileDelayAutoRotationSetting.onRetrievalDelayAutoRotatePasswordInHours', /onRetrievalAutoRotatePasswordEnabled/);
  });

  it("Auto Advance can't wait for a user", () => {
    expectRefused(mac({ ...affinity, autoAdvanceSetupEnabled: true }), 'autoAdvanceSetupEnabled');
    expect(macWrite(parseProfileCreate(mac({ autoAdvanceSetupEnabled: true }))).settings.autoAdvanceSetupEnabled).toBe(true);
  });
});

describe('every dependency rule', () => {
  it('has a unique id, a source and a message', () => {
    const ids = DEPENDENCY_RULES.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const r of DEPENDENCY_RULES) {
      expect(r.source).not.toBe('');
      expect(r.message.length).toBeGreaterThan(10);
    }
  });
});

describe('PATCH', () => {
  const current = () => stored(parseProfileCreate(ios({ ...SHARED, passcodeLockGracePeriodInSeconds: 60, supportDepartment: 'IT' })));

  it('merges onto the stored profile and validates the whole', () => {
    const w = parseProfilePatch(current(), { displayName: 'Renamed' });
    expect(w.displayName).toBe('Renamed');
    expect(iosSettings(w)).toMatchObject({ enableSharedIPad: true, sharedIPadMaximumUserCount: 24, supportDepartment: 'IT' });
    expectRefusedPatch(current(), { requiresUserAuthentication: true }, 'enableSharedIPad');
  });

  it("refuses another type and doesn't require @odata.type", () => {
    expect(refusal(() => parseProfilePatch(current(), { '@odata.type': MAC })).message).toMatch(/can't be changed/);
    expect(() => parseProfilePatch(current(), { '@odata.type': IOS })).not.toThrow();
    expect(refusal(() => parseProfilePatch(current(), { displayName: null })).options.target).toBe('displayName');
  });

  it('turning Shared iPad off resets its sub-settings unless the body sets them', () => {
    const s = iosSettings(parseProfilePatch(current(), { enableSharedIPad: false }));
    expect(s).toMatchObject({ enableSharedIPad: false, sharedIPadMaximumUserCount: 0, passcodeLockGracePeriodInSeconds: null });
    expectRefusedPatch(current(), { enableSharedIPad: false, sharedIPadMaximumUserCount: 5 }, 'sharedIPadMaximumUserCount');
  });

  it('turning user affinity off resets the authentication settings', () => {
    const cp = stored(parseProfileCreate(ios({ ...CP_AUTH, companyPortalVppTokenId: 'vpp-1', enableSingleAppEnrollmentMode: true })));
    const s = iosSettings(parseProfilePatch(cp, { requiresUserAuthentication: false }));
    expect(s).toMatchObject({ enableAuthenticationViaCompanyPortal: false, companyPortalVppTokenId: null, enableSingleAppEnrollmentMode: false });
    expect(iosSettings(parseProfilePatch(cp, { companyPortalVppTokenId: null })).enableSingleAppEnrollmentMode).toBe(false);
  });

  it('changing the pairing mode away from certificates drops them; temporary-only off drops its timeout', async () => {
    const withCert = stored(parseProfileCreate(ios({ iTunesPairingMode: 'requiresCertificate', managementCertificates: [{ certificate: certs[2]!.toString('base64') }] })));
    expect(iosSettings(parseProfilePatch(withCert, { iTunesPairingMode: 'disallow' })).managementCertificates).toEqual([]);
    const temp = stored(parseProfileCreate(ios({ ...SHARED, forceTemporarySession: true, temporarySessionTimeoutInSeconds: 600 })));
    const s = iosSettings(parseProfilePatch(temp, { forceTemporarySession: false, sharedIPadMaximumUserCount: 10 }));
    expect(s.temporarySessionTimeoutInSeconds).toBe(0);
  });

  it("doesn't cascade supervision: turning it off under locked enrollment is refused", () => {
    const locked = stored(parseProfileCreate(ios({ profileRemovalDisabled: true })));
    expectRefusedPatch(locked, { supervisedModeEnabled: false }, 'profileRemovalDisabled');
  });

  it('macOS admin password: null keeps it, a string replaces it, removing the account deletes it', () => {
    const m = stored(parseProfileCreate(mac({ adminAccountUserName: 'itadmin', adminAccountPassword: 'first password' })));
    expect('adminAccountPassword' in parseProfilePatch(m, { adminAccountPassword: null })).toBe(false);
    expect(macWrite(parseProfilePatch(m, { adminAccountPassword: 'second password' })).adminAccountPassword).toBe('second password');
    const gone = macWrite(parseProfilePatch(m, { adminAccountUserName: null }));
    expect(gone.adminAccountPassword).toBeNull();
    expect(gone.settings.adminAccountUserName).toBeNull();
  });

  function expectRefusedPatch(cur: StoredDepProfile, body: unknown, property: string) {
    const err = refusal(() => parseProfilePatch(cur, body));
    expect(err.statusCode).toBe(400);
    expect(named(err)).toContain(property);
  }
});

describe('Graph entity', () => {
  const BASE = [
    '@odata.type', 'id', 'displayName', 'description', 'requiresUserAuthentication', 'configurationEndpointUrl', 'enableAuthenticationViaCompanyPortal',
    'requireCompanyPortalOnSetupAssistantEnrolledDevices', 'appleIdDisabled', 'applePayDisabled', 'configurationWebUrl', 'deviceNameTemplate',
    'diagnosticsDisabled', 'displayToneSetupDisabled', 'enabledSkipKeys', 'enrollmentTimeAzureAdGroupIds', 'isDefault', 'isMandatory',
    'locationDisabled', 'privacyPaneDisabled', 'profileRemovalDisabled', 'restoreBlocked', 'screenTimeScreenDisabled', 'siriDisabled',
    'supervisedModeEnabled', 'supportDepartment', 'supportPhoneNumber', 'termsAndConditionsDisabled', 'touchIdDisabled',
    'waitForDeviceConfiguredConfirmation',
  ];
  // graph-enrollment-api §3.4
  const IOS_PROPS = [
    'appearanceScreenDisabled', 'awaitDeviceConfiguredConfirmation', 'carrierActivationUrl', 'companyPortalVppTokenId', 'deviceToDeviceMigrationDisabled',
    'enableSharedIPad', 'enableSingleAppEnrollmentMode', 'expressLanguageScreenDisabled', 'forceTemporarySession', 'homeButtonScreenDisabled',
    'iMessageAndFaceTimeScreenDisabled', 'iTunesPairingMode', 'managementCertificates', 'onBoardingScreenDisabled', 'passCodeDisabled',
    'passcodeLockGracePeriodInSeconds', 'preferredLanguageScreenDisabled', 'restoreCompletedScreenDisabled', 'restoreFromAndroidDisabled',
    'sharedIPadMaximumUserCount', 'simSetupScreenDisabled', 'softwareUpdateScreenDisabled', 'temporarySessionTimeoutInSeconds',
    'updateCompleteScreenDisabled', 'userSessionTimeoutInSeconds', 'userlessSharedAadModeEnabled', 'watchMigrationScreenDisabled',
    'welcomeScreenDisabled', 'zoomDisabled',
  ];
  const MAC_PROPS = [
    'accessibilityScreenDisabled', 'adminAccountFullName', 'adminAccountPassword', 'adminAccountUserName', 'autoAdvanceSetupEnabled',
    'autoUnlockWithWatchDisabled', 'chooseYourLockScreenDisabled', 'depProfileAdminAccountPasswordRotationSetting',
    'dontAutoPopulatePrimaryAccountInfo', 'enableRestrictEditing', 'fileVaultDisabled', 'hideAdminAccount', 'iCloudDiagnosticsDisabled',
    'iCloudStorageDisabled', 'passCodeDisabled', 'primaryAccountFullName', 'primaryAccountUserName', 'registrationDisabled',
    'requestRequiresNetworkTether', 'setPrimarySetupAccountAsRegularUser', 'skipPrimarySetupAccountCreation',
    'usePlatformSSODuringSetupAssistant', 'zoomDisabled',
  ];

  it('iOS: every property of the type and its bases, nulls and [] as Graph returns them', () => {
    const e = toGraphEntity({ ...stored(parseProfileCreate(ios())), isDefault: true });
    expect(Object.keys(e).sort()).toEqual([...BASE, ...IOS_PROPS].sort());
    expect(e).toMatchObject({
      '@odata.type': IOS,
      isDefault: true,
      description: null,
      configurationEndpointUrl: null,
      managementCertificates: [],
      enabledSkipKeys: [],
      enrollmentTimeAzureAdGroupIds: [],
      passcodeLockGracePeriodInSeconds: null,
      carrierActivationUrl: null,
    });
  });

  it('macOS: every property; the admin password comes back null', () => {
    const w = parseProfileCreate(mac({ adminAccountUserName: 'itadmin', adminAccountPassword: 'secret secret', depProfileAdminAccountPasswordRotationSetting: { autoRotationPeriodInDays: 30 } }));
    const e = toGraphEntity(stored(w));
    expect(Object.keys(e).sort()).toEqual([...BASE, ...MAC_PROPS].sort());
    expect(e.adminAccountPassword).toBeNull();
    expect(e.depProfileAdminAccountPasswordRotationSetting).toEqual({
      '@odata.type': '#microsoft.graph.depProfileAdminAccountPasswordRotationSetting',
      autoRotationPeriodInDays: 30,
      depProfileDelayAutoRotationSetting: null,
    });
  });

  it('enabledSkipKeys lists the hidden panes', () => {
    const e = toGraphEntity(stored(parseProfileCreate(ios({ appleIdDisabled: true, restoreFromAndroidDisabled: true, expressLanguageScreenDisabled: true }))));
    expect(e.enabledSkipKeys).toEqual(['AppleID', 'Android', 'ExpressLanguage']);
  });

  it('what GET returns can be sent back as a PATCH or a create and changes nothing', () => {
    const bodies = [
      ios({ ...CP_AUTH, companyPortalVppTokenId: 'vpp-1', deviceNameTemplate: '{{SERIAL}}', siriDisabled: true }),
      ios({ ...SHARED, forceTemporarySession: true, temporarySessionTimeoutInSeconds: 120 }),
      mac({ requiresUserAuthentication: true, configurationWebUrl: true, adminAccountUserName: 'itadmin', primaryAccountUserName: '{{partialupn}}', fileVaultDisabled: true }),
    ];
    for (const body of bodies) {
      const s = stored(parseProfileCreate(body));
      const entity = toGraphEntity(s);
      const patched = parseProfilePatch(s, entity);
      expect(patched.settings).toEqual(s.settings);
      const { id: _id, ...createBody } = entity;
      expect(parseProfileCreate(createBody).settings).toEqual(s.settings);
    }
  });

  it('reads settings back from the store, filling properties added later', () => {
    const w = parseProfileCreate(ios({ siriDisabled: true }));
    const json = JSON.parse(JSON.stringify(w.settings)) as Record<string, unknown>;
    delete json.carrierActivationUrl;
    json.retiredProperty = 1;
    const s = readStoredSettings('iOS', JSON.stringify(json)) as IosProfileSettings;
    expect(s).toEqual(w.settings);
    const row = { id: 'p9', platform: 'macOS', display_name: 'Macs', description: null, settings: JSON.stringify({}) };
    const p = storedProfileFromRow(row, true);
    expect(p.platform).toBe('macOS');
    expect((p.settings as MacProfileSettings).adminAccountUserName).toBeNull();
    expect(() => storedProfileFromRow({ ...row, platform: 'tvOS' }, false)).toThrow(/platform/);
  });
});
