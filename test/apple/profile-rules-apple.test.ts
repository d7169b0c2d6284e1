import { webcrypto } from 'node:crypto';
import fs from 'node:fs';
import * as x509 from '@peculiar/x509';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  APPLE_PROFILE_SCHEMA,
  APPLE_SKIP_KEYS,
  checkAppleProfile,
  IOS_ADE_PANES,
  panesFor,
  parseAppleVersion,
  parseProfileCreate,
  SETUP_PANES,
  toAppleProfile,
  type AppleProfileOptions,
  type DepProfileContent,
} from '../../src/apple/ade/profiles/index.js';

x509.cryptoProvider.set('default', webcrypto as never);

const FIXTURES = new URL('../fixtures/public/apple/', import.meta.url);
const fixture = (name: string): unknown => {
  const file = new URL(name, FIXTURES);
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : undefined;
};
// The shared spec sits beside the repository in development; CI clones only the repository.
const fixtureSchema = fixture('schema-dep-Profile.json') as Record<string, unknown> | undefined;
const withFixtures = fixtureSchema ? it : it.skip;

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));
const appleSchemaCheck = ajv.compile(fixtureSchema ?? APPLE_PROFILE_SCHEMA);

const OPTIONS: AppleProfileOptions = {
  serverUrl: 'https://mdm.contoso.example',
  enrollmentUrl: '/apple/ade/enroll',
  configurationWebUrl: '/apple/ade/sign-in',
  orgMagic: '8d4b3b5e-5c0e-4a52-8a0f-2f9d4a1f3c11',
};

const IOS = '#microsoft.graph.depIOSEnrollmentProfile';
const MAC = '#microsoft.graph.depMacOSEnrollmentProfile';
const ios = (over: Record<string, unknown> = {}): DepProfileContent => parseProfileCreate({ '@odata.type': IOS, displayName: 'iPhones', ...over });
const mac = (over: Record<string, unknown> = {}): DepProfileContent => parseProfileCreate({ '@odata.type': MAC, displayName: 'Macs', ...over });

function apple(content: DepProfileContent, options: AppleProfileOptions = OPTIONS) {
  const p = toAppleProfile(content, options);
  expect(appleSchemaCheck(p), JSON.stringify(appleSchemaCheck.errors)).toBe(true);
  expect(checkAppleProfile(p)).toEqual([]);
  return p;
}

async function selfSigned(cn: string): Promise<Buffer> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '0b',
    name: `CN=${cn}`,
    notBefore: new Date('2024-01-01T00:00:00Z'),
    notAfter: new Date('2034-01-01T00:00:00Z'),
    signingAlgorithm: alg,
    keys,
  });
  return Buffer.from(cert.rawData);
}

let configurator: Buffer;
let orgHost: Buffer;
let anchor: Buffer;
beforeAll(async () => {
  [configurator, orgHost, anchor] = await Promise.all([selfSigned('Configurator'), selfSigned('Org host'), selfSigned('Anchor')]);
});

describe('Setup Assistant panes table', () => {
  it('has the 24 iOS/iPadOS ADE panes of the article, in its order', () => {
    expect(IOS_ADE_PANES.map((p) => p.name)).toEqual([
      'Passcode', 'Location Services', 'Restore', 'Apple ID', 'Terms and conditions', 'Touch ID and Face ID', 'Apple Pay', 'Zoom', 'Siri',
      'Diagnostics Data', 'Display Tone', 'Privacy', 'Android Migration', 'iMessage & FaceTime', 'Onboarding', 'Screen Time', 'SIM Setup',
      'Software Update', 'Watch Migration', 'Appearance', 'Device to Device Migration', 'Restore Completed', 'Software Update Completed', 'Get Started',
    ]);
    expect(IOS_ADE_PANES.every((p) => p.platforms.includes('iOS'))).toBe(true);
  });

  it('maps every Graph pane boolean to the skip key of graph-enrollment-api §3.5', () => {
    const expected: Record<string, string> = {
      locationDisabled: 'Location', restoreBlocked: 'Restore', appleIdDisabled: 'AppleID', termsAndConditionsDisabled: 'TOS', touchIdDisabled: 'Biometric',
      applePayDisabled: 'Payment', siriDisabled: 'Siri', diagnosticsDisabled: 'Diagnostics', displayToneSetupDisabled: 'DisplayTone',
      privacyPaneDisabled: 'Privacy', screenTimeScreenDisabled: 'ScreenTime', passCodeDisabled: 'Passcode', zoomDisabled: 'Zoom',
      restoreFromAndroidDisabled: 'Android', homeButtonScreenDisabled: 'HomeButtonSensitivity', iMessageAndFaceTimeScreenDisabled: 'iMessageAndFaceTime',
      onBoardingScreenDisabled: 'OnBoarding', simSetupScreenDisabled: 'SIMSetup', softwareUpdateScreenDisabled: 'SoftwareUpdate',
      watchMigrationScreenDisabled: 'WatchMigration', appearanceScreenDisabled: 'Appearance', expressLanguageScreenDisabled: 'ExpressLanguage',
      preferredLanguageScreenDisabled: 'PreferredLanguage', deviceToDeviceMigrationDisabled: 'DeviceToDeviceMigration', welcomeScreenDisabled: 'Welcome',
      restoreCompletedScreenDisabled: 'RestoreCompleted', updateCompleteScreenDisabled: 'UpdateCompleted', registrationDisabled: 'Registration',
      fileVaultDisabled: 'FileVault', iCloudDiagnosticsDisabled: 'iCloudDiagnostics', iCloudStorageDisabled: 'iCloudStorage',
      accessibilityScreenDisabled: 'Accessibility', autoUnlockWithWatchDisabled: 'UnlockWithWatch', chooseYourLockScreenDisabled: 'Wallpaper',
    };
    expect(Object.fromEntries(SETUP_PANES.map((p) => [p.property, p.skipKey]))).toEqual(expected);
    expect(panesFor('iOS')).toHaveLength(27);
    expect(panesFor('macOS')).toHaveLength(20);
    for (const platform of ['iOS', 'macOS'] as const) {
      const keys = panesFor(platform).map((p) => p.skipKey);
      expect(new Set(keys).size).toBe(keys.length);
    }
  });

  it('uses Apple skip keys, except three Apple no longer lists', () => {
    expect(APPLE_SKIP_KEYS.size).toBe(52);
    expect(SETUP_PANES.filter((p) => !APPLE_SKIP_KEYS.has(p.skipKey)).map((p) => p.skipKey)).toEqual(['ExpressLanguage', 'PreferredLanguage', 'Registration']);
  });

  it('minimum versions are Apple versions on the platforms that carry the pane', () => {
    for (const p of SETUP_PANES) {
      for (const v of [p.iosMinimum, p.macosMinimum]) if (v !== null) expect(parseAppleVersion(v), `${p.name} ${v}`).not.toBeNull();
      if (p.iosMinimum) expect(p.platforms).toContain('iOS');
      if (p.macosMinimum) expect(p.platforms).toContain('macOS');
    }
    expect(SETUP_PANES.find((p) => p.property === 'touchIdDisabled')).toMatchObject({ iosMinimum: '8.1', macosMinimum: '10.12.4' });
    expect(SETUP_PANES.find((p) => p.property === 'displayToneSetupDisabled')).toMatchObject({ iosMinimum: '9.3.2', macosMinimum: '10.13.6' });
  });
});

describe("Apple's Profile schema", () => {
  withFixtures('our copy has the structure of the fixture', () => {
    const strip = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(strip);
      if (v === null || typeof v !== 'object') return v;
      return Object.fromEntries(
        Object.entries(v)
          .filter(([k]) => !['description', 'examples', '$comment'].includes(k) && !k.startsWith('x-'))
          .map(([k, x]) => [k, strip(x)]),
      );
    };
    expect(strip(APPLE_PROFILE_SCHEMA)).toEqual(strip(fixtureSchema));
  });

  it('checkAppleProfile agrees with Ajv on schema violations', () => {
    const bad: unknown[] = [
      {},
      { is_mdm_removable: 'yes', org_magic: 'x' },
      { is_mdm_removable: true, org_magic: 1 },
      { is_mdm_removable: true, org_magic: 'x', language: 'e' },
      { is_mdm_removable: true, org_magic: 'x', region: 'USA' },
      { is_mdm_removable: true, org_magic: 'x', url: 'not a uri' },
      { is_mdm_removable: true, org_magic: 'x', skip_setup_items: [1] },
      { is_mdm_removable: true, org_magic: 'x', support_email_address: 'nobody' },
    ];
    for (const p of bad) {
      expect(appleSchemaCheck(p), JSON.stringify(p)).toBe(false);
      expect(checkAppleProfile(p).length, JSON.stringify(p)).toBeGreaterThan(0);
    }
  });

  it('adds what the descriptions and Apple\'s errors say', () => {
    const base = { profile_name: 'x', url: 'https://mdm.example.com/enroll', is_mdm_removable: true, org_magic: 'o' };
    expect(checkAppleProfile(base)).toEqual([]);
    expect(checkAppleProfile({ ...base, is_mdm_removable: false })).toContain('is_mdm_removable can be false only when is_supervised is true');
    expect(checkAppleProfile({ ...base, is_mdm_removable: false, is_supervised: true })).toEqual([]);
    expect(checkAppleProfile({ ...base, skip_setup_items: ['Registration'] })[0]).toMatch(/unknown keys: Registration/);
    expect(checkAppleProfile({ ...base, url: 'http://mdm.example.com/enroll' })[0]).toMatch(/https/);
    expect(checkAppleProfile({ ...base, profile_name: 'n'.repeat(126) })[0]).toMatch(/profile_name/);
    expect(checkAppleProfile({ ...base, supervising_host_certs: ['AAAA'] })[0]).toMatch(/supervising_host_certs\[0\]/);
    expect(checkAppleProfile({ ...base, frobnicate: 1 })[0]).toMatch(/not a Profile key/);
  });

  withFixtures("the fixtures are valid apart from their '(Optional) …' placeholders", () => {
    const define = fixture('dep-define-profile-request.example.json') as Record<string, unknown>;
    const problems = checkAppleProfile(define);
    expect(problems.length).toBeGreaterThan(0);
    const cleaned = {
      ...define,
      configuration_web_url: 'https://sso.example.com/?redirect=enroll',
      department: 'support@example.com',
      language: 'en',
      org_magic: 'org',
      region: 'US',
      support_phone_number: '+1 408 555 1010',
      support_email_address: 'support@example.com',
    };
    expect(checkAppleProfile(cleaned)).toEqual([]);
    expect(appleSchemaCheck(cleaned)).toBe(true);
    const got = fixture('dep-get-profile-response.json') as Record<string, unknown>;
    expect(checkAppleProfile({ ...got, support_email_address: 'support@example.com' })).toEqual([]);
  });
});

describe('toAppleProfile', () => {
  it('maps a minimal profile', () => {
    expect(apple(ios())).toEqual({
      profile_name: 'iPhones',
      url: 'https://mdm.contoso.example/apple/ade/enroll',
      allow_pairing: true,
      is_supervised: true,
      is_mandatory: true,
      is_mdm_removable: true,
      is_multi_user: false,
      await_device_configured: false,
      org_magic: OPTIONS.orgMagic,
      skip_setup_items: [],
    });
  });

  withFixtures("maps the Graph equivalent of the fixture's example to the fixture's values", () => {
    const example = fixture('dep-define-profile-request.example.json') as Record<string, unknown>;
    const content = ios({
      displayName: 'Human readable name',
      supervisedModeEnabled: false,
      isMandatory: false,
      profileRemovalDisabled: false,
      iTunesPairingMode: 'allow',
      awaitDeviceConfiguredConfirmation: false,
      appleIdDisabled: true,
      restoreFromAndroidDisabled: true,
    });
    const p = apple(content, { ...OPTIONS, serverUrl: 'https://mymdm.example.org', enrollmentUrl: '/mdm/enroll' });
    for (const k of ['url', 'allow_pairing', 'await_device_configured', 'is_supervised', 'is_multi_user', 'is_mandatory', 'is_mdm_removable', 'skip_setup_items'] as const) {
      expect(p[k], k).toEqual(example[k]);
    }
    expect(p.profile_name).toBe('Human readable name');
  });

  it('sends configuration_web_url only for modern authentication', () => {
    expect(apple(ios({ requiresUserAuthentication: true, configurationWebUrl: true })).configuration_web_url).toBe('https://mdm.contoso.example/apple/ade/sign-in');
    expect(apple(mac({ requiresUserAuthentication: true, configurationWebUrl: true })).configuration_web_url).toBe('https://mdm.contoso.example/apple/ade/sign-in');
    for (const c of [
      ios({ requiresUserAuthentication: true }),
      ios({ requiresUserAuthentication: true, enableAuthenticationViaCompanyPortal: true }),
      ios(),
      mac({ requiresUserAuthentication: true, usePlatformSSODuringSetupAssistant: true }),
    ]) {
      expect(apple(c)).not.toHaveProperty('configuration_web_url');
    }
  });

  it('locked enrollment makes the MDM profile non-removable on a supervised device', () => {
    expect(apple(ios({ profileRemovalDisabled: true }))).toMatchObject({ is_mdm_removable: false, is_supervised: true });
    expect(apple(ios({ supervisedModeEnabled: false }))).toMatchObject({ is_mdm_removable: true, is_supervised: false });
  });

  it('Shared iPad is is_multi_user and skips every pane Apple knows', () => {
    const p = apple(ios({ enableSharedIPad: true, sharedIPadMaximumUserCount: 10, siriDisabled: true }));
    expect(p.is_multi_user).toBe(true);
    expect(new Set(p.skip_setup_items)).toEqual(new Set(panesFor('iOS').map((x) => x.skipKey).filter((k) => APPLE_SKIP_KEYS.has(k))));
  });

  it('sends the hidden panes Apple knows', () => {
    const p = apple(ios({ appleIdDisabled: true, expressLanguageScreenDisabled: true, welcomeScreenDisabled: true }));
    expect(p.skip_setup_items).toEqual(['AppleID', 'Welcome']);
    expect(apple(mac({ registrationDisabled: true, fileVaultDisabled: true, chooseYourLockScreenDisabled: true })).skip_setup_items).toEqual(['FileVault', 'Wallpaper']);
  });

  it('Sync with computers: allow, deny, or Apple Configurator by certificate', () => {
    const hosts = { ...OPTIONS, supervisingHostCertsDer: [orgHost] };
    const allow = apple(ios({ iTunesPairingMode: 'allow' }), hosts);
    expect(allow).toMatchObject({ allow_pairing: true, supervising_host_certs: [orgHost.toString('base64')] });
    expect(apple(ios({ iTunesPairingMode: 'allow' }))).not.toHaveProperty('supervising_host_certs');
    const deny = apple(ios({ iTunesPairingMode: 'disallow' }), hosts);
    expect(deny.allow_pairing).toBe(false);
    expect(deny).not.toHaveProperty('supervising_host_certs');
    const byCert = apple(ios({ iTunesPairingMode: 'requiresCertificate', managementCertificates: [{ certificate: configurator.toString('base64') }] }), hosts);
    expect(byCert).toMatchObject({ allow_pairing: false, supervising_host_certs: [configurator.toString('base64'), orgHost.toString('base64')] });
  });

  it('department, phone, await, anchors; macOS language, region and auto advance', () => {
    const p = apple(ios({ supportDepartment: 'IT', supportPhoneNumber: '+1 555 0100', awaitDeviceConfiguredConfirmation: true }), { ...OPTIONS, anchorCertsDer: [anchor], language: 'en', region: 'US' });
    expect(p).toMatchObject({ department: 'IT', support_phone_number: '+1 555 0100', await_device_configured: true, anchor_certs: [anchor.toString('base64')] });
    expect(p).not.toHaveProperty('language');
    const m = apple(mac({ autoAdvanceSetupEnabled: true, waitForDeviceConfiguredConfirmation: true }), { ...OPTIONS, language: 'en', region: 'US' });
    expect(m).toMatchObject({ auto_advance_setup: true, await_device_configured: true, language: 'en', region: 'US' });
    expect(m).not.toHaveProperty('allow_pairing');
    expect(m).not.toHaveProperty('is_multi_user');
  });

  it('refuses options a device could not use', () => {
    expect(() => toAppleProfile(ios(), { ...OPTIONS, serverUrl: 'http://mdm.contoso.example' })).toThrow(/https/);
    expect(() => toAppleProfile(ios(), { ...OPTIONS, enrollmentUrl: 'http://elsewhere.example/enroll' })).toThrow(/https/);
    expect(() => toAppleProfile(mac(), { ...OPTIONS, language: 'english' })).toThrow(/language/);
  });

  it('derives a stable org_magic from the server when none is given', () => {
    const { orgMagic: _o, ...rest } = OPTIONS;
    const a = apple(ios(), rest).org_magic;
    expect(a).toMatch(/^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/);
    expect(apple(mac(), rest).org_magic).toBe(a);
  });
});
