import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  changeTiming,
  compareAppleVersions,
  effectiveSupervised,
  isAtLeast,
  parseAppleVersion,
  parseProfileCreate,
  parseProfilePatch,
  profileChangeImpact,
  resolveAuthenticationMethod,
  setupAssistantPanes,
  sharedIPadApplies,
  singleAppModeApplies,
  type DepProfileContent,
  type StoredDepProfile,
} from '../../src/apple/ade/profiles/index.js';

const IOS = '#microsoft.graph.depIOSEnrollmentProfile';
const MAC = '#microsoft.graph.depMacOSEnrollmentProfile';
const ios = (over: Record<string, unknown> = {}): DepProfileContent => parseProfileCreate({ '@odata.type': IOS, displayName: 'iPhones', ...over });
const mac = (over: Record<string, unknown> = {}): DepProfileContent => parseProfileCreate({ '@odata.type': MAC, displayName: 'Macs', ...over });
const SHARED = { enableSharedIPad: true, sharedIPadMaximumUserCount: 8 };

describe('Apple versions', () => {
  it('parses what devices report', () => {
    expect(parseAppleVersion('13')).toEqual([13]);
    expect(parseAppleVersion('13.0')).toEqual([13]);
    expect(parseAppleVersion('13.0.0')).toEqual([13]);
    expect(parseAppleVersion('11.3.1')).toEqual([11, 3, 1]);
    expect(parseAppleVersion('17.4.1')).toEqual([17, 4, 1]);
    expect(parseAppleVersion(' 17.1 (a) ')).toEqual([17, 1]);
    expect(parseAppleVersion('10.14.4')).toEqual([10, 14, 4]);
    for (const bad of ['', 'x', '13.', '.13', '13..0', '13.0.0.0.0', '13.0-beta', '-1', null, undefined]) expect(parseAppleVersion(bad)).toBeNull();
  });

  it('compares numerically, missing parts as zero', () => {
    expect(compareAppleVersions('13', '13.0.0')).toBe(0);
    expect(compareAppleVersions('11.3.1', '11.3')).toBe(1);
    expect(compareAppleVersions('11.3', '11.3.1')).toBe(-1);
    expect(compareAppleVersions('10.15', '10.9')).toBe(1);
    expect(compareAppleVersions('17.4.1', '17.10')).toBe(-1);
    expect(() => compareAppleVersions('x', '1')).toThrow(/Not an Apple version/);
  });

  it('is a total order (antisymmetric, transitive, zero-padding invariant)', () => {
    const version = fc.array(fc.integer({ min: 0, max: 30 }), { minLength: 1, maxLength: 4 }).map((p) => p.join('.'));
    fc.assert(
      fc.property(version, version, version, (a, b, c) => {
        expect(compareAppleVersions(a, b)).toBe(-compareAppleVersions(b, a) || 0);
        if (compareAppleVersions(a, b) <= 0 && compareAppleVersions(b, c) <= 0) expect(compareAppleVersions(a, c)).toBeLessThanOrEqual(0);
        expect(compareAppleVersions(`${a}.0`.split('.').slice(0, 4).join('.'), a)).toBe(0);
      }),
    );
  });

  it('an unknown device version meets every minimum', () => {
    expect(isAtLeast(undefined, '13.0')).toBe(true);
    expect(isAtLeast('garbage', '13.0')).toBe(true);
    expect(isAtLeast('12.5.7', '13.0')).toBe(false);
  });
});

describe('supervision (checks 15, 2.2)', () => {
  const unsupervised = ios({ supervisedModeEnabled: false });
  it('iOS 13.0 and later are supervised whatever the profile says', () => {
    expect(effectiveSupervised(unsupervised, '12.5.7')).toBe(false);
    expect(effectiveSupervised(unsupervised, '12.9.9')).toBe(false);
    expect(effectiveSupervised(unsupervised, '13.0')).toBe(true);
    expect(effectiveSupervised(unsupervised, '17.4.1')).toBe(true);
    expect(effectiveSupervised(ios(), '9.3')).toBe(true);
    expect(effectiveSupervised(unsupervised, undefined)).toBe(false);
  });
  it('Macs from 10.14.4', () => {
    const m = mac({ supervisedModeEnabled: false });
    expect(effectiveSupervised(m, '10.14.3')).toBe(false);
    expect(effectiveSupervised(m, '10.14.4')).toBe(true);
    expect(effectiveSupervised(m, '14.5')).toBe(true);
  });
});

describe('authentication method (check 10)', () => {
  it('modern authentication falls back to legacy below iOS 13.0 and macOS 10.15', () => {
    const modern = ios({ requiresUserAuthentication: true, configurationWebUrl: true });
    expect(resolveAuthenticationMethod(modern, 'iOS', '12.5.7')).toBe('setupAssistantLegacy');
    expect(resolveAuthenticationMethod(modern, 'iOS', '13.0')).toBe('setupAssistantModern');
    expect(resolveAuthenticationMethod(modern, 'iOS', '13.0.1')).toBe('setupAssistantModern');
    const modernMac = mac({ requiresUserAuthentication: true, configurationWebUrl: true });
    expect(resolveAuthenticationMethod(modernMac, 'macOS', '10.14.6')).toBe('setupAssistantLegacy');
    expect(resolveAuthenticationMethod(modernMac, 'macOS', '10.15')).toBe('setupAssistantModern');
  });
  it('other methods need no fallback; Platform SSO falls back below macOS 26', () => {
    expect(resolveAuthenticationMethod(ios(), 'iOS', '9.0')).toBe('none');
    expect(resolveAuthenticationMethod(ios({ requiresUserAuthentication: true }), 'iOS', '16.0')).toBe('setupAssistantLegacy');
    expect(resolveAuthenticationMethod(ios({ requiresUserAuthentication: true, enableAuthenticationViaCompanyPortal: true }), 'iOS', '10.0')).toBe('companyPortal');
    const psso = mac({ requiresUserAuthentication: true, usePlatformSSODuringSetupAssistant: true });
    expect(resolveAuthenticationMethod(psso, 'macOS', '15.6')).toBe('setupAssistantLegacy');
    expect(resolveAuthenticationMethod(psso, 'macOS', '26.0')).toBe('platformSSO');
  });
});

describe('Single App Mode (check 12)', () => {
  const sam = ios({ requiresUserAuthentication: true, enableAuthenticationViaCompanyPortal: true, companyPortalVppTokenId: 'vpp', enableSingleAppEnrollmentMode: true });
  it('applies from iOS/iPadOS 11.3.1', () => {
    expect(singleAppModeApplies(sam, '11.3')).toBe(false);
    expect(singleAppModeApplies(sam, '11.3.0')).toBe(false);
    expect(singleAppModeApplies(sam, '11.3.1')).toBe(true);
    expect(singleAppModeApplies(sam, '11.4')).toBe(true);
    expect(singleAppModeApplies(ios(), '17.0')).toBe(false);
  });
});

describe('Shared iPad on a device (check 17)', () => {
  const shared = ios(SHARED);
  it('applies on iPads with iPadOS 13.4 or later, else needs a wipe', () => {
    expect(sharedIPadApplies(shared, 'iPad', '13.4')).toBe('applies');
    expect(sharedIPadApplies(shared, 'iPad', '17.4.1')).toBe('applies');
    expect(sharedIPadApplies(shared, 'iPad', '13.3.1')).toBe('wipeRequired');
    expect(sharedIPadApplies(shared, 'iPad', '13.3')).toBe('wipeRequired');
    expect(sharedIPadApplies(shared, 'iPhone', '17.0')).toBe('wipeRequired');
    expect(sharedIPadApplies(shared, 'iPod', '15.0')).toBe('wipeRequired');
    expect(sharedIPadApplies(shared, undefined, '17.0')).toBe('wipeRequired');
    expect(sharedIPadApplies(ios(), 'iPhone', '17.0')).toBe('notSharedIPad');
  });
});

describe('Setup Assistant panes (check 26)', () => {
  it('lists the 24 ADE panes first, each Hide or Show', () => {
    const panes = setupAssistantPanes(ios({ siriDisabled: true }));
    expect(panes.slice(0, 24).every((p) => p.pane.adePane)).toBe(true);
    expect(panes.filter((p) => p.hidden).map((p) => p.pane.name)).toEqual(['Siri']);
    expect(panes.find((p) => p.pane.name === 'Siri')?.reason).toBe('setting');
  });
  it('Shared iPad reports every pane skipped', () => {
    const panes = setupAssistantPanes(ios(SHARED));
    expect(panes.every((p) => p.hidden && p.reason === 'sharedIPad')).toBe(true);
  });
  it('macOS lists its own panes', () => {
    expect(setupAssistantPanes(mac({ fileVaultDisabled: true })).filter((p) => p.hidden).map((p) => p.pane.skipKey)).toEqual(['FileVault']);
  });
});

describe('edit semantics (check 25)', () => {
  const before = ios({ deviceNameTemplate: '{{SERIAL}}', supportDepartment: 'IT' });
  const stored = { ...before, id: 'p', isDefault: false } as StoredDepProfile;
  const after = (body: Record<string, unknown>) => parseProfilePatch(stored, body);

  it('a device name template change reaches devices at their next check-in, without a reset', () => {
    const impact = profileChangeImpact(before, after({ deviceNameTemplate: '{{DEVICETYPE}}-{{SERIAL}}' }));
    expect(impact).toMatchObject({ changed: ['deviceNameTemplate'], appliesAtNextCheckIn: ['deviceNameTemplate'], appliesAfterReset: [], marksDevicesPendingReset: false });
    expect(impact.appleProfileChanged).toBe(false);
  });

  it('any other setting waits for a reset and marks devices pending', () => {
    for (const body of [{ siriDisabled: true }, { supervisedModeEnabled: false }, { supportDepartment: 'Help desk' }, { enrollmentTimeAzureAdGroupIds: ['00000000-0000-0000-0000-000000000001'] }, { isMandatory: false }]) {
      const impact = profileChangeImpact(before, after(body));
      expect(impact.appliesAfterReset).toEqual(Object.keys(body));
      expect(impact.marksDevicesPendingReset).toBe(true);
    }
    expect(profileChangeImpact(before, after({ siriDisabled: true })).appleProfileChanged).toBe(true);
    expect(profileChangeImpact(before, after({ enrollmentTimeAzureAdGroupIds: ['00000000-0000-0000-0000-000000000001'] })).appleProfileChanged).toBe(false);
  });

  it('name and description are admin-only; the name is Apple profile_name', () => {
    const renamed = profileChangeImpact(before, after({ displayName: 'Renamed' }));
    expect(renamed).toMatchObject({ adminOnly: ['displayName'], marksDevicesPendingReset: false, appleProfileChanged: true });
    const described = profileChangeImpact(before, after({ description: 'for sales' }));
    expect(described).toMatchObject({ adminOnly: ['description'], marksDevicesPendingReset: false, appleProfileChanged: false });
  });

  it('no change, no impact; a new admin password waits for a reset', () => {
    expect(profileChangeImpact(before, after({}))).toMatchObject({ changed: [], marksDevicesPendingReset: false, appleProfileChanged: false });
    const m = mac({ adminAccountUserName: 'itadmin' });
    expect(profileChangeImpact(m, m, true)).toMatchObject({ changed: ['adminAccountPassword'], marksDevicesPendingReset: true });
    expect(changeTiming('deviceNameTemplate')).toBe('nextCheckIn');
    expect(() => profileChangeImpact(ios(), mac())).toThrow(/platform/);
  });
});
