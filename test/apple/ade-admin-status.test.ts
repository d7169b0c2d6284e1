import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withFullProfileIds } from '../../src/apple/ade/admin/device-service.js';
import { deviceView } from '../../src/apple/ade/admin/device-view.js';
import {
  daysUntil,
  deviceStatus,
  emptyStatusCounts,
  enrollmentStateOf,
  fullProfileId,
  NEVER,
  platformOfAppleDevice,
  profilePlatformOf,
  serialProblem,
  tokenStatus,
  tokenTypeOfOrg,
  toTokenEntity,
  type DeviceStatusInput,
} from '../../src/apple/ade/admin/model.js';
import { defaultSettings, settingsJson } from '../../src/apple/ade/profiles/index.js';
import type { Store } from '../../src/store/db.js';
import type { DepTokensTable } from '../../src/store/schema.js';
import { ensureDefaultTenant } from '../../src/tenancy/service.js';
import { createTestStore } from '../helpers/store.js';

/** The pure rules of the ADE admin API, and the device list's SQL agreeing with them. */

const base: DeviceStatusInput = {
  removedFromAppleAt: null,
  enrollmentState: 'notContacted',
  seenAtApple: true,
  assignmentResult: null,
  effectiveProfileId: 'P1',
  effectiveProfileAppleUuid: 'U1',
  appleProfileUuid: null,
};

describe('deviceStatus', () => {
  it('is removedFromAbm once released, whatever else holds', () => {
    expect(deviceStatus({ ...base, removedFromAppleAt: '2026-01-01T00:00:00.000Z', enrollmentState: 'enrolled', appleProfileUuid: 'U1' })).toBe('removedFromAbm');
  });
  it('is enrolled for enrolled and pendingReset devices', () => {
    expect(deviceStatus({ ...base, enrollmentState: 'enrolled' })).toBe('enrolled');
    expect(deviceStatus({ ...base, enrollmentState: 'pendingReset', seenAtApple: false, effectiveProfileId: null })).toBe('enrolled');
  });
  it('is notContacted for a serial Apple hasn\'t listed for us, unless Apple took an assignment for it', () => {
    expect(deviceStatus({ ...base, seenAtApple: false })).toBe('notContacted');
    expect(deviceStatus({ ...base, seenAtApple: false, assignmentResult: 'NOT_ACCESSIBLE' })).toBe('notContacted');
    expect(deviceStatus({ ...base, seenAtApple: false, assignmentResult: 'SUCCESS', appleProfileUuid: 'U1' })).toBe('readyToEnroll');
  });
  it('is missingProfile with no chosen profile and no default', () => {
    expect(deviceStatus({ ...base, effectiveProfileId: null, effectiveProfileAppleUuid: null })).toBe('missingProfile');
  });
  it('is readyToEnroll when Apple holds the effective profile\'s current UUID', () => {
    expect(deviceStatus({ ...base, appleProfileUuid: 'U1', assignmentResult: 'SUCCESS' })).toBe('readyToEnroll');
    // Seen by the sync without our assignment result (e.g. assigned before a restore).
    expect(deviceStatus({ ...base, appleProfileUuid: 'U1' })).toBe('readyToEnroll');
  });
  it('is assigned while Apple doesn\'t hold it: pending, failed, an old UUID, or the profile not defined yet', () => {
    for (const assignmentResult of ['PENDING', 'FAILED', 'THROTTLED', 'NOT_ACCESSIBLE', null]) expect(deviceStatus({ ...base, assignmentResult })).toBe('assigned');
    expect(deviceStatus({ ...base, appleProfileUuid: 'U0', assignmentResult: 'SUCCESS' })).toBe('assigned');
    expect(deviceStatus({ ...base, effectiveProfileAppleUuid: null, appleProfileUuid: null })).toBe('assigned');
  });
});

describe('enrollmentStateOf', () => {
  const d = { enrollmentState: 'enrolled', enrolledProfileId: 'P1', enrolledProfileRevision: 2, effectiveProfileId: 'P1', effectiveProfileRevision: 2 };
  it('passes other states through', () => {
    for (const s of ['notContacted', 'failed', 'blocked', 'unknown', 'pendingReset']) expect(enrollmentStateOf({ ...d, enrollmentState: s, effectiveProfileRevision: 9 })).toBe(s);
  });
  it('is enrolled with the current revision of the effective profile, or when either profile is unknown', () => {
    expect(enrollmentStateOf(d)).toBe('enrolled');
    expect(enrollmentStateOf({ ...d, enrolledProfileRevision: 3 })).toBe('enrolled');
    expect(enrollmentStateOf({ ...d, enrolledProfileId: null })).toBe('enrolled');
    expect(enrollmentStateOf({ ...d, effectiveProfileId: null })).toBe('enrolled');
  });
  it('is pendingReset with an older revision or another profile', () => {
    expect(enrollmentStateOf({ ...d, enrolledProfileRevision: 1 })).toBe('pendingReset');
    expect(enrollmentStateOf({ ...d, enrolledProfileRevision: null })).toBe('pendingReset');
    expect(enrollmentStateOf({ ...d, effectiveProfileId: 'P2' })).toBe('pendingReset');
  });
});

describe('token rules', () => {
  const now = new Date('2026-06-01T00:00:00.000Z');
  it('derives the token status', () => {
    expect(tokenStatus({ uploaded: false, expiration: null, appleStatus: 'T_C_NOT_SIGNED' }, now)).toBe('pendingUpload');
    expect(tokenStatus({ uploaded: true, expiration: '2027-01-01T00:00:00.000Z', appleStatus: null }, now)).toBe('active');
    expect(tokenStatus({ uploaded: true, expiration: now.toISOString(), appleStatus: null }, now)).toBe('expired');
    expect(tokenStatus({ uploaded: true, expiration: new Date(now.getTime() + 1).toISOString(), appleStatus: null }, now)).toBe('active');
    expect(tokenStatus({ uploaded: true, expiration: '2027-01-01T00:00:00.000Z', appleStatus: 'Apple: the organisation has not accepted … (T_C_NOT_SIGNED)' }, now)).toBe('termsNotSigned');
    expect(tokenStatus({ uploaded: true, expiration: '2027-01-01T00:00:00.000Z', appleStatus: 'Apple rejected the server token (token_rejected)' }, now)).toBe('tokenRejected');
  });
  it('counts days until expiration like the push certificate', () => {
    expect(daysUntil(null, now)).toBeNull();
    expect(daysUntil('2027-06-01T00:00:00.000Z', now)).toBe(365);
    expect(daysUntil('2026-06-01T00:00:01.000Z', now)).toBe(1);
    expect(daysUntil(now.toISOString(), now)).toBe(0);
    expect(daysUntil('2026-05-31T23:59:59.000Z', now)).toBe(-1);
  });
  it('maps org_type to tokenType', () => {
    expect(tokenTypeOfOrg('edu')).toBe('appleSchoolManager');
    expect(tokenTypeOfOrg('org')).toBe('dep');
    expect(tokenTypeOfOrg(undefined)).toBe('dep');
  });
  it('shows unset non-null times as 0001-01-01', () => {
    const row = {
      id: 't',
      token_name: null,
      apple_identifier: null,
      token_type: 'weird',
      data_sharing_consent: 1,
      token_expiration: null,
      oauth_secret_id: null,
      server_name: null,
      org_name: null,
      share_sds: 0,
      sync_status: 'none',
      last_sync_triggered_at: null,
      last_successful_sync_at: null,
      last_sync_error_code: 0,
      last_sync_error: null,
      apple_status: null,
      synced_device_count: 0,
      updated_at: '2026-01-01T00:00:00.000Z',
    };
    expect(toTokenEntity(row, ['0'], emptyStatusCounts(), now)).toMatchObject({
      tokenExpirationDateTime: NEVER,
      lastSuccessfulSyncDateTime: NEVER,
      lastSyncTriggeredDateTime: NEVER,
      tokenType: 'none',
    });
  });
});

describe('devices and ids', () => {
  it('knows the platform of Apple device families and OSes', () => {
    expect(['iPhone', 'iPad', 'iPod', 'Mac', 'AppleTV', 'Vision', 'Toaster'].map((f) => platformOfAppleDevice(f))).toEqual(['ios', 'ios', 'ios', 'macOS', 'tvOS', 'visionOS', 'unknown']);
    expect(['iOS', 'iPadOS', 'OSX', 'tvOS', 'visionOS', undefined].map((os) => platformOfAppleDevice(undefined, os))).toEqual(['ios', 'ios', 'macOS', 'tvOS', 'visionOS', 'unknown']);
    expect(['ios', 'macOS', 'tvOS', 'unknown'].map(profilePlatformOf)).toEqual(['iOS', 'macOS', null, null]);
  });
  it('accepts serials of letters and digits', () => {
    expect(serialProblem('C02XK1ZZJGH5')).toBeNull();
    expect(serialProblem(' c02 ')).toBeNull();
    expect(serialProblem('C02 X')).toBe('must contain only letters and digits');
    expect(serialProblem('C02-X')).toBe('must contain only letters and digits');
    expect(serialProblem('C02.X')).toBe('must not contain a period');
    expect(serialProblem('')).toBe('is required');
    expect(serialProblem('A'.repeat(64))).toBeNull();
    expect(serialProblem('A'.repeat(65))).toBe('must be at most 64 characters');
  });
  it('makes bare profile GUIDs full ids of the token, in $filter trees too', () => {
    const guid = 'A1B2C3D4-0000-4000-8000-000000000001';
    expect(fullProfileId('tok', guid)).toBe(`tok_${guid.toLowerCase()}`);
    expect(fullProfileId('tok', 'tok_x')).toBe('tok_x');
    const tree = withFullProfileIds(
      {
        kind: 'and',
        left: { kind: 'compare', op: 'eq', property: 'requestedEnrollmentProfileId', value: { type: 'string', value: guid } },
        right: { kind: 'not', expr: { kind: 'compare', op: 'eq', property: 'serialNumber', value: { type: 'string', value: guid } } },
      },
      'tok',
    );
    expect(tree).toEqual({
      kind: 'and',
      left: { kind: 'compare', op: 'eq', property: 'requestedEnrollmentProfileId', value: { type: 'string', value: `tok_${guid.toLowerCase()}` } },
      right: { kind: 'not', expr: { kind: 'compare', op: 'eq', property: 'serialNumber', value: { type: 'string', value: guid } } },
    });
  });
});

describe('the device view\'s SQL computes the same status, enrollmentState and effective profile', () => {
  let store: Store;
  let tenantId: string;
  const tokenId = 'tok';
  const profiles = {
    P1: { platform: 'iOS', uuid: 'U1', revision: 2 },
    P2: { platform: 'iOS', uuid: null, revision: 1 },
    P3: { platform: 'macOS', uuid: 'U3', revision: 1 },
  } as const;
  beforeAll(async () => {
    store = await createTestStore();
    tenantId = (await ensureDefaultTenant(store, new Date())).tenantId;
    const now = new Date().toISOString();
    const token: Partial<DepTokensTable> & Pick<DepTokensTable, 'id' | 'tenant_id' | 'token_type' | 'data_sharing_consent' | 'encryption_key_history' | 'share_sds' | 'sync_phase' | 'sync_status' | 'next_sync_full' | 'last_sync_error_code' | 'synced_device_count' | 'created_at' | 'updated_at'> = {
      id: tokenId,
      tenant_id: tenantId,
      token_type: 'dep',
      data_sharing_consent: 1,
      encryption_key_history: '[]',
      share_sds: 0,
      sync_phase: 'fetch',
      sync_status: 'none',
      next_sync_full: 1,
      last_sync_error_code: 0,
      synced_device_count: 0,
      created_at: now,
      updated_at: now,
    };
    await store.db.insertInto('dep_tokens').values(token).execute();
    for (const [id, p] of Object.entries(profiles)) {
      await store.db
        .insertInto('dep_profiles')
        .values({ id, tenant_id: tenantId, token_id: tokenId, platform: p.platform, display_name: id, settings: settingsJson(defaultSettings(p.platform)), apple_profile_uuid: p.uuid, revision: p.revision, created_at: now, updated_at: now })
        .execute();
    }
  });
  afterAll(async () => store.close());

  it('for any device and token defaults', async () => {
    const profileId = fc.constantFrom(null, 'P1', 'P2', 'P3');
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          removed: fc.boolean(),
          enrollmentState: fc.constantFrom('notContacted', 'enrolled', 'pendingReset', 'failed', 'unknown', 'blocked'),
          seen: fc.boolean(),
          assignmentResult: fc.constantFrom(null, 'SUCCESS', 'NOT_ACCESSIBLE', 'FAILED', 'THROTTLED', 'PENDING'),
          requested: profileId,
          platform: fc.constantFrom('ios', 'macOS', 'unknown', 'tvOS'),
          defaultIos: fc.constantFrom(null, 'P1', 'P2'),
          defaultMac: fc.constantFrom(null, 'P3'),
          appleUuid: fc.constantFrom(null, 'U1', 'U2', 'U3'),
          enrolledProfile: profileId,
          enrolledRevision: fc.constantFrom(null, 1, 2, 3),
        }),
        async (g) => {
          const now = new Date().toISOString();
          await store.db.updateTable('dep_tokens').set({ default_ios_profile_id: g.defaultIos, default_macos_profile_id: g.defaultMac }).where('id', '=', tokenId).execute();
          await store.db.deleteFrom('dep_devices').execute();
          await store.db
            .insertInto('dep_devices')
            .values({
              id: 'd1',
              tenant_id: tenantId,
              token_id: tokenId,
              serial_number: 'S1',
              platform: g.platform,
              discovery_source: 'deviceEnrollmentProgram',
              seen_at_apple: g.seen ? 1 : 0,
              removed_from_apple_at: g.removed ? now : null,
              enrollment_state: g.enrollmentState,
              assignment_result: g.assignmentResult,
              requested_profile_id: g.requested,
              apple_profile_uuid: g.appleUuid,
              enrolled_profile_id: g.enrolledProfile,
              enrolled_profile_revision: g.enrolledRevision,
              is_supervised: 0,
              created_at: now,
              updated_at: now,
            })
            .execute();
          const v = await deviceView(store.db, tenantId).executeTakeFirstOrThrow();
          const effective = g.requested ?? (g.platform === 'ios' ? g.defaultIos : g.platform === 'macOS' ? g.defaultMac : null);
          const p = effective ? profiles[effective as keyof typeof profiles] : null;
          expect(v.effective_profile_id).toBe(effective);
          expect(v.status).toBe(
            deviceStatus({
              removedFromAppleAt: g.removed ? now : null,
              enrollmentState: g.enrollmentState,
              seenAtApple: g.seen,
              assignmentResult: g.assignmentResult,
              effectiveProfileId: effective,
              effectiveProfileAppleUuid: p?.uuid ?? null,
              appleProfileUuid: g.appleUuid,
            }),
          );
          expect(v.enrollment_state_now).toBe(
            enrollmentStateOf({
              enrollmentState: g.enrollmentState,
              enrolledProfileId: g.enrolledProfile,
              enrolledProfileRevision: g.enrolledRevision,
              effectiveProfileId: effective,
              effectiveProfileRevision: p?.revision ?? null,
            }),
          );
          expect(Number(v.is_deleted)).toBe(g.removed ? 1 : 0);
        },
      ),
      { numRuns: 150 },
    );
  });
});
