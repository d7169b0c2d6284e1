import { describe, expect, it } from 'vitest';
import {
  classifyOwnership,
  ENROLLMENT_REASON_CODES,
  ENROLLMENT_REASONS,
  evaluateEnrollment,
  type AppliedPolicy,
  type CountedDevice,
  type DeviceLimitPolicy,
  type EnrollmentFacts,
  type EnrollmentMethod,
  type PlatformRestriction,
  type PlatformRestrictionPolicy,
  type PolicyAssignment,
  type RestrictionPlatform,
  type RestrictionPolicy,
} from '../../src/enrollment-policy/evaluation/index.js';

const NOW = '2024-06-01T12:00:00.000Z';
const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;
const ago = (ms: number) => new Date(Date.parse(NOW) - ms).toISOString();

type FactsOverrides = Omit<Partial<EnrollmentFacts>, 'device' | 'user'> & {
  device?: Partial<EnrollmentFacts['device']>;
  user?: Partial<NonNullable<EnrollmentFacts['user']>> | null;
};

function facts(o: FactsOverrides = {}): EnrollmentFacts {
  const { device, user, ...rest } = o;
  return {
    tenantId: 't1',
    now: NOW,
    platform: 'ios',
    method: 'appleCompanyPortal',
    userDriven: true,
    user: user === null ? undefined : { id: 'u1', userPrincipalName: 'joe@contoso.com', groupIds: [], isDeviceEnrollmentManager: false, ...user },
    device: { osVersion: '17.1', manufacturer: 'Apple', model: 'iPhone 15', matchesCorporateIdentifier: false, ...device },
    ...rest,
  };
}

const ALL_PLATFORMS: RestrictionPlatform[] = ['ios', 'mac', 'windows', 'windowsPhone', 'android', 'androidForWork', 'linux'];
const allow = (over: Partial<PlatformRestriction> = {}): PlatformRestriction => ({ platformBlocked: false, personalDeviceEnrollmentBlocked: false, ...over });

function defaultPlatform(over: Partial<Record<RestrictionPlatform, Partial<PlatformRestriction>>> = {}): PlatformRestrictionPolicy {
  return {
    id: 'default-platform',
    displayName: 'All users and all devices',
    priority: 0,
    isDefault: true,
    assignments: [],
    type: 'platformRestriction',
    restrictions: Object.fromEntries(ALL_PLATFORMS.map((p) => [p, allow(over[p])])),
  };
}

function platformPolicy(
  id: string,
  priority: number,
  restrictions: Partial<Record<RestrictionPlatform, Partial<PlatformRestriction>>>,
  assignments: PolicyAssignment[],
): PlatformRestrictionPolicy {
  return {
    id,
    displayName: id,
    priority,
    isDefault: false,
    assignments,
    type: 'platformRestriction',
    restrictions: Object.fromEntries(Object.entries(restrictions).map(([p, r]) => [p, allow(r)])),
  };
}

const defaultLimit = (limit = 5): DeviceLimitPolicy => ({
  id: 'default-limit',
  displayName: 'All users and all devices',
  priority: 0,
  isDefault: true,
  assignments: [],
  type: 'limit',
  limit,
});
const limitPolicy = (id: string, priority: number, limit: number, assignments: PolicyAssignment[]): DeviceLimitPolicy => ({
  id,
  displayName: id,
  priority,
  isDefault: false,
  assignments,
  type: 'limit',
  limit,
});

const group = (groupId: string): PolicyAssignment => ({ target: { kind: 'group', groupId } });
const exclude = (groupId: string): PolicyAssignment => ({ target: { kind: 'exclusionGroup', groupId } });
const allUsers: PolicyAssignment = { target: { kind: 'allUsers' } };
const allDevices: PolicyAssignment = { target: { kind: 'allDevices' } };
const withFilter = (a: PolicyAssignment, rule: string, mode: 'include' | 'exclude', id = 'f1'): PolicyAssignment => ({
  ...a,
  filter: { id, displayName: id, mode, rule },
});

function counted(id: string, over: Partial<CountedDevice> = {}): CountedDevice {
  return {
    id,
    enrolledDateTime: ago(30 * DAY),
    lastContactDateTime: ago(DAY),
    registrationPending: false,
    sharedMode: false,
    deleted: false,
    ...over,
  };
}
const devices = (n: number, over: Partial<CountedDevice> = {}) => Array.from({ length: n }, (_, i) => counted(`d${i}`, over));

// The chosen policy of a type is its last snapshot entry (filtered-out better-priority ones come first).
const chosenId = (applied: AppliedPolicy[], type: AppliedPolicy['type']) => applied.filter((a) => a.type === type).at(-1)?.policyId;

const base = (...extra: RestrictionPolicy[]): RestrictionPolicy[] => [defaultPlatform(), defaultLimit(), ...extra];

describe('policy selection (-E §7.3, §9 step 2)', () => {
  it('Joe in Group A (priority 5) and Group B (priority 2) gets only the priority 2 policy, not merged', () => {
    const a = platformPolicy('group-a', 5, { ios: { platformBlocked: true } }, [group('A')]);
    const b = platformPolicy('group-b', 2, { ios: { personalDeviceEnrollmentBlocked: false } }, [group('B')]);
    const joe = facts({ user: { groupIds: ['A', 'B'] } });
    const d = evaluateEnrollment(joe, base(a, b));
    expect(d.allowed).toBe(true);
    expect(chosenId(d.applied, 'platformRestriction')).toBe('group-b');
    expect(d.applied.filter((x) => x.type === 'platformRestriction')).toHaveLength(1);

    // The other way round: the priority 2 policy blocks, the priority 5 one would allow.
    const a2 = platformPolicy('group-a', 5, { ios: {} }, [group('A')]);
    const b2 = platformPolicy('group-b', 2, { ios: { platformBlocked: true } }, [group('B')]);
    const d2 = evaluateEnrollment(joe, base(a2, b2));
    expect(d2).toMatchObject({ allowed: false, reason: 'devicePlatformBlocked' });
    expect(d2.detail).toContain("'group-b'");
  });

  it('a user in no assigned group gets the default', () => {
    const p = platformPolicy('p1', 1, { ios: { platformBlocked: true } }, [group('A')]);
    const d = evaluateEnrollment(facts({ user: { groupIds: ['Z'] } }), base(p));
    expect(d.allowed).toBe(true);
    expect(d.applied).toEqual([
      { policyId: 'default-platform', displayName: 'All users and all devices', type: 'platformRestriction', priority: 0, isDefault: true, target: 'default', state: 'succeeded' },
      { policyId: 'default-limit', displayName: 'All users and all devices', type: 'limit', priority: 0, isDefault: true, target: 'default', state: 'succeeded' },
    ]);
  });

  it('a restriction with no assignments never applies', () => {
    const p = platformPolicy('p1', 1, { ios: { platformBlocked: true } }, []);
    expect(evaluateEnrollment(facts({ user: { groupIds: ['A'] } }), base(p)).allowed).toBe(true);
  });

  it('"all users" applies to any user-driven enrollment', () => {
    const p = platformPolicy('p1', 1, { ios: { platformBlocked: true } }, [allUsers]);
    const d = evaluateEnrollment(facts(), base(p));
    expect(d.reason).toBe('devicePlatformBlocked');
    expect(d.applied[0]).toMatchObject({ policyId: 'p1', target: 'allUsers', state: 'failed', priority: 1, isDefault: false });
  });

  it('"all devices" applies to user-driven enrollments only', () => {
    const p = platformPolicy('p1', 1, { windows: { platformBlocked: true } }, [allDevices]);
    const win = { platform: 'windows' as const, method: 'windowsAddWorkAccount' as const, device: { osVersion: '10.0.22631.1' } };
    expect(evaluateEnrollment(facts(win), base(p)).applied[0]).toMatchObject({ policyId: 'p1', target: 'allDevices' });
    const selfDeploying = facts({ ...win, method: 'windowsAutopilotSelfDeploying', userDriven: false, user: null });
    expect(evaluateEnrollment(selfDeploying, base(p)).allowed).toBe(true);
  });

  it('an exclusion group wins over every inclusion', () => {
    const p = platformPolicy('p1', 1, { ios: { platformBlocked: true } }, [allUsers, group('A'), exclude('X')]);
    expect(evaluateEnrollment(facts({ user: { groupIds: ['A', 'X'] } }), base(p)).allowed).toBe(true);
    expect(evaluateEnrollment(facts({ user: { groupIds: ['A'] } }), base(p)).allowed).toBe(false);
  });

  it.each<[EnrollmentMethod, RestrictionPlatform]>([
    ['windowsAutopilotSelfDeploying', 'windows'],
    ['windowsBulk', 'windows'],
    ['windowsAzureVirtualDesktop', 'windows'],
    ['windowsCoManagement', 'windows'],
    ['appleAde', 'ios'],
  ])('not user-driven (%s) uses only the default policies, even for a user in assigned groups', (method, platform) => {
    const p = platformPolicy('p1', 1, { [platform]: { platformBlocked: true } }, [allUsers, group('A')]);
    const l = limitPolicy('l1', 1, 1, [allUsers]);
    const d = evaluateEnrollment(facts({ platform, method, userDriven: false, user: { groupIds: ['A'] }, device: { osVersion: '10.0.22631.1' } }), base(p, l));
    expect(d.allowed).toBe(true);
    expect(d.applied.every((a) => a.isDefault)).toBe(true);
  });

  it('platform restriction policies apply to their own platform tab only', () => {
    const ios = platformPolicy('ios-block', 1, { ios: { platformBlocked: true } }, [allUsers]);
    const d = evaluateEnrollment(facts({ platform: 'windows', method: 'windowsAddWorkAccount', device: { osVersion: '10.0.22631.1' } }), base(ios));
    expect(d.allowed).toBe(true);
    expect(chosenId(d.applied, 'platformRestriction')).toBe('default-platform');
  });

  it('the Android tab holds device administrator and work profile together', () => {
    const android = platformPolicy('android', 1, { android: { platformBlocked: true }, androidForWork: {} }, [allUsers]);
    const d = evaluateEnrollment(
      facts({ platform: 'android', method: 'androidCompanyPortal', device: { osVersion: '13', manufacturer: 'Google', supportsWorkProfile: false } }),
      base(android),
    );
    expect(d).toMatchObject({ allowed: false, reason: 'devicePlatformBlocked', androidRoute: 'deviceAdministrator' });
    expect(chosenId(d.applied, 'platformRestriction')).toBe('android');
  });

  it('device limit policies are chosen independently of platform policies', () => {
    const p = platformPolicy('p1', 1, { ios: {} }, [group('A')]);
    const l5 = limitPolicy('l-five', 5, 10, [group('A')]);
    const l2 = limitPolicy('l-two', 2, 1, [group('B')]);
    const d = evaluateEnrollment(facts({ user: { groupIds: ['A', 'B'] }, userDevices: devices(1) }), base(p, l5, l2));
    expect(d).toMatchObject({ allowed: false, reason: 'deviceLimitReached', deviceLimit: { policyId: 'l-two', limit: 1, counted: 1 } });
    expect(chosenId(d.applied, 'platformRestriction')).toBe('p1');
    expect(chosenId(d.applied, 'limit')).toBe('l-two');
  });

  it('with no policies at all nothing is applied and nothing blocks', () => {
    expect(evaluateEnrollment(facts({ userDevices: devices(50) }), [])).toEqual({ allowed: true, ownership: 'personal', applied: [] });
  });
});

describe('assignment filters in selection (-E §6.5)', () => {
  const win = (sku: string): FactsOverrides => ({
    platform: 'windows',
    method: 'windowsAddWorkAccount',
    device: { osVersion: '10.0.19045.3570', filterProperties: { operatingSystemSKU: sku } },
  });
  const policies = () =>
    base(
      platformPolicy('Allow personal except Home', 1, { windows: {} }, [withFilter(allUsers, '(device.operatingSystemSKU -eq "Core")', 'exclude')]),
    ).map((p) => (p.isDefault && p.type === 'platformRestriction' ? defaultPlatform({ windows: { personalDeviceEnrollmentBlocked: true } }) : p));

  it('a Windows restriction allowing personal devices, with a filter excluding Home: a Windows 10 Home device is blocked', () => {
    const home = evaluateEnrollment(facts(win('Core')), policies());
    expect(home).toMatchObject({ allowed: false, reason: 'windowsEnrollmentNotAuthorized' });
    expect(home.applied.filter((a) => a.type === 'platformRestriction')).toEqual([
      {
        policyId: 'Allow personal except Home',
        displayName: 'Allow personal except Home',
        type: 'platformRestriction',
        priority: 1,
        isDefault: false,
        target: 'allUsers',
        filterResult: { filterId: 'f1', mode: 'exclude', matched: true },
        state: 'notApplicable',
      },
      expect.objectContaining({ policyId: 'default-platform', state: 'failed', target: 'default' }),
    ]);

    const pro = evaluateEnrollment(facts(win('Professional')), policies());
    expect(pro.allowed).toBe(true);
    expect(pro.applied[0]).toMatchObject({ policyId: 'Allow personal except Home', state: 'succeeded', filterResult: { matched: false, mode: 'exclude' } });
  });

  it('an include filter must match', () => {
    const p = platformPolicy('iPads', 1, { ios: { platformBlocked: true } }, [withFilter(allUsers, '(device.model -startsWith "iPad")', 'include')]);
    expect(evaluateEnrollment(facts({ device: { model: 'iPad Pro' } }), base(p)).reason).toBe('devicePlatformBlocked');
    const phone = evaluateEnrollment(facts({ device: { model: 'iPhone 15' } }), base(p));
    expect(phone.allowed).toBe(true);
    expect(phone.applied[0]).toMatchObject({ policyId: 'iPads', state: 'notApplicable', filterResult: { matched: false, mode: 'include' } });
  });

  it('filters see the computed ownership and the enrollment profile name', () => {
    const corporateOnly = platformPolicy('corp', 1, { ios: { platformBlocked: true } }, [withFilter(allUsers, 'device.deviceOwnership -eq "Corporate"', 'include')]);
    expect(evaluateEnrollment(facts({ device: { matchesCorporateIdentifier: true } }), base(corporateOnly)).reason).toBe('devicePlatformBlocked');
    expect(evaluateEnrollment(facts(), base(corporateOnly)).allowed).toBe(true);

    const byProfile = platformPolicy('kiosk', 1, { ios: { platformBlocked: true } }, [withFilter(allUsers, 'device.enrollmentProfileName -eq "Kiosk"', 'include')]);
    expect(evaluateEnrollment(facts({ device: { filterProperties: { enrollmentProfileName: 'kiosk' } } }), base(byProfile)).allowed).toBe(false);
    expect(evaluateEnrollment(facts(), base(byProfile)).allowed).toBe(true);
  });

  it('another assignment of the same policy can still apply when one filter leaves the device out', () => {
    const p = platformPolicy('p1', 1, { ios: { platformBlocked: true } }, [withFilter(allUsers, 'device.model -eq "none"', 'include'), group('A')]);
    const d = evaluateEnrollment(facts({ user: { groupIds: ['A'] } }), base(p));
    expect(d.applied[0]).toMatchObject({ policyId: 'p1', target: { groupId: 'A' }, state: 'failed' });
    expect(d.applied[0]!.filterResult).toBeUndefined();
  });

  it('filters are ignored on Android restrictions, which can\'t use them', () => {
    const p = platformPolicy('android', 1, { android: { platformBlocked: true }, androidForWork: { platformBlocked: true } }, [
      withFilter(allUsers, 'device.model -eq "nothing"', 'include'),
    ]);
    const d = evaluateEnrollment(facts({ platform: 'android', method: 'androidCompanyPortal', device: { osVersion: '13' } }), base(p));
    expect(d.reason).toBe('devicePlatformBlocked');
    expect(d.applied[0]!.filterResult).toBeUndefined();
  });

  it('a stored rule the platform can\'t use skips the assignment and records why', () => {
    const p = platformPolicy('p1', 1, { windows: { platformBlocked: true } }, [withFilter(allUsers, 'device.model -eq "Surface"', 'exclude')]);
    const d = evaluateEnrollment(facts({ platform: 'windows', method: 'windowsAddWorkAccount', device: { osVersion: '10.0.22631.1' } }), base(p));
    expect(d.allowed).toBe(true);
    expect(d.applied[0]).toMatchObject({ policyId: 'p1', state: 'notApplicable', filterResult: { matched: false, error: expect.stringContaining('device.model') } });
  });
});

describe('ownership (-E §5.3, -A §8)', () => {
  const own = (o: FactsOverrides) => classifyOwnership(facts(o)).ownership;

  it('iOS/iPadOS: personal unless ADE, ASM, Apple Configurator, or a serial number or IMEI identifier', () => {
    expect(own({})).toBe('personal');
    for (const method of ['appleAde', 'appleAsm', 'appleConfigurator', 'appleDirect'] as const) expect(own({ method })).toBe('company');
    expect(own({ device: { matchesCorporateIdentifier: true, corporateIdentifierKinds: ['serial'] } })).toBe('company');
    expect(own({ device: { matchesCorporateIdentifier: true, corporateIdentifierKinds: ['imei'] } })).toBe('company');
    expect(own({ device: { matchesCorporateIdentifier: true } })).toBe('company');
    expect(own({ method: 'appleUserEnrollment' })).toBe('personal');
  });

  it('macOS: a serial number counts, an IMEI does not', () => {
    const mac = { platform: 'mac' as const, device: { osVersion: '14.4' } };
    expect(own(mac)).toBe('personal');
    expect(own({ ...mac, method: 'appleAde' })).toBe('company');
    expect(own({ ...mac, device: { matchesCorporateIdentifier: true, corporateIdentifierKinds: ['serial'] } })).toBe('company');
    expect(own({ ...mac, device: { matchesCorporateIdentifier: true, corporateIdentifierKinds: ['imei'] } })).toBe('personal');
  });

  it.each<[EnrollmentMethod, 'company' | 'personal', boolean?]>([
    ['windowsAutopilot', 'company'],
    ['windowsAutopilotSelfDeploying', 'company'],
    ['windowsBulk', 'company'],
    ['windowsGpo', 'company'],
    ['windowsCoManagement', 'company'],
    ['windowsAzureAdJoinOobe', 'company'],
    ['windowsAzureAdJoinSettings', 'company'],
    ['windowsAzureVirtualDesktop', 'company'],
    ['windowsAddWorkAccount', 'personal'],
    ['windowsAddWorkAccount', 'company', true],
    ['windowsMdmOnly', 'personal'],
    ['windowsMdmOnly', 'personal', true],
  ])('Windows %s is %s (Autopilot-registered: %s)', (method, expected, autopilotRegistered) => {
    expect(own({ platform: 'windows', method, device: { autopilotRegistered, matchesCorporateIdentifier: true } })).toBe(expected);
  });

  it('Android: corporate modes are corporate; identifiers count before Android 10 (DA) and 12 (work profile)', () => {
    const android = (method: EnrollmentMethod, osVersion: string, matches = true) =>
      classifyOwnership(facts({ platform: 'android', method, device: { osVersion, matchesCorporateIdentifier: matches } })).ownership;
    for (const m of ['androidFullyManaged', 'androidDedicated', 'androidCorporateWorkProfile', 'androidAospUser', 'androidAospUserless', 'androidKnox'] as const) {
      expect(android(m, '14', false)).toBe('company');
    }
    expect(android('androidWorkProfile', '11.0')).toBe('company');
    expect(android('androidWorkProfile', '12')).toBe('personal');
    expect(android('androidWorkProfile', '11.0', false)).toBe('personal');
    expect(android('androidCompanyPortal', '9')).toBe('company');
    expect(android('androidCompanyPortal', '10')).toBe('personal');
    expect(android('androidCompanyPortal', 'unknown')).toBe('personal');
    const cp = facts({ platform: 'android', method: 'androidCompanyPortal', device: { osVersion: '11', matchesCorporateIdentifier: true } });
    expect(classifyOwnership(cp, 'workProfile').ownership).toBe('company');
    expect(classifyOwnership(cp, 'deviceAdministrator').ownership).toBe('personal');
  });

  it('a device enrollment manager account makes the device corporate on every platform', () => {
    for (const platform of ALL_PLATFORMS) {
      expect(classifyOwnership(facts({ platform, method: 'windowsMdmOnly', user: { isDeviceEnrollmentManager: true } }))).toEqual({
        ownership: 'company',
        basis: 'deviceEnrollmentManager',
      });
    }
  });

  it('the decision reports the ownership', () => {
    expect(evaluateEnrollment(facts({ method: 'appleAde' }), base()).ownership).toBe('company');
    expect(evaluateEnrollment(facts(), base()).ownership).toBe('personal');
  });
});

describe('platform restriction (-E §9 step 3)', () => {
  const blockIos = () => base().map((p) => (p.isDefault && p.type === 'platformRestriction' ? defaultPlatform({ ios: { platformBlocked: true } }) : p));
  const withDefault = (over: Partial<Record<RestrictionPlatform, Partial<PlatformRestriction>>>) => [defaultPlatform(over), defaultLimit()];

  it('Block: "Device platform blocked" with the seed\'s explanation', () => {
    const d = evaluateEnrollment(facts({ platform: 'windows', method: 'windowsAddWorkAccount', device: { osVersion: '10.0.19045.1' } }), withDefault({ windows: { platformBlocked: true } }));
    expect(d).toMatchObject({
      allowed: false,
      reason: 'devicePlatformBlocked',
      message: "This device can't be enrolled while the platform is Blocked under Device Type Restrictions.",
    });
    expect(ENROLLMENT_REASONS[d.reason!].title).toBe('Device platform blocked');
  });

  it('ADE and ASM on a blocked iOS platform end as "Invalid Profile"; Configurator and macOS ADE are plainly blocked', () => {
    expect(evaluateEnrollment(facts({ method: 'appleAde', userDriven: false, user: null }), blockIos()).reason).toBe('invalidProfile');
    expect(evaluateEnrollment(facts({ method: 'appleAsm' }), blockIos()).reason).toBe('invalidProfile');
    expect(ENROLLMENT_REASONS.invalidProfile.title).toBe('Invalid Profile');
    expect(evaluateEnrollment(facts({ method: 'appleConfigurator' }), blockIos()).reason).toBe('devicePlatformBlocked');
    expect(evaluateEnrollment(facts({ platform: 'mac', method: 'appleAde' }), withDefault({ mac: { platformBlocked: true } })).reason).toBe('devicePlatformBlocked');
  });

  it('blocking only personally owned iOS still lets ADE (corporate) devices enroll', () => {
    const policies = withDefault({ ios: { personalDeviceEnrollmentBlocked: true } });
    expect(evaluateEnrollment(facts({ method: 'appleAde' }), policies).allowed).toBe(true);
    expect(evaluateEnrollment(facts(), policies).reason).toBe('personalDeviceBlocked');
  });

  it('iOS personal block: no identifier and no ADE is blocked; the same device with its serial registered is allowed', () => {
    const policies = withDefault({ ios: { personalDeviceEnrollmentBlocked: true } });
    expect(evaluateEnrollment(facts(), policies).reason).toBe('personalDeviceBlocked');
    expect(evaluateEnrollment(facts({ device: { matchesCorporateIdentifier: true, corporateIdentifierKinds: ['serial'] } }), policies).allowed).toBe(true);
  });

  it('macOS personal block: a serial registration or ADE is allowed, an IMEI registration is not', () => {
    const policies = withDefault({ mac: { personalDeviceEnrollmentBlocked: true } });
    const mac = (o: FactsOverrides = {}) => facts({ platform: 'mac', ...o, device: { osVersion: '14.4', model: 'MacBookAir10,1', ...o.device } });
    expect(evaluateEnrollment(mac({ device: { matchesCorporateIdentifier: true, corporateIdentifierKinds: ['serial'] } }), policies).allowed).toBe(true);
    expect(evaluateEnrollment(mac({ method: 'appleAde' }), policies).allowed).toBe(true);
    expect(evaluateEnrollment(mac({ device: { matchesCorporateIdentifier: true, corporateIdentifierKinds: ['imei'] } }), policies).reason).toBe('personalDeviceBlocked');
  });

  it('an iOS User Enrollment overrides the platform restriction (platform, personal and OS range)', () => {
    const policies = withDefault({ ios: { platformBlocked: true, personalDeviceEnrollmentBlocked: true, osMinimumVersion: '99.0' } });
    const d = evaluateEnrollment(facts({ method: 'appleUserEnrollment' }), policies);
    expect(d.allowed).toBe(true);
    expect(d.applied[0]).toMatchObject({ policyId: 'default-platform', state: 'notApplicable' });
    expect(evaluateEnrollment(facts({ userEnrollmentProfileApplies: true }), policies).allowed).toBe(true);
    // The profile frees user-initiated enrollments only, never ADE.
    expect(evaluateEnrollment(facts({ method: 'appleAde', userEnrollmentProfileApplies: true }), policies).reason).toBe('invalidProfile');
    // The override is for iOS; a Mac stays blocked.
    expect(evaluateEnrollment(facts({ platform: 'mac', method: 'appleUserEnrollment' }), withDefault({ mac: { platformBlocked: true } })).allowed).toBe(false);
  });

  describe('Windows personal block: only methods authorized for corporate enrollment (-E §5.3)', () => {
    const policies = withDefault({ windows: { personalDeviceEnrollmentBlocked: true } });
    const win = (method: EnrollmentMethod, o: FactsOverrides = {}) =>
      evaluateEnrollment(facts({ platform: 'windows', method, ...o, device: { osVersion: '10.0.22631.2428', ...o.device } }), policies);

    it.each<EnrollmentMethod>(['windowsAutopilot', 'windowsAutopilotSelfDeploying', 'windowsBulk', 'windowsGpo', 'windowsCoManagement'])('%s is allowed', (method) => {
      expect(win(method).allowed).toBe(true);
    });

    it('a device enrollment manager account is allowed, whatever the method', () => {
      expect(win('windowsAddWorkAccount', { user: { isDeviceEnrollmentManager: true } }).allowed).toBe(true);
    });

    it.each<EnrollmentMethod>(['windowsAzureAdJoinOobe', 'windowsAzureAdJoinSettings', 'windowsAddWorkAccount', 'windowsAzureVirtualDesktop'])(
      '%s is blocked unless the device is registered with Autopilot',
      (method) => {
        expect(win(method)).toMatchObject({ allowed: false, reason: 'windowsEnrollmentNotAuthorized' });
        expect(win(method, { device: { autopilotRegistered: true } }).allowed).toBe(true);
      },
    );

    it('"MDM enrollment only" is blocked even when registered with Autopilot', () => {
      expect(win('windowsMdmOnly').reason).toBe('windowsEnrollmentNotAuthorized');
      expect(win('windowsMdmOnly', { device: { autopilotRegistered: true } }).reason).toBe('windowsEnrollmentNotAuthorized');
    });

    it('Azure AD join is marked corporate even when blocked', () => {
      expect(win('windowsAzureAdJoinOobe')).toMatchObject({ allowed: false, ownership: 'company' });
    });
  });

  describe('OS version range', () => {
    const iosRange = withDefault({ ios: { osMinimumVersion: '15.0.0', osMaximumVersion: '16.9.9' } });
    const ios = (osVersion: string, method: EnrollmentMethod = 'appleCompanyPortal') => evaluateEnrollment(facts({ method, device: { osVersion } }), iosRange);

    it('iOS 15.0.0-16.9.9 via Company Portal: 14.8 is blocked, 15.1 is allowed, both bounds inclusive', () => {
      expect(ios('14.8')).toMatchObject({ allowed: false, reason: 'osVersionBelowMinimum', detail: 'OS version 14.8 is below the minimum 15.0.0.' });
      expect(ios('14.99.99').reason).toBe('osVersionBelowMinimum');
      expect(ios('15').allowed).toBe(true);
      expect(ios('15.0.0').allowed).toBe(true);
      expect(ios('15.1').allowed).toBe(true);
      expect(ios('16.9.9').allowed).toBe(true);
      expect(ios('16.9.10')).toMatchObject({ reason: 'osVersionAboveMaximum', detail: 'OS version 16.9.10 is above the maximum 16.9.9.' });
      expect(ios('17.0').reason).toBe('osVersionAboveMaximum');
    });

    it('reads Apple versions with a suffix and refuses ones it can\'t read', () => {
      expect(ios('15.1.2a').allowed).toBe(true);
      expect(ios('unknown')).toMatchObject({ reason: 'osVersionUnrecognized' });
      expect(evaluateEnrollment(facts({ device: { osVersion: null } }), iosRange).reason).toBe('osVersionUnrecognized');
      // Without a range, an unreadable version is fine.
      expect(evaluateEnrollment(facts({ device: { osVersion: 'garbage' } }), base()).allowed).toBe(true);
    });

    it('ADE, ASM and Apple Configurator are exempt from the range, but a platform block still applies', () => {
      for (const method of ['appleAde', 'appleAsm', 'appleConfigurator', 'appleDirect'] as const) expect(ios('12.0', method).allowed).toBe(true);
      const blocked = withDefault({ ios: { platformBlocked: true, osMinimumVersion: '15.0' } });
      expect(evaluateEnrollment(facts({ method: 'appleAde', device: { osVersion: '12.0' } }), blocked).reason).toBe('invalidProfile');
    });

    it('macOS has no range, even if one is stored', () => {
      const mac = withDefault({ mac: { osMinimumVersion: '99.0' } });
      expect(evaluateEnrollment(facts({ platform: 'mac', device: { osVersion: '14.4' } }), mac).allowed).toBe(true);
    });

    it('Windows: every method, 10.0.build.rev compared numerically', () => {
      const winRange = withDefault({ windows: { osMinimumVersion: '10.0.19041.0', osMaximumVersion: '10.0.22621.9999' } });
      const win = (osVersion: string, method: EnrollmentMethod = 'windowsAutopilot') =>
        evaluateEnrollment(facts({ platform: 'windows', method, device: { osVersion } }), winRange);
      expect(win('10.0.19040.9999').reason).toBe('osVersionBelowMinimum');
      expect(win('10.0.19041.0').allowed).toBe(true);
      expect(win('10.0.19041').allowed).toBe(true);
      expect(win('10.0.22621.9999').allowed).toBe(true);
      expect(win('10.0.22621.10000').reason).toBe('osVersionAboveMaximum');
      expect(win('10.0.22631.2428', 'windowsGpo').reason).toBe('osVersionAboveMaximum');
    });

    it('Android: Company Portal enrollments only', () => {
      const range = withDefault({ android: { osMinimumVersion: '10.0' }, androidForWork: { osMinimumVersion: '10.0' } });
      const android = (method: EnrollmentMethod, osVersion: string) =>
        evaluateEnrollment(facts({ platform: 'android', method, device: { osVersion, manufacturer: 'Samsung' } }), range);
      expect(android('androidCompanyPortal', '9').reason).toBe('osVersionBelowMinimum');
      expect(android('androidCompanyPortal', '10').allowed).toBe(true);
      expect(android('androidWorkProfile', '9.0.1').reason).toBe('osVersionBelowMinimum');
      expect(android('androidKnox', '9').allowed).toBe(true);
    });

    it('a stored bound the admin API would refuse is ignored', () => {
      const bad = withDefault({ ios: { osMinimumVersion: '15.x', osMaximumVersion: '1.2.3.4' } });
      expect(evaluateEnrollment(facts({ device: { osVersion: '9.0' } }), bad).allowed).toBe(true);
    });
  });

  describe('Android', () => {
    const android = (o: FactsOverrides = {}) =>
      facts({ platform: 'android', method: 'androidCompanyPortal', ...o, device: { osVersion: '13', manufacturer: 'Google', supportsWorkProfile: true, ...o.device } });

    it('manufacturer block list "Samsung, LG": Samsung is blocked (any case, trimmed), Google is allowed', () => {
      const policies = withDefault({ android: { blockedManufacturers: ['Samsung', ' LG '] }, androidForWork: { blockedManufacturers: ['Samsung', ' LG '] } });
      expect(evaluateEnrollment(android({ device: { manufacturer: 'samsung' } }), policies)).toMatchObject({ reason: 'manufacturerBlocked', detail: expect.stringContaining('Samsung') });
      expect(evaluateEnrollment(android({ device: { manufacturer: 'LG' } }), policies).reason).toBe('manufacturerBlocked');
      expect(evaluateEnrollment(android({ device: { manufacturer: 'Google' } }), policies).allowed).toBe(true);
    });

    it('a manufacturer list is Android only', () => {
      const policies = withDefault({ ios: { blockedManufacturers: ['Apple'] } });
      expect(evaluateEnrollment(facts(), policies).allowed).toBe(true);
    });

    it('both platforms allowed: work profile when the device supports it, else device administrator', () => {
      expect(evaluateEnrollment(android(), base())).toMatchObject({ allowed: true, androidRoute: 'workProfile' });
      expect(evaluateEnrollment(android({ device: { supportsWorkProfile: false } }), base())).toMatchObject({ allowed: true, androidRoute: 'deviceAdministrator' });
    });

    it('work profile blocked: every device goes through device administrator; both blocked: rejected', () => {
      expect(evaluateEnrollment(android(), withDefault({ androidForWork: { platformBlocked: true } }))).toMatchObject({ allowed: true, androidRoute: 'deviceAdministrator' });
      expect(evaluateEnrollment(android(), withDefault({ androidForWork: { platformBlocked: true }, android: { platformBlocked: true } }))).toMatchObject({
        allowed: false,
        reason: 'devicePlatformBlocked',
        androidRoute: 'deviceAdministrator',
      });
    });

    it('non-overlapping version ranges send each device through the flow picked for its version', () => {
      const policies = withDefault({ androidForWork: { osMinimumVersion: '10.0' }, android: { osMaximumVersion: '9.9' } });
      expect(evaluateEnrollment(android({ device: { osVersion: '9' } }), policies)).toMatchObject({ allowed: true, androidRoute: 'deviceAdministrator' });
      expect(evaluateEnrollment(android({ device: { osVersion: '11' } }), policies)).toMatchObject({ allowed: true, androidRoute: 'workProfile' });
    });

    it('both allowed but the same versions blocked: sent through device administrator, then blocked', () => {
      const policies = withDefault({ androidForWork: { osMinimumVersion: '10.0' }, android: { osMinimumVersion: '10.0' } });
      expect(evaluateEnrollment(android({ device: { osVersion: '8.1' } }), policies)).toMatchObject({
        allowed: false,
        reason: 'osVersionBelowMinimum',
        androidRoute: 'deviceAdministrator',
      });
    });

    it('work profile personal block: only corporate-owned devices enroll with personally-owned work profiles', () => {
      const policies = withDefault({ androidForWork: { personalDeviceEnrollmentBlocked: true } });
      expect(evaluateEnrollment(android({ method: 'androidWorkProfile' }), policies).reason).toBe('personalDeviceBlocked');
      expect(evaluateEnrollment(android({ method: 'androidWorkProfile', device: { osVersion: '11', matchesCorporateIdentifier: true } }), policies).allowed).toBe(true);
      expect(evaluateEnrollment(android({ method: 'androidWorkProfile', device: { osVersion: '12', matchesCorporateIdentifier: true } }), policies).reason).toBe(
        'personalDeviceBlocked',
      );
    });

    it.each<EnrollmentMethod>(['androidFullyManaged', 'androidDedicated', 'androidCorporateWorkProfile', 'androidAospUser', 'androidAospUserless'])(
      '%s is not covered by platform restrictions',
      (method) => {
        const policies = withDefault({ android: { platformBlocked: true }, androidForWork: { platformBlocked: true, blockedManufacturers: ['Google'] } });
        const d = evaluateEnrollment(android({ method }), policies);
        expect(d.allowed).toBe(true);
        expect(d.applied[0]!.state).toBe('notApplicable');
        expect(d.androidRoute).toBeUndefined();
      },
    );
  });
});

describe('check order', () => {
  it('reports the first failing check, in the documented order', () => {
    const everything = (): [EnrollmentFacts, RestrictionPolicy[]] => [
      facts({
        device: { osVersion: '14.0' },
        userDevices: devices(5),
        terms: [{ termsId: 't', version: 2, accepted: false, displayName: 'Contoso terms' }],
      }),
      [defaultPlatform({ ios: { platformBlocked: true, personalDeviceEnrollmentBlocked: true, osMinimumVersion: '15.0' } }), defaultLimit(5)],
    ];
    const [f, p] = everything();
    const platform = p[0] as PlatformRestrictionPolicy;
    const limit = p[1] as DeviceLimitPolicy;
    const seen: string[] = [];
    const step = () => {
      const d = evaluateEnrollment(f, p);
      seen.push(d.reason ?? 'allowed');
    };
    step();
    platform.restrictions.ios!.platformBlocked = false;
    step();
    platform.restrictions.ios!.personalDeviceEnrollmentBlocked = false;
    step();
    platform.restrictions.ios!.osMinimumVersion = null;
    step();
    limit.limit = 6;
    step();
    f.terms![0]!.accepted = true;
    step();
    expect(seen).toEqual(['devicePlatformBlocked', 'personalDeviceBlocked', 'osVersionBelowMinimum', 'deviceLimitReached', 'termsNotAccepted', 'allowed']);
  });

  it('who and what is enrolling comes before the restriction policy', () => {
    const blocked = [defaultPlatform({ ios: { platformBlocked: true }, mac: { platformBlocked: true } }), defaultLimit()];
    expect(evaluateEnrollment(facts({ user: null }), blocked).reason).toBe('userRequired');
    expect(evaluateEnrollment(facts({ platform: 'mac', user: null, device: { isVirtualMachine: true } }), blocked).reason).toBe('userRequired');
    expect(
      evaluateEnrollment(facts({ platform: 'mac', method: 'appleAde', user: { isDeviceEnrollmentManager: true }, device: { isVirtualMachine: true } }), blocked).reason,
    ).toBe('missingHardwareIdentity');
    expect(evaluateEnrollment(facts({ method: 'appleAde', user: { isDeviceEnrollmentManager: true } }), blocked).reason).toBe('demNotAllowedForMethod');
  });

  it('the DEM cap comes after the platform restriction and before terms', () => {
    const dem = (o: FactsOverrides = {}) => facts({ user: { isDeviceEnrollmentManager: true }, demEnrolledCount: 1000, ...o });
    expect(evaluateEnrollment(dem(), [defaultPlatform({ ios: { platformBlocked: true } }), defaultLimit()]).reason).toBe('devicePlatformBlocked');
    expect(evaluateEnrollment(dem({ terms: [{ termsId: 't', version: 1, accepted: false, displayName: 'T' }] }), base()).reason).toBe('demLimitReached');
  });

  it('records each policy\'s state: failed where it failed, notEvaluated after an earlier failure', () => {
    const platformFails = evaluateEnrollment(facts({ userDevices: devices(9) }), [defaultPlatform({ ios: { platformBlocked: true } }), defaultLimit(1)]);
    expect(platformFails.applied.map((a) => a.state)).toEqual(['failed', 'notEvaluated']);
    const limitFails = evaluateEnrollment(facts({ userDevices: devices(9) }), [defaultPlatform(), defaultLimit(1)]);
    expect(limitFails.applied.map((a) => a.state)).toEqual(['succeeded', 'failed']);
    const precheck = evaluateEnrollment(facts({ user: null }), base());
    expect(precheck.applied.map((a) => a.state)).toEqual(['notEvaluated', 'notEvaluated']);
    const termsFail = evaluateEnrollment(facts({ terms: [{ termsId: 't', version: 1, accepted: false, displayName: 'T' }] }), base());
    expect(termsFail.applied.map((a) => a.state)).toEqual(['succeeded', 'succeeded']);
  });
});

describe('device limit (-E §7, -A §11)', () => {
  const withLimit = (limit: number) => [defaultPlatform(), defaultLimit(limit)];
  const byod = (n: number, o: FactsOverrides = {}) => facts({ userDevices: devices(n), ...o });

  it.each([
    [1, 0, true],
    [1, 1, false],
    [3, 2, true],
    [3, 3, false],
    [15, 14, true],
    [15, 15, false],
  ])('limit %i with %i counted devices: allowed = %s', (limit, n, allowed) => {
    const d = evaluateEnrollment(byod(n), withLimit(limit));
    expect(d.allowed).toBe(allowed);
    expect(d.deviceLimit).toEqual({ policyId: 'default-limit', limit, counted: n });
    if (!allowed) expect(d).toMatchObject({ reason: 'deviceLimitReached', message: ENROLLMENT_REASONS.deviceLimitReached.explanation });
  });

  it('device limit 3 with 3 counted devices blocks the 4th; unenrolling one allows the next', () => {
    const mine = devices(3);
    expect(evaluateEnrollment(facts({ userDevices: mine }), withLimit(3)).reason).toBe('deviceLimitReached');
    mine[0]!.deleted = true;
    expect(evaluateEnrollment(facts({ userDevices: mine }), withLimit(3)).allowed).toBe(true);
  });

  it('only counted devices count', () => {
    const mine = [
      counted('stale', { lastContactDateTime: ago(90 * DAY + 1) }),
      counted('pending', { registrationPending: true, enrolledDateTime: ago(24 * HOUR + 1) }),
      counted('shared', { sharedMode: true }),
      counted('deleted', { deleted: true }),
      counted('failed', { appleEnrollmentFailed: true }),
      counted('unmanaged', { intuneManaged: false }),
    ];
    expect(evaluateEnrollment(facts({ userDevices: mine }), withLimit(1))).toMatchObject({ allowed: true, deviceLimit: { counted: 0 } });
  });

  it.each<EnrollmentMethod>([
    'windowsCoManagement',
    'windowsGpo',
    'windowsAzureAdJoinOobe',
    'windowsAzureAdJoinSettings',
    'windowsBulk',
    'windowsAutopilot',
    'windowsAutopilotSelfDeploying',
    'windowsAzureVirtualDesktop',
  ])('not enforced for Windows %s (shared device mode)', (method) => {
    const d = evaluateEnrollment(byod(10, { platform: 'windows', method, device: { osVersion: '10.0.22631.1' } }), withLimit(1));
    expect(d.allowed).toBe(true);
    expect(d.deviceLimit).toBeUndefined();
    expect(d.applied.find((a) => a.type === 'limit')!.state).toBe('notApplicable');
  });

  it.each<EnrollmentMethod>(['windowsAddWorkAccount', 'windowsMdmOnly'])('enforced for Windows %s', (method) => {
    expect(evaluateEnrollment(byod(1, { platform: 'windows', method, device: { osVersion: '10.0.22631.1' } }), withLimit(1)).reason).toBe('deviceLimitReached');
  });

  it('not enforced for device enrollment manager enrollments on any platform', () => {
    for (const [platform, method] of [
      ['windows', 'windowsAddWorkAccount'],
      ['ios', 'appleCompanyPortal'],
      ['android', 'androidCompanyPortal'],
      ['mac', 'appleCompanyPortal'],
    ] as const) {
      const d = evaluateEnrollment(byod(10, { platform, method, user: { isDeviceEnrollmentManager: true }, device: { osVersion: '10.0.22631.1' } }), withLimit(1));
      expect(d.allowed).toBe(true);
    }
  });

  it('-A §11 matrix: Android dedicated and AOSP userless aren\'t limited; work profile, fully managed, COPE, DA and AOSP user are', () => {
    const android = (method: EnrollmentMethod) =>
      evaluateEnrollment(byod(2, { platform: 'android', method, device: { osVersion: '13', manufacturer: 'Google', supportsWorkProfile: true } }), withLimit(2));
    expect(android('androidDedicated').allowed).toBe(true);
    expect(android('androidAospUserless').allowed).toBe(true);
    for (const m of ['androidWorkProfile', 'androidFullyManaged', 'androidCorporateWorkProfile', 'androidCompanyPortal', 'androidAospUser'] as const) {
      expect(android(m).reason).toBe('deviceLimitReached');
    }
  });

  it('iOS/macOS BYOD and ADE with user affinity are limited; userless ADE is not', () => {
    expect(evaluateEnrollment(byod(2), withLimit(2)).reason).toBe('deviceLimitReached');
    expect(evaluateEnrollment(byod(2, { method: 'appleAde' }), withLimit(2)).reason).toBe('deviceLimitReached');
    expect(evaluateEnrollment(byod(2, { platform: 'mac', device: { osVersion: '14.4' } }), withLimit(2)).reason).toBe('deviceLimitReached');
    expect(evaluateEnrollment(byod(2, { method: 'appleAde', userDriven: false, user: null }), withLimit(2)).allowed).toBe(true);
  });

  it('a User Enrollment still counts against the device limit', () => {
    expect(evaluateEnrollment(byod(2, { method: 'appleUserEnrollment' }), withLimit(2)).reason).toBe('deviceLimitReached');
  });

  it('ignores the per-user deviceEnrollmentLimit (no seed support)', () => {
    expect(evaluateEnrollment(byod(2, { user: { deviceEnrollmentLimit: 100 } }), withLimit(2)).reason).toBe('deviceLimitReached');
  });

  describe('-A §11 worked examples (the Azure AD limit is outside OpenEnroll)', () => {
    it('iOS/Android example 1: Intune limit 5; the Intune limit lets the 4th and 5th enroll and blocks the 6th', () => {
      expect(evaluateEnrollment(byod(3), withLimit(5)).allowed).toBe(true);
      expect(evaluateEnrollment(byod(4), withLimit(5)).allowed).toBe(true);
      expect(evaluateEnrollment(byod(5), withLimit(5)).reason).toBe('deviceLimitReached');
    });

    it('iOS/Android example 2: Intune limit 2; two devices enroll, any additional one is blocked', () => {
      expect(evaluateEnrollment(byod(0), withLimit(2)).allowed).toBe(true);
      expect(evaluateEnrollment(byod(1), withLimit(2)).allowed).toBe(true);
      expect(evaluateEnrollment(byod(2), withLimit(2)).reason).toBe('deviceLimitReached');
      expect(
        evaluateEnrollment(byod(2, { platform: 'android', method: 'androidWorkProfile', device: { osVersion: '13', manufacturer: 'Google' } }), withLimit(2)).reason,
      ).toBe('deviceLimitReached');
    });

    it('Windows example 1: Intune limit 3, hybrid joined and enrolled by GPO: the limit doesn\'t apply', () => {
      expect(evaluateEnrollment(byod(7, { platform: 'windows', method: 'windowsGpo', device: { osVersion: '10.0.19045.1' } }), withLimit(3)).allowed).toBe(true);
    });

    it('Windows example 2: Intune limit 2, Settings > Access Work or School > Connect: two devices enroll, then blocked', () => {
      const connect = (n: number) => evaluateEnrollment(byod(n, { platform: 'windows', method: 'windowsAddWorkAccount', device: { osVersion: '10.0.19045.1' } }), withLimit(2));
      expect(connect(0).allowed).toBe(true);
      expect(connect(1).allowed).toBe(true);
      expect(connect(2).reason).toBe('deviceLimitReached');
    });
  });
});

describe('device enrollment managers (-A §12)', () => {
  const dem = (o: FactsOverrides = {}) => facts({ ...o, user: { isDeviceEnrollmentManager: true, ...o.user } });

  it.each<[EnrollmentMethod, RestrictionPlatform]>([
    ['appleAde', 'ios'],
    ['appleAsm', 'ios'],
    ['appleConfigurator', 'ios'],
    ['appleDirect', 'ios'],
    ['appleAde', 'mac'],
    ['androidFullyManaged', 'android'],
    ['androidCorporateWorkProfile', 'android'],
  ])('a DEM account can\'t use %s (%s)', (method, platform) => {
    expect(evaluateEnrollment(dem({ method, platform, device: { osVersion: '13' } }), base())).toMatchObject({ allowed: false, reason: 'demNotAllowedForMethod' });
  });

  it.each<[EnrollmentMethod, RestrictionPlatform]>([
    ['appleCompanyPortal', 'ios'],
    ['windowsAutopilot', 'windows'],
    ['windowsBulk', 'windows'],
    ['windowsAzureAdJoinSettings', 'windows'],
    ['androidCompanyPortal', 'android'],
    ['androidDedicated', 'android'],
  ])('a DEM account can use %s (%s)', (method, platform) => {
    expect(evaluateEnrollment(dem({ method, platform, device: { osVersion: '10.0.22631.1' } }), base()).allowed).toBe(true);
  });

  it('enrolls at most 1,000 devices: 999 enrolled allows one more, 1,000 blocks', () => {
    expect(evaluateEnrollment(dem({ demEnrolledCount: 999 }), base()).allowed).toBe(true);
    expect(evaluateEnrollment(dem({ demEnrolledCount: 1000 }), base())).toMatchObject({
      allowed: false,
      reason: 'demLimitReached',
      detail: 'joe@contoso.com has enrolled 1000 devices; the limit is 1000.',
    });
  });

  it('enrolls at most 10 personally-owned work profile devices: the 10th is allowed, the 11th blocked', () => {
    const wp = (count: number, o: FactsOverrides = {}) =>
      evaluateEnrollment(
        dem({ platform: 'android', method: 'androidWorkProfile', demEnrolledWorkProfileCount: count, device: { osVersion: '13', manufacturer: 'Google', supportsWorkProfile: true }, ...o }),
        base(),
      );
    expect(wp(9).allowed).toBe(true);
    expect(wp(10)).toMatchObject({ allowed: false, reason: 'demWorkProfileLimitReached' });
    expect(wp(10, { method: 'androidCompanyPortal' }).reason).toBe('demWorkProfileLimitReached');
    // The cap is for work profiles; device administrator enrollments aren't counted in it.
    expect(wp(10, { method: 'androidCompanyPortal', device: { osVersion: '13', supportsWorkProfile: false } })).toMatchObject({ allowed: true, androidRoute: 'deviceAdministrator' });
  });

  it('DEM devices are not subject to the user device limit', () => {
    const d = evaluateEnrollment(dem({ userDevices: devices(20), demEnrolledCount: 500 }), [defaultPlatform(), defaultLimit(1)]);
    expect(d.allowed).toBe(true);
    expect(d.applied[1]!.state).toBe('notApplicable');
  });
});

describe('terms and conditions, hardware identity, users', () => {
  const terms = (accepted: boolean) => [
    { termsId: 't1', version: 2, accepted: true, displayName: 'Privacy' },
    { termsId: 't2', version: 3, accepted, displayName: 'Contoso terms' },
  ];

  it('a user-driven enrollment of a user who hasn\'t accepted the current terms fails', () => {
    expect(evaluateEnrollment(facts({ terms: terms(false) }), base())).toMatchObject({
      allowed: false,
      reason: 'termsNotAccepted',
      detail: "Not accepted: 'Contoso terms' version 3.",
    });
    expect(evaluateEnrollment(facts({ terms: terms(true) }), base()).allowed).toBe(true);
  });

  it('terms don\'t apply to enrollments that aren\'t user-driven', () => {
    expect(evaluateEnrollment(facts({ method: 'appleAde', userDriven: false, terms: terms(false) }), base()).allowed).toBe(true);
  });

  it('a macOS VM needs a serial number and a hardware model', () => {
    const vm = (device: Partial<EnrollmentFacts['device']>) => evaluateEnrollment(facts({ platform: 'mac', device: { osVersion: '14.4', isVirtualMachine: true, ...device } }), base());
    expect(vm({ serialNumber: 'ABC123456789', model: 'MacBookAir10,1' }).allowed).toBe(true);
    expect(vm({ serialNumber: null, model: 'MacBookAir10,1' })).toMatchObject({ reason: 'missingHardwareIdentity', detail: 'The virtual machine reported no serial number.' });
    expect(vm({ serialNumber: 'ABC123456789', model: ' ' }).reason).toBe('missingHardwareIdentity');
    expect(vm({ serialNumber: '', model: null }).detail).toBe('The virtual machine reported no serial number and no hardware model.');
    // A physical Mac isn't held to it.
    expect(evaluateEnrollment(facts({ platform: 'mac', device: { osVersion: '14.4', serialNumber: null } }), base()).allowed).toBe(true);
  });

  it('a user-driven enrollment needs a user', () => {
    expect(evaluateEnrollment(facts({ user: null }), base())).toMatchObject({ allowed: false, reason: 'userRequired' });
    expect(evaluateEnrollment(facts({ user: null, userDriven: false, method: 'appleAde' }), base()).allowed).toBe(true);
  });
});

describe('reason catalogue (-E §8.1, §11)', () => {
  it('every code has a title, an explanation and a remediation', () => {
    expect(ENROLLMENT_REASON_CODES).toHaveLength(15);
    for (const code of ENROLLMENT_REASON_CODES) {
      const r = ENROLLMENT_REASONS[code];
      for (const text of [r.title, r.explanation, r.remediation]) {
        expect(text.trim().length).toBeGreaterThan(3);
        expect(text).toBe(text.trim());
      }
    }
  });

  it('titles are distinct', () => {
    expect(new Set(ENROLLMENT_REASON_CODES.map((c) => ENROLLMENT_REASONS[c].title)).size).toBe(ENROLLMENT_REASON_CODES.length);
  });

  it('uses the seed\'s sentences', () => {
    expect(ENROLLMENT_REASONS.devicePlatformBlocked).toMatchObject({
      title: 'Device platform blocked',
      explanation: "This device can't be enrolled while the platform is Blocked under Device Type Restrictions.",
    });
    expect(ENROLLMENT_REASONS.invalidProfile.title).toBe('Invalid Profile');
  });
});

it('snapshot order: filtered-out policies first, then the chosen one, per type', () => {
  const p = platformPolicy('p1', 1, { ios: {} }, [withFilter(allUsers, 'device.model -eq "x"', 'include')]);
  const d = evaluateEnrollment(facts(), base(p));
  expect(d.applied.map((a) => [a.policyId, a.state])).toEqual([
    ['p1', 'notApplicable'],
    ['default-platform', 'succeeded'],
    ['default-limit', 'succeeded'],
  ]);
  expect(chosenId(d.applied, 'platformRestriction')).toBe('default-platform');
});
