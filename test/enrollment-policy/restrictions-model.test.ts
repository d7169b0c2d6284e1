import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GraphError } from '../../src/graph/errors.js';
import {
  defaultConfigurationRows,
  emptyRestriction,
  parseAssignment,
  parseCreateConfiguration,
  parsePatchConfiguration,
  parseRestriction,
  PLATFORM_SPECS,
  toConfigurationEntity,
} from '../../src/enrollment-policy/restrictions/model.js';
import { enrollmentFilterProblem, parseFilterCreate } from '../../src/enrollment-policy/restrictions/filters-model.js';

const LIMIT = '#microsoft.graph.deviceEnrollmentLimitConfiguration';
const SINGLE = '#microsoft.graph.deviceEnrollmentPlatformRestrictionConfiguration';

/** The GraphError a function throws (fails the test if it doesn't). */
function errorOf(fn: () => unknown): GraphError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GraphError);
    return err as GraphError;
  }
  throw new Error('expected a GraphError');
}

const restriction = (platform: keyof typeof PLATFORM_SPECS, body: Record<string, unknown>) =>
  parseRestriction('platformRestriction', body, PLATFORM_SPECS[platform], emptyRestriction(null));

describe('restriction model: device limit', () => {
  it('accepts limits 1 and 15 and refuses 0, 16 and non-integers, naming limit', () => {
    for (const limit of [1, 15]) {
      expect(parseCreateConfiguration({ '@odata.type': LIMIT, displayName: 'L', limit }, 'beta')).toMatchObject({ kind: 'limit', limit });
    }
    for (const limit of [0, 16, -1, 2.5, '5', null]) {
      const err = errorOf(() => parseCreateConfiguration({ '@odata.type': LIMIT, displayName: 'L', limit }, 'beta'));
      expect(err.statusCode).toBe(400);
      expect(err.options.target).toBe('limit');
      expect(err.message).toContain("'limit'");
    }
    expect(errorOf(() => parseCreateConfiguration({ '@odata.type': LIMIT, displayName: 'L' }, 'beta')).options.target).toBe('limit');
  });

  it('requires @odata.type and a displayName, and refuses creating the legacy multi-platform type', () => {
    expect(errorOf(() => parseCreateConfiguration({ displayName: 'x', limit: 3 }, 'beta')).options.target).toBe('@odata.type');
    expect(errorOf(() => parseCreateConfiguration({ '@odata.type': LIMIT, limit: 3 }, 'beta')).options.target).toBe('displayName');
    expect(errorOf(() => parseCreateConfiguration({ '@odata.type': LIMIT, displayName: '  ', limit: 3 }, 'beta')).options.target).toBe('displayName');
    const multi = errorOf(() => parseCreateConfiguration({ '@odata.type': '#microsoft.graph.deviceEnrollmentPlatformRestrictionsConfiguration', displayName: 'x' }, 'beta'));
    expect(multi.message).toContain('only the tenant default');
    expect(errorOf(() => parseCreateConfiguration({ '@odata.type': '#microsoft.graph.windows10EnrollmentCompletionPageConfiguration', displayName: 'x' }, 'beta')).statusCode).toBe(400);
  });

  it('refuses properties of another subtype and unknown properties, naming them', () => {
    expect(errorOf(() => parseCreateConfiguration({ '@odata.type': LIMIT, displayName: 'x', limit: 3, platformType: 'ios' }, 'beta')).options.target).toBe('platformType');
    expect(errorOf(() => parseCreateConfiguration({ '@odata.type': SINGLE, displayName: 'x', platformType: 'ios', limit: 3 }, 'beta')).options.target).toBe('limit');
    expect(errorOf(() => parseCreateConfiguration({ '@odata.type': LIMIT, displayName: 'x', limit: 3, colour: 'red' }, 'beta')).options.target).toBe('colour');
  });

  it('ignores server-set properties on create (backup tools send whole objects)', () => {
    const input = parseCreateConfiguration(
      { '@odata.type': LIMIT, id: 'x', displayName: 'x', limit: 3, priority: 7, version: 9, createdDateTime: '2020-01-01T00:00:00Z', deviceEnrollmentConfigurationType: 'limit' },
      'beta',
    );
    expect(input).toEqual({ kind: 'limit', displayName: 'x', description: null, limit: 3 });
  });

  it('knows no single-platform type or scope tags in v1.0', () => {
    expect(errorOf(() => parseCreateConfiguration({ '@odata.type': SINGLE, displayName: 'x', platformType: 'ios' }, 'v1.0')).options.target).toBe('@odata.type');
    expect(errorOf(() => parseCreateConfiguration({ '@odata.type': LIMIT, displayName: 'x', limit: 2, roleScopeTagIds: ['0'] }, 'v1.0')).options.target).toBe('roleScopeTagIds');
  });
});

describe('restriction model: platform settings', () => {
  it('accepts each platform’s version format', () => {
    expect(restriction('ios', { osMinimumVersion: '15', osMaximumVersion: '16.4.1' })).toMatchObject({ osMinimumVersion: '15', osMaximumVersion: '16.4.1' });
    expect(restriction('android', { osMinimumVersion: '13', osMaximumVersion: '14.0.1.2' })).toMatchObject({ osMinimumVersion: '13', osMaximumVersion: '14.0.1.2' });
    expect(restriction('androidForWork', { osMinimumVersion: '8.0' })).toMatchObject({ osMinimumVersion: '8.0' });
    expect(restriction('windows', { osMinimumVersion: '10.0.19045.0', osMaximumVersion: '10.0.22631.9999' })).toMatchObject({ osMaximumVersion: '10.0.22631.9999' });
    // Empty strings and null mean no bound.
    expect(restriction('mac', { osMinimumVersion: '', osMaximumVersion: null })).toMatchObject({ osMinimumVersion: '', osMaximumVersion: null });
  });

  it('refuses versions in the wrong format, naming the property', () => {
    const cases: [keyof typeof PLATFORM_SPECS, string, string][] = [
      ['ios', 'osMinimumVersion', '16.4.1.1'],
      ['ios', 'osMaximumVersion', '16.x'],
      ['ios', 'osMinimumVersion', 'latest'],
      ['android', 'osMinimumVersion', '13.0.0.0.1'],
      ['android', 'osMaximumVersion', '-1'],
      ['windows', 'osMinimumVersion', '10.0'],
      ['windows', 'osMinimumVersion', '10.0.19045'],
      ['windows', 'osMaximumVersion', '10.0.19045.0.1'],
      ['windows', 'osMaximumVersion', '10..19045.0'],
    ];
    for (const [platform, property, value] of cases) {
      const err = errorOf(() => restriction(platform, { [property]: value }));
      expect(err.statusCode, `${platform} ${value}`).toBe(400);
      expect(err.options.target).toBe(`platformRestriction.${property}`);
    }
  });

  it('refuses OS bounds on macOS (not supported there, -E §5.1)', () => {
    const err = errorOf(() => restriction('mac', { osMinimumVersion: '14.0' }));
    expect(err.options.target).toBe('platformRestriction.osMinimumVersion');
    expect(err.message).toContain('macOS');
  });

  it('refuses a minimum above the maximum; equal bounds are fine', () => {
    const err = errorOf(() => restriction('ios', { osMinimumVersion: '17.0', osMaximumVersion: '16.9.9' }));
    expect(err.options.target).toBe('platformRestriction.osMaximumVersion');
    expect(restriction('ios', { osMinimumVersion: '16', osMaximumVersion: '16.0.0' })).toMatchObject({ osMinimumVersion: '16' });
    // Windows compares numerically, not as text.
    expect(restriction('windows', { osMinimumVersion: '10.0.9999.0', osMaximumVersion: '10.0.10000.0' })).toMatchObject({ osMaximumVersion: '10.0.10000.0' });
  });

  it('min ≤ max is accepted exactly when it holds numerically (property)', () => {
    const seg = fc.integer({ min: 0, max: 30 });
    const ver = fc.array(seg, { minLength: 1, maxLength: 3 });
    fc.assert(
      fc.property(ver, ver, (a, b) => {
        const pad = (v: number[]) => [...v, 0, 0, 0].slice(0, 3);
        const [x, y] = [pad(a), pad(b)];
        const cmp = x.findIndex((n, i) => n !== y[i]);
        const ok = cmp === -1 || x[cmp]! < y[cmp]!;
        const run = () => restriction('ios', { osMinimumVersion: a.join('.'), osMaximumVersion: b.join('.') });
        if (ok) expect(run()).toMatchObject({ osMinimumVersion: a.join('.') });
        else expect(errorOf(run).options.target).toBe('platformRestriction.osMaximumVersion');
      }),
    );
  });

  it('keeps the manufacturer block list for Android only, split on commas, trimmed and de-duplicated', () => {
    expect(restriction('android', { blockedManufacturers: ['Samsung, LG', ' samsung ', 'Google'] }).blockedManufacturers).toEqual(['Samsung', 'LG', 'Google']);
    expect(restriction('androidForWork', { blockedManufacturers: ['Xiaomi'] }).blockedManufacturers).toEqual(['Xiaomi']);
    for (const platform of ['ios', 'mac', 'windows'] as const) {
      expect(errorOf(() => restriction(platform, { blockedManufacturers: ['Apple'] })).options.target).toBe('platformRestriction.blockedManufacturers');
      expect(restriction(platform, { blockedManufacturers: [] }).blockedManufacturers).toEqual([]);
    }
    expect(errorOf(() => restriction('windows', { blockedSkus: ['Home'] })).options.target).toBe('platformRestriction.blockedSkus');
  });

  it('takes personalDeviceEnrollmentBlocked and platformBlocked per platform as booleans', () => {
    expect(restriction('windows', { personalDeviceEnrollmentBlocked: true })).toMatchObject({ personalDeviceEnrollmentBlocked: true, platformBlocked: false });
    expect(errorOf(() => restriction('windows', { platformBlocked: 'yes' })).options.target).toBe('platformRestriction.platformBlocked');
    expect(errorOf(() => restriction('windows', { colour: 1 })).options.target).toBe('platformRestriction.colour');
  });

  it('requires a platform tab a restriction can be made for', () => {
    for (const platformType of ['allPlatforms', 'windowsPhone', 'linux', 'IOS', undefined]) {
      const err = errorOf(() => parseCreateConfiguration({ '@odata.type': SINGLE, displayName: 'x', ...(platformType ? { platformType } : {}) }, 'beta'));
      expect(err.options.target).toBe('platformType');
    }
  });
});

describe('restriction model: the default policies', () => {
  const [platform, limit] = defaultConfigurationRows('t1');

  it('has Intune’s ids, names and settings: macOS allowed, Windows Mobile blocked, limit 5', () => {
    expect(platform!.id).toBe('t1_DefaultPlatformRestrictions');
    expect(limit!.id).toBe('t1_DefaultLimit');
    const entity = toConfigurationEntity(platform!, ['0'], 'beta');
    expect(entity).toMatchObject({
      displayName: 'All users and all devices',
      priority: 0,
      version: 0,
      deviceEnrollmentConfigurationType: 'platformRestrictions',
      macOSRestriction: { platformBlocked: false, personalDeviceEnrollmentBlocked: false },
      windowsMobileRestriction: { platformBlocked: true },
      iosRestriction: { platformBlocked: false, osMinimumVersion: '' },
      tvosRestriction: { osMinimumVersion: null },
    });
    expect(toConfigurationEntity(limit!, ['0'], 'beta')).toMatchObject({ limit: 5, deviceEnrollmentConfigurationType: 'limit' });
  });

  it('keeps macRestriction and macOSRestriction equal', () => {
    const patch = parsePatchConfiguration({ macRestriction: { personalDeviceEnrollmentBlocked: true } }, platform!, 'beta');
    const settings = JSON.parse(patch.columns.settings!);
    expect(settings.macOSRestriction.personalDeviceEnrollmentBlocked).toBe(true);
    expect(settings.macRestriction.personalDeviceEnrollmentBlocked).toBe(true);
    const err = errorOf(() => parsePatchConfiguration({ macRestriction: { platformBlocked: true }, macOSRestriction: { platformBlocked: false } }, platform!, 'beta'));
    expect(err.options.target).toBe('macOSRestriction');
  });

  it('can be edited but not renamed; read-only properties can be repeated unchanged', () => {
    expect(parsePatchConfiguration({ limit: 7, priority: 0, id: 't1_DefaultLimit', version: 0 }, limit!, 'beta').columns).toEqual({ device_limit: 7 });
    expect(errorOf(() => parsePatchConfiguration({ displayName: 'Mine' }, limit!, 'beta')).options.target).toBe('displayName');
    expect(errorOf(() => parsePatchConfiguration({ priority: 3 }, limit!, 'beta')).message).toContain('setPriority');
    expect(errorOf(() => parsePatchConfiguration({ iosRestriction: { osMinimumVersion: '99.x' } }, platform!, 'beta')).options.target).toBe('iosRestriction.osMinimumVersion');
    expect(errorOf(() => parsePatchConfiguration({ androidRestriction: { osMinimumVersion: '8.0' }, limit: 3 }, platform!, 'beta')).options.target).toBe('limit');
  });
});

describe('restriction model: assignments and filters', () => {
  const group = '6d7f0f1e-1b2c-4d5e-8f90-a1b2c3d4e5f6';

  it('parses group, exclusion and all-users targets with filters', () => {
    expect(parseAssignment('', { target: { '@odata.type': '#microsoft.graph.groupAssignmentTarget', groupId: group } })).toEqual({
      targetType: 'groupAssignmentTarget',
      groupId: group,
      filterId: null,
      filterType: 'none',
    });
    expect(
      parseAssignment('', {
        target: { '@odata.type': 'microsoft.graph.allLicensedUsersAssignmentTarget', deviceAndAppManagementAssignmentFilterId: 'f1', deviceAndAppManagementAssignmentFilterType: 'include' },
      }),
    ).toMatchObject({ targetType: 'allLicensedUsersAssignmentTarget', groupId: null, filterId: 'f1', filterType: 'include' });
  });

  it('refuses all-devices targets, filters on exclusions and half-given filters', () => {
    const target = (t: Record<string, unknown>) => errorOf(() => parseAssignment('', { target: t })).options.target;
    expect(target({ '@odata.type': '#microsoft.graph.allDevicesAssignmentTarget' })).toBe('target.@odata.type');
    expect(target({ '@odata.type': '#microsoft.graph.configurationManagerCollectionAssignmentTarget', collectionId: 'x' })).toBe('target.@odata.type');
    expect(target({ '@odata.type': '#microsoft.graph.groupAssignmentTarget' })).toBe('target.groupId');
    expect(target({ '@odata.type': '#microsoft.graph.groupAssignmentTarget', groupId: 'not-a-guid' })).toBe('target.groupId');
    expect(
      target({ '@odata.type': '#microsoft.graph.exclusionGroupAssignmentTarget', groupId: group, deviceAndAppManagementAssignmentFilterId: 'f', deviceAndAppManagementAssignmentFilterType: 'exclude' }),
    ).toBe('target.deviceAndAppManagementAssignmentFilterId');
    expect(target({ '@odata.type': '#microsoft.graph.groupAssignmentTarget', groupId: group, deviceAndAppManagementAssignmentFilterId: 'f' })).toBe(
      'target.deviceAndAppManagementAssignmentFilterType',
    );
    expect(target({ '@odata.type': '#microsoft.graph.groupAssignmentTarget', groupId: group, deviceAndAppManagementAssignmentFilterType: 'include' })).toBe(
      'target.deviceAndAppManagementAssignmentFilterId',
    );
  });

  it('allows only the enrollment filter properties of each platform, and none on Android (-E §6.5)', () => {
    expect(enrollmentFilterProblem('windows', '(device.operatingSystemSKU -eq "Core")')).toBeUndefined();
    expect(enrollmentFilterProblem('windows', '(device.model -eq "Surface")')).toContain('device.model');
    expect(enrollmentFilterProblem('ios', '(device.model -startsWith "iPad") and (device.deviceOwnership -eq "Corporate")')).toBeUndefined();
    expect(enrollmentFilterProblem('mac', '(device.operatingSystemSKU -eq "Core")')).toContain('operatingSystemSKU');
    expect(enrollmentFilterProblem('android', '(device.manufacturer -eq "Samsung")')).toContain('Android');
    expect(enrollmentFilterProblem('androidForWork', '(device.manufacturer -eq "Samsung")')).toContain('Android');
  });

  it('validates filter bodies with the engine’s rule parser, naming rule and the position', () => {
    expect(parseFilterCreate({ displayName: 'Home', platform: 'windows10AndLater', rule: '(device.operatingSystemSKU -eq "Core")' })).toMatchObject({ platform: 'windows10AndLater' });
    const err = errorOf(() => parseFilterCreate({ displayName: 'Bad', platform: 'iOS', rule: '(device.model -eq iPad)' }));
    expect(err.options.target).toBe('rule');
    expect(err.message).toMatch(/position \d+/);
    expect(errorOf(() => parseFilterCreate({ displayName: 'x', platform: 'windows81AndLater', rule: '(device.model -eq "x")' })).options.target).toBe('platform');
    expect(errorOf(() => parseFilterCreate({ displayName: 'x', platform: 'iOS' })).options.target).toBe('rule');
  });
});
