import { describe, expect, it } from 'vitest';
import { evaluateEnrollment, type EnrollmentFacts, type PlatformRestrictionPolicy, type RestrictionPolicy } from '../../src/enrollment-policy/evaluation/index.js';

/**
 * Graph stores the Android tab as two policies, one per platformType (device administrator and work
 * profile), each with its own priority list. Each is chosen on its own, and a platform a custom
 * policy doesn't cover falls back to the default's entry.
 */
const allow = { platformBlocked: false, personalDeviceEnrollmentBlocked: false };

const defaults: RestrictionPolicy[] = [
  {
    id: 'default-platform',
    displayName: 'All users and all devices',
    priority: 0,
    isDefault: true,
    assignments: [],
    type: 'platformRestriction',
    restrictions: { android: { ...allow, platformBlocked: true }, androidForWork: { ...allow } },
  },
  { id: 'default-limit', displayName: 'All users and all devices', priority: 0, isDefault: true, assignments: [], type: 'limit', limit: 15 },
];

const only = (id: string, platform: 'android' | 'androidForWork', r: Partial<typeof allow>): PlatformRestrictionPolicy => ({
  id,
  displayName: id,
  priority: 1,
  isDefault: false,
  assignments: [{ target: { kind: 'group', groupId: 'g1' } }],
  type: 'platformRestriction',
  restrictions: { [platform]: { ...allow, ...r } },
});

const facts = (supportsWorkProfile: boolean): EnrollmentFacts => ({
  tenantId: 't',
  now: '2026-01-01T00:00:00.000Z',
  platform: 'android',
  method: 'androidCompanyPortal',
  userDriven: true,
  user: { id: 'u', userPrincipalName: 'u@contoso.test', groupIds: ['g1'], isDeviceEnrollmentManager: false },
  device: { osVersion: '14', manufacturer: 'Google', model: 'Pixel', matchesCorporateIdentifier: false, supportsWorkProfile },
});

describe('Android tab: device administrator and work profile chosen separately', () => {
  it('a work-profile-only policy leaves device administrator to the default (which blocks it)', () => {
    const policies = [...defaults, only('wp-block-personal', 'androidForWork', { personalDeviceEnrollmentBlocked: true })];
    // Work profile blocked for this personal device, so Company Portal falls back to device administrator: the default blocks that.
    const d = evaluateEnrollment(facts(true), policies);
    expect(d.androidRoute).toBe('workProfile');
    expect(d.allowed).toBe(false);
    expect(d.reason).toBe('personalDeviceBlocked');
    expect(d.applied.find((a) => a.type === 'platformRestriction')?.policyId).toBe('wp-block-personal');
  });

  it('a device without work profile support is judged by the default device administrator entry, not the work profile policy', () => {
    const policies = [...defaults, only('wp-allow', 'androidForWork', {})];
    const d = evaluateEnrollment(facts(false), policies);
    expect(d.androidRoute).toBe('deviceAdministrator');
    expect(d.reason).toBe('devicePlatformBlocked');
    expect(d.applied.find((a) => a.type === 'platformRestriction')?.policyId).toBe('default-platform');
  });

  it('a device administrator policy for the user allows DA while work profile keeps its own choice', () => {
    const policies = [...defaults, only('da-allow', 'android', {}), only('wp-block', 'androidForWork', { platformBlocked: true })];
    const d = evaluateEnrollment(facts(true), policies);
    expect(d.androidRoute).toBe('deviceAdministrator');
    expect(d.allowed).toBe(true);
    expect(d.applied.find((a) => a.type === 'platformRestriction')?.policyId).toBe('da-allow');
  });
});
