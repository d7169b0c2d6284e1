import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  countTowardLimit,
  ENROLLMENT_REASONS,
  evaluateEnrollment,
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
const NOW_MS = Date.parse(NOW);
const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;

const PLATFORMS: RestrictionPlatform[] = ['ios', 'mac', 'windows', 'windowsPhone', 'android', 'androidForWork', 'linux'];
const METHODS: EnrollmentMethod[] = [
  'appleAde',
  'appleAsm',
  'appleConfigurator',
  'appleCompanyPortal',
  'appleUserEnrollment',
  'appleDirect',
  'windowsAutopilot',
  'windowsAutopilotSelfDeploying',
  'windowsAzureAdJoinOobe',
  'windowsAzureAdJoinSettings',
  'windowsAddWorkAccount',
  'windowsMdmOnly',
  'windowsBulk',
  'windowsGpo',
  'windowsCoManagement',
  'windowsAzureVirtualDesktop',
  'androidCompanyPortal',
  'androidWorkProfile',
  'androidCorporateWorkProfile',
  'androidFullyManaged',
  'androidDedicated',
  'androidAospUser',
  'androidAospUserless',
  'androidKnox',
];
const GROUPS = ['g0', 'g1', 'g2', 'g3', 'g4'];
const MODELS = ['iPhone', 'iPad'];

const allow = (over: Partial<PlatformRestriction> = {}): PlatformRestriction => ({ platformBlocked: false, personalDeviceEnrollmentBlocked: false, ...over });
const defaultPlatform = (): PlatformRestrictionPolicy => ({
  id: 'default-platform',
  displayName: 'Default',
  priority: 0,
  isDefault: true,
  assignments: [],
  type: 'platformRestriction',
  restrictions: Object.fromEntries(PLATFORMS.map((p) => [p, allow()])),
});
const defaultLimit = (limit = 15): DeviceLimitPolicy => ({ id: 'default-limit', displayName: 'Default', priority: 0, isDefault: true, assignments: [], type: 'limit', limit });

// ---- best-priority selection against a brute-force oracle ----

const modelFilter = fc.record({ model: fc.constantFrom(...MODELS), mode: fc.constantFrom('include' as const, 'exclude' as const) });
const assignment: fc.Arbitrary<PolicyAssignment & { oracleFilter?: { model: string; mode: 'include' | 'exclude' } }> = fc
  .tuple(
    fc.oneof(
      fc.constant({ kind: 'allUsers' as const }),
      fc.constant({ kind: 'allDevices' as const }),
      fc.record({ kind: fc.constant('group' as const), groupId: fc.constantFrom(...GROUPS) }),
      fc.record({ kind: fc.constant('exclusionGroup' as const), groupId: fc.constantFrom(...GROUPS) }),
    ),
    fc.option(modelFilter, { freq: 3 }),
  )
  .map(([target, f]) =>
    f && target.kind !== 'exclusionGroup'
      ? { target, filter: { id: `f-${f.model}-${f.mode}`, displayName: 'f', mode: f.mode, rule: `(device.model -eq "${f.model.toUpperCase()}")` }, oracleFilter: f }
      : { target },
  );

const customs = fc.array(
  fc.record({
    priority: fc.integer({ min: 1, max: 10 }),
    assignments: fc.array(assignment, { maxLength: 3 }),
    tab: fc.constantFrom<RestrictionPlatform>('ios', 'ios', 'ios', 'windows'),
    blocked: fc.boolean(),
    limit: fc.integer({ min: 1, max: 15 }),
  }),
  { maxLength: 8 },
);

const scenario = fc.record({
  platformPolicies: customs,
  limitPolicies: customs,
  groups: fc.subarray(GROUPS),
  model: fc.constantFrom(...MODELS),
  userDriven: fc.boolean(),
  counted: fc.integer({ min: 0, max: 15 }),
});
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

function build(s: Scenario): { facts: EnrollmentFacts; policies: RestrictionPolicy[] } {
  const platform: PlatformRestrictionPolicy[] = s.platformPolicies.map((c, i) => ({
    id: `p${i}`,
    displayName: `p${i}`,
    priority: c.priority,
    isDefault: false,
    assignments: c.assignments,
    type: 'platformRestriction',
    restrictions: { [c.tab]: allow({ platformBlocked: c.blocked }) },
  }));
  const limits: DeviceLimitPolicy[] = s.limitPolicies.map((c, i) => ({
    id: `l${i}`,
    displayName: `l${i}`,
    priority: c.priority,
    isDefault: false,
    assignments: c.assignments,
    type: 'limit',
    limit: c.limit,
  }));
  const facts: EnrollmentFacts = {
    tenantId: 't',
    now: NOW,
    platform: 'ios',
    method: 'appleCompanyPortal',
    userDriven: s.userDriven,
    user: { id: 'u', userPrincipalName: 'u@contoso.com', groupIds: s.groups, isDeviceEnrollmentManager: false },
    device: { osVersion: '17.0', manufacturer: 'Apple', model: s.model, matchesCorporateIdentifier: false },
    userDevices: Array.from({ length: s.counted }, (_, i) => ({
      id: `d${i}`,
      enrolledDateTime: NOW,
      lastContactDateTime: NOW,
      registrationPending: false,
      sharedMode: false,
      deleted: false,
    })),
  };
  return { facts, policies: [defaultPlatform(), defaultLimit(), ...platform, ...limits] };
}

/** Brute force, straight from -E §9 step 2, written without the engine's selection code. */
function oracle(s: Scenario, kind: 'platform' | 'limit'): { id: string; index?: number } {
  const list = kind === 'platform' ? s.platformPolicies : s.limitPolicies;
  const prefix = kind === 'platform' ? 'p' : 'l';
  const applies = (c: Scenario['platformPolicies'][number]) => {
    if (!s.userDriven) return false;
    if (kind === 'platform' && c.tab !== 'ios') return false;
    if (c.assignments.some((a) => a.target.kind === 'exclusionGroup' && s.groups.includes(a.target.groupId))) return false;
    return c.assignments.some((a) => {
      const t = a.target;
      const targeted = t.kind === 'allUsers' || t.kind === 'allDevices' || (t.kind === 'group' && s.groups.includes(t.groupId));
      if (!targeted) return false;
      const f = (a as { oracleFilter?: { model: string; mode: string } }).oracleFilter;
      return !f || (f.model === s.model) === (f.mode === 'include');
    });
  };
  let best: { id: string; priority: number; index: number } | undefined;
  list.forEach((c, index) => {
    if (!applies(c)) return;
    const id = `${prefix}${index}`;
    if (!best || c.priority < best.priority || (c.priority === best.priority && id < best.id)) best = { id, priority: c.priority, index };
  });
  return best ?? { id: kind === 'platform' ? 'default-platform' : 'default-limit' };
}

const lastOfType = (d: ReturnType<typeof evaluateEnrollment>, type: 'platformRestriction' | 'limit') => d.applied.filter((a) => a.type === type).at(-1);

describe('evaluation: properties', () => {
  it('always picks the best-priority assigned policy of each type (brute-force oracle)', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const { facts, policies } = build(s);
        const d = evaluateEnrollment(facts, policies);
        const bestPlatform = oracle(s, 'platform');
        const bestLimit = oracle(s, 'limit');
        expect(lastOfType(d, 'platformRestriction')!.policyId).toBe(bestPlatform.id);
        // Entries before the chosen one are better-priority policies the filter left out.
        for (const a of d.applied.slice(0, -1)) if (a.policyId !== bestPlatform.id && a.policyId !== bestLimit.id) expect(a.state).toBe('notApplicable');

        const platformBlocked = bestPlatform.index !== undefined && s.platformPolicies[bestPlatform.index]!.blocked;
        if (platformBlocked) {
          expect(d.reason).toBe('devicePlatformBlocked');
          return;
        }
        expect(lastOfType(d, 'limit')!.policyId).toBe(bestLimit.id);
        const limit = bestLimit.index === undefined ? 15 : s.limitPolicies[bestLimit.index]!.limit;
        expect(d.allowed).toBe(s.counted < limit);
        expect(d.deviceLimit).toEqual({ policyId: bestLimit.id, limit, counted: s.counted });
      }),
      { numRuns: 1000 },
    );
  });

  it('enrollments that aren\'t user-driven get only the default policies', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const { facts, policies } = build({ ...s, userDriven: false });
        const d = evaluateEnrollment(facts, policies);
        expect(d.applied.map((a) => a.policyId)).toEqual(['default-platform', 'default-limit']);
      }),
    );
  });
});

// ---- totality, determinism and order independence on arbitrary facts ----

const isoOrJunk = fc.oneof(
  fc.integer({ min: -200 * DAY, max: 10 * DAY }).map((ms) => new Date(NOW_MS + ms).toISOString()),
  fc.constantFrom('', 'not a date', '2024-13-45T99:99:99Z'),
);
const versionText = fc.oneof(
  fc.array(fc.integer({ min: 0, max: 25 }), { minLength: 1, maxLength: 5 }).map((a) => a.join('.')),
  fc.string({ maxLength: 8 }),
  fc.constantFrom('14.1.2a', '10.15.3 (19D2064)', '10.0.22631.2428'),
);
const anyRestriction: fc.Arbitrary<PlatformRestriction> = fc.record(
  {
    platformBlocked: fc.boolean(),
    personalDeviceEnrollmentBlocked: fc.boolean(),
    osMinimumVersion: fc.option(versionText),
    osMaximumVersion: fc.option(versionText),
    blockedManufacturers: fc.array(fc.constantFrom('Samsung', ' lg ', 'Google', '', 'Apple'), { maxLength: 3 }),
  },
  { requiredKeys: ['platformBlocked', 'personalDeviceEnrollmentBlocked'] },
);
const anyRule = fc.oneof(
  fc.constantFrom(
    '(device.model -eq "iPhone")',
    'device.operatingSystemSKU -in ["Core", "CoreN"]',
    'device.deviceOwnership -eq "Personal" or device.osVersion -startsWith "1"',
    'device.operatingSystemVersion -ge 10.0.19041',
    'device.enrollmentProfileName -ne null',
  ),
  fc.string({ maxLength: 30 }),
);
const anyAssignment: fc.Arbitrary<PolicyAssignment> = fc.record(
  {
    target: fc.oneof(
      fc.constant({ kind: 'allUsers' as const }),
      fc.constant({ kind: 'allDevices' as const }),
      fc.record({ kind: fc.constant('group' as const), groupId: fc.constantFrom(...GROUPS) }),
      fc.record({ kind: fc.constant('exclusionGroup' as const), groupId: fc.constantFrom(...GROUPS) }),
    ),
    filter: fc.record({ id: fc.constantFrom('f1', 'f2'), displayName: fc.constant('f'), mode: fc.constantFrom('include' as const, 'exclude' as const), rule: anyRule }),
  },
  { requiredKeys: ['target'] },
);
const anyPolicies: fc.Arbitrary<RestrictionPolicy[]> = fc
  .array(
    fc.oneof(
      fc.record({
        type: fc.constant('platformRestriction' as const),
        isDefault: fc.boolean(),
        priority: fc.integer({ min: 0, max: 30 }),
        assignments: fc.array(anyAssignment, { maxLength: 3 }),
        restrictions: fc.dictionary(fc.constantFrom(...PLATFORMS), anyRestriction, { maxKeys: 3 }),
      }),
      fc.record({
        type: fc.constant('limit' as const),
        isDefault: fc.boolean(),
        priority: fc.integer({ min: 0, max: 30 }),
        assignments: fc.array(anyAssignment, { maxLength: 3 }),
        limit: fc.integer({ min: 0, max: 16 }),
      }),
    ),
    { maxLength: 8 },
  )
  .map((ps) => ps.map((p, i) => ({ ...p, id: `x${i}`, displayName: `policy ${i}` }) as RestrictionPolicy));

const anyDevice: fc.Arbitrary<CountedDevice> = fc.record(
  {
    id: fc.string({ maxLength: 4 }),
    enrolledDateTime: isoOrJunk,
    lastContactDateTime: isoOrJunk,
    registrationPending: fc.boolean(),
    registrationPendingSince: isoOrJunk,
    sharedMode: fc.boolean(),
    deleted: fc.boolean(),
    appleEnrollmentFailed: fc.boolean(),
    intuneManaged: fc.boolean(),
  },
  { requiredKeys: ['id', 'enrolledDateTime', 'lastContactDateTime', 'registrationPending', 'sharedMode', 'deleted'] },
);

const anyFacts: fc.Arbitrary<EnrollmentFacts> = fc.record(
  {
    tenantId: fc.constant('t'),
    now: fc.oneof(fc.constant(NOW), isoOrJunk),
    platform: fc.constantFrom(...PLATFORMS),
    method: fc.constantFrom(...METHODS),
    userDriven: fc.boolean(),
    user: fc.record(
      {
        id: fc.constant('u'),
        userPrincipalName: fc.constant('u@contoso.com'),
        groupIds: fc.subarray(GROUPS),
        deviceEnrollmentLimit: fc.option(fc.integer({ min: 1, max: 1000 })),
        isDeviceEnrollmentManager: fc.boolean(),
      },
      { requiredKeys: ['id', 'userPrincipalName', 'groupIds', 'isDeviceEnrollmentManager'] },
    ),
    device: fc.record(
      {
        osVersion: fc.option(versionText),
        manufacturer: fc.option(fc.constantFrom('Samsung', 'LG', 'Google', 'Apple', 'Microsoft', '')),
        model: fc.option(fc.constantFrom('iPhone', 'iPad', 'MacBookAir10,1', '')),
        serialNumber: fc.option(fc.constantFrom('ABC123456789', '', ' ')),
        imei: fc.option(fc.constant('01234567890123')),
        matchesCorporateIdentifier: fc.boolean(),
        corporateIdentifierKinds: fc.subarray(['imei', 'serial'] as const),
        autopilotRegistered: fc.boolean(),
        supportsWorkProfile: fc.boolean(),
        isVirtualMachine: fc.boolean(),
        filterProperties: fc.dictionary(
          fc.constantFrom('operatingSystemSKU', 'enrollmentProfileName', 'OSVERSION', 'deviceOwnership', 'unknownKey'),
          fc.oneof(fc.string({ maxLength: 5 }), fc.boolean(), fc.constant(null)),
        ),
      },
      { requiredKeys: ['matchesCorporateIdentifier'] },
    ),
    userDevices: fc.array(anyDevice, { maxLength: 6 }),
    demEnrolledCount: fc.integer({ min: 0, max: 1100 }),
    demEnrolledWorkProfileCount: fc.integer({ min: 0, max: 12 }),
    terms: fc.array(fc.record({ termsId: fc.constant('t'), version: fc.nat(5), accepted: fc.boolean(), displayName: fc.constant('T') }), { maxLength: 2 }),
    userEnrollmentProfileApplies: fc.boolean(),
  },
  { requiredKeys: ['tenantId', 'now', 'platform', 'method', 'userDriven', 'device'] },
);

describe('evaluation: totality', () => {
  it('never throws, is deterministic, doesn\'t mutate its input and doesn\'t depend on policy order', () => {
    fc.assert(
      fc.property(anyFacts, anyPolicies, fc.nat(), (facts, policies, seed) => {
        const factsCopy = structuredClone(facts);
        const policiesCopy = structuredClone(policies);
        const d = evaluateEnrollment(facts, policies);
        expect(facts).toEqual(factsCopy);
        expect(policies).toEqual(policiesCopy);
        expect(evaluateEnrollment(factsCopy, policiesCopy)).toEqual(d);
        const shuffled = [...policies].sort((a, b) => ((a.id.charCodeAt(1) * 31 + seed) % 7) - ((b.id.charCodeAt(1) * 31 + seed) % 7));
        expect(evaluateEnrollment(facts, shuffled)).toEqual(d);

        expect(d.allowed).toBe(d.reason === undefined);
        if (d.reason) {
          expect(d.message).toBe(ENROLLMENT_REASONS[d.reason].explanation);
          expect(d.detail).toEqual(expect.any(String));
        }
        // At most one chosen policy per type; every entry is a known policy.
        for (const type of ['platformRestriction', 'limit'] as const) {
          expect(d.applied.filter((a) => a.type === type && a.state !== 'notApplicable').length).toBeLessThanOrEqual(1);
        }
        const ids = d.applied.map((a) => a.policyId);
        expect(new Set(ids).size).toBe(ids.length);
        for (const id of ids) expect(policies.some((p) => p.id === id)).toBe(true);
        if (!facts.userDriven) expect(d.applied.every((a) => a.isDefault)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('ADE, Apple School Manager and Apple Configurator never fail on OS bounds', () => {
    fc.assert(
      fc.property(anyFacts, anyPolicies, fc.constantFrom<EnrollmentMethod>('appleAde', 'appleAsm', 'appleConfigurator', 'appleDirect'), fc.constantFrom<RestrictionPlatform>('ios', 'mac'), (f, policies, method, platform) => {
        const d = evaluateEnrollment({ ...f, method, platform }, policies);
        expect(['osVersionBelowMinimum', 'osVersionAboveMaximum', 'osVersionUnrecognized']).not.toContain(d.reason);
        // …but a platform block still stops them.
        const blocked = policies.map((p) => (p.type === 'platformRestriction' ? { ...p, restrictions: { ...p.restrictions, [platform]: allow({ platformBlocked: true }) } } : p));
        const withDefault: RestrictionPolicy[] = [{ ...defaultPlatform(), id: 'zz-default', restrictions: { [platform]: allow({ platformBlocked: true }) } }, ...blocked];
        const b = evaluateEnrollment({ ...f, method, platform, userDriven: false, user: undefined, device: { ...f.device, isVirtualMachine: false } }, withDefault);
        expect(b.allowed).toBe(false);
        expect(b.reason).toBe(platform === 'ios' && (method === 'appleAde' || method === 'appleAsm') ? 'invalidProfile' : 'devicePlatformBlocked');
      }),
      { numRuns: 500 },
    );
  });
});

// ---- counting rules against a literal reading of -E §7.2 ----

describe('device counting: properties', () => {
  const offset = fc.oneof(
    fc.constantFrom(0, 24 * HOUR - 1, 24 * HOUR, 24 * HOUR + 1, 90 * DAY - 1, 90 * DAY, 90 * DAY + 1, -HOUR),
    fc.integer({ min: -DAY, max: 200 * DAY }),
  );
  const device = fc.record({
    contactAgo: offset,
    pendingAgo: offset,
    registrationPending: fc.boolean(),
    sharedMode: fc.boolean(),
    deleted: fc.boolean(),
    appleEnrollmentFailed: fc.boolean(),
    intuneManaged: fc.boolean(),
  });

  it('a device counts iff it meets every criterion, both windows inclusive', () => {
    fc.assert(
      fc.property(device, (g) => {
        const d: CountedDevice = {
          id: 'd',
          enrolledDateTime: new Date(NOW_MS - g.pendingAgo).toISOString(),
          lastContactDateTime: new Date(NOW_MS - g.contactAgo).toISOString(),
          registrationPending: g.registrationPending,
          sharedMode: g.sharedMode,
          deleted: g.deleted,
          appleEnrollmentFailed: g.appleEnrollmentFailed,
          intuneManaged: g.intuneManaged,
        };
        const expected =
          g.intuneManaged && g.contactAgo <= 90 * DAY && !(g.registrationPending && g.pendingAgo > 24 * HOUR) && !g.appleEnrollmentFailed && !g.deleted && !g.sharedMode;
        expect(countTowardLimit(d, NOW)).toBe(expected);
        expect(countTowardLimit(d, new Date(NOW))).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('the limit blocks exactly when the counted devices reach it (>=)', () => {
    fc.assert(
      fc.property(fc.array(device, { maxLength: 20 }), fc.integer({ min: 1, max: 15 }), (gs, limit) => {
        const userDevices = gs.map((g, i) => ({
          id: `d${i}`,
          enrolledDateTime: new Date(NOW_MS - g.pendingAgo).toISOString(),
          lastContactDateTime: new Date(NOW_MS - g.contactAgo).toISOString(),
          registrationPending: g.registrationPending,
          sharedMode: g.sharedMode,
          deleted: g.deleted,
        }));
        const n = userDevices.filter((d) => countTowardLimit(d, NOW)).length;
        const facts: EnrollmentFacts = {
          tenantId: 't',
          now: NOW,
          platform: 'android',
          method: 'androidWorkProfile',
          userDriven: true,
          user: { id: 'u', userPrincipalName: 'u@contoso.com', groupIds: [], isDeviceEnrollmentManager: false },
          device: { osVersion: '14', manufacturer: 'Google', matchesCorporateIdentifier: false },
          userDevices,
        };
        const d = evaluateEnrollment(facts, [defaultPlatform(), defaultLimit(limit)]);
        expect(d.allowed).toBe(n < limit);
        expect(d.deviceLimit).toEqual({ policyId: 'default-limit', limit, counted: n });
      }),
    );
  });
});
