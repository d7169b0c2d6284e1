import {
  evaluateEnrollment,
  type DeviceLimitPolicy,
  type EnrollmentFacts,
  type PlatformRestrictionPolicy,
  type RestrictionPlatform,
} from '../../src/enrollment-policy/evaluation/index.js';
import type { ScenarioResult } from '../lib/report.js';

/**
 * (e) The pure enrollment decision engine: a tenant with 20 platform restrictions and 10 device
 * limit policies (group assignments, exclusions, assignment filters), users in several groups with
 * a few devices each. No I/O: decisions per second on one core of the bench process.
 */

const PLATFORMS: RestrictionPlatform[] = ['ios', 'mac', 'windows', 'windowsPhone', 'android', 'androidForWork', 'linux'];
const NOW = '2026-06-01T12:00:00.000Z';

function policies(): Array<PlatformRestrictionPolicy | DeviceLimitPolicy> {
  const open = Object.fromEntries(PLATFORMS.map((p) => [p, { platformBlocked: false, personalDeviceEnrollmentBlocked: false }]));
  const list: Array<PlatformRestrictionPolicy | DeviceLimitPolicy> = [
    { id: 'default-platform', displayName: 'All users and all devices', priority: 0, isDefault: true, assignments: [], type: 'platformRestriction', restrictions: open },
    { id: 'default-limit', displayName: 'All users and all devices', priority: 0, isDefault: true, assignments: [], type: 'limit', limit: 5 },
  ];
  for (let i = 1; i <= 20; i++) {
    list.push({
      id: `platform-${i}`,
      displayName: `Platform ${i}`,
      priority: i,
      isDefault: false,
      type: 'platformRestriction',
      assignments: [
        { target: { kind: 'group', groupId: `g${i}` }, filter: { id: `f${i}`, displayName: `f${i}`, mode: i % 2 ? 'include' : 'exclude', rule: `(device.manufacturer -eq "Apple") and (device.osVersion -startsWith "1${i % 10}")` } },
        { target: { kind: 'exclusionGroup', groupId: `x${i}` } },
      ],
      restrictions: { ...open, ios: { platformBlocked: false, personalDeviceEnrollmentBlocked: i % 3 === 0, osMinimumVersion: '15.0' } },
    });
  }
  for (let i = 1; i <= 10; i++) {
    list.push({ id: `limit-${i}`, displayName: `Limit ${i}`, priority: i, isDefault: false, type: 'limit', limit: 1 + (i % 15), assignments: [{ target: { kind: 'group', groupId: `g${i * 2}` } }] });
  }
  return list;
}

function factsFor(i: number): EnrollmentFacts {
  const groupIds = Array.from({ length: 6 }, (_, k) => `g${((i + k * 7) % 25) + 1}`);
  if (i % 4 === 0) groupIds.push(`x${(i % 20) + 1}`);
  return {
    tenantId: 't1',
    now: NOW,
    platform: 'ios',
    method: i % 5 === 0 ? 'appleAutomatedDeviceEnrollment' : 'appleCompanyPortal',
    userDriven: true,
    user: { id: `u${i}`, userPrincipalName: `user${i}@contoso.com`, groupIds, isDeviceEnrollmentManager: false },
    device: { osVersion: `1${i % 10}.${i % 4}`, manufacturer: 'Apple', model: 'iPhone15,2', serialNumber: `F${i}`, matchesCorporateIdentifier: i % 7 === 0 },
    userDevices: Array.from({ length: i % 6 }, (_, k) => ({
      id: `d${i}-${k}`,
      enrolledDateTime: '2026-03-01T00:00:00.000Z',
      lastContactDateTime: '2026-05-30T00:00:00.000Z',
      registrationPending: false,
      sharedMode: false,
      deleted: false,
    })),
  } as EnrollmentFacts;
}

export function policyEvaluation(opts: { durationMs: number }): ScenarioResult {
  const set = policies();
  const facts = Array.from({ length: 1000 }, (_, i) => factsFor(i));
  // Warm the JIT before measuring.
  for (let i = 0; i < 5000; i++) evaluateEnrollment(facts[i % facts.length]!, set);
  let decisions = 0;
  let allowed = 0;
  const rssBefore = process.memoryUsage().rss;
  let peakRss = rssBefore;
  const cpu = process.cpuUsage();
  const started = performance.now();
  while (performance.now() - started < opts.durationMs) {
    for (let k = 0; k < 1000; k++) {
      if (evaluateEnrollment(facts[(decisions + k) % facts.length]!, set).allowed) allowed++;
    }
    decisions += 1000;
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return {
    id: 'e',
    name: 'Policy evaluation (pure engine)',
    unit: 'decisions/s',
    value: Math.round(decisions / seconds),
    details: { decisions, allowedShare: Math.round((allowed / decisions) * 1000) / 1000, policies: set.length, note: 'in the bench process, one core; no server or store involved' },
    server: { peakRssMb: Math.round(peakRss / 1048576), cpuSeconds: Math.round(((used.user + used.system) / 1e6) * 100) / 100, process: 'bench' },
  };
}
