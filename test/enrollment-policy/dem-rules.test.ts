import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  canAddManager,
  checkDemEnrollment,
  DEM_LIMITS,
  DEM_UNSUPPORTED_METHODS,
  demDeviceRecord,
  withinAndroidWorkProfileQuota,
  withinDeviceQuota,
} from '../../src/enrollment-policy/dem/rules.js';
import type { EnrollmentMethod } from '../../src/enrollment-policy/evaluation/types.js';

describe('device enrollment manager rules', () => {
  it('has the seed limits: 150 accounts, 1,000 devices each, 10 Android work-profile devices each', () => {
    expect(DEM_LIMITS).toEqual({ maxManagersPerTenant: 150, maxDevicesPerManager: 1000, maxAndroidWorkProfileDevicesPerManager: 10 });
  });

  it.each([
    [148, true],
    [149, true], // the 150th may be added
    [150, false], // the 151st may not
    [151, false],
  ])('with %i accounts, one more may be added: %s', (n, ok) => {
    expect(canAddManager(n)).toBe(ok);
  });

  it.each([
    [999, true], // the 1,000th device
    [1000, false], // the 1,001st
    [1001, false],
  ])('having enrolled %i devices, one more is allowed: %s', (n, ok) => {
    expect(withinDeviceQuota(n)).toBe(ok);
    expect(checkDemEnrollment({ method: 'appleCompanyPortal', enrolledCount: n, androidWorkProfileCount: 0 }).allowed).toBe(ok);
  });

  it.each([
    [9, true], // the 10th work-profile device
    [10, false], // the 11th
    [11, false],
  ])('having enrolled %i Android work-profile devices, one more is allowed: %s', (n, ok) => {
    expect(withinAndroidWorkProfileQuota(n)).toBe(ok);
    expect(checkDemEnrollment({ method: 'androidWorkProfile', enrolledCount: n, androidWorkProfileCount: n })).toEqual(
      ok ? { allowed: true } : { allowed: false, reason: 'demLimitReached', message: expect.stringMatching(/work-profile devices; the limit is 10/) },
    );
  });

  it('counts the 10-device cap only for personally-owned work profiles', () => {
    expect(checkDemEnrollment({ method: 'androidCompanyPortal', enrolledCount: 50, androidWorkProfileCount: 10 })).toEqual({ allowed: true });
    expect(checkDemEnrollment({ method: 'windowsAzureAdJoinSettings', enrolledCount: 50, androidWorkProfileCount: 10 })).toEqual({ allowed: true });
  });

  it('refuses ADE, Apple School Manager, Apple Configurator, Android corporate work profile and fully managed', () => {
    for (const method of ['appleAde', 'appleAsm', 'appleConfigurator', 'androidCorporateWorkProfile', 'androidFullyManaged'] as const) {
      expect(checkDemEnrollment({ method, enrolledCount: 0, androidWorkProfileCount: 0 })).toMatchObject({ allowed: false, reason: 'demNotAllowedForMethod' });
    }
    expect(DEM_UNSUPPORTED_METHODS).toHaveLength(5);
    // The seed's supported methods (L1448–1455).
    for (const method of ['windowsAutopilot', 'windowsBulk', 'appleCompanyPortal', 'androidCompanyPortal', 'windowsAzureAdJoinOobe'] as const) {
      expect(checkDemEnrollment({ method, enrolledCount: 0, androidWorkProfileCount: 0 })).toEqual({ allowed: true });
    }
  });

  it('property: allowed exactly when the method is usable and both quotas have room; the method is reported first', () => {
    const methods: EnrollmentMethod[] = ['appleAde', 'appleCompanyPortal', 'androidWorkProfile', 'androidFullyManaged', 'windowsBulk', 'androidCompanyPortal'];
    fc.assert(
      fc.property(fc.constantFrom(...methods), fc.integer({ min: 0, max: 1200 }), fc.integer({ min: 0, max: 20 }), (method, enrolled, wp) => {
        const r = checkDemEnrollment({ method, enrolledCount: enrolled, androidWorkProfileCount: wp });
        const methodOk = !DEM_UNSUPPORTED_METHODS.includes(method);
        const quotaOk = enrolled < 1000 && (method !== 'androidWorkProfile' || wp < 10);
        expect(r.allowed).toBe(methodOk && quotaOk);
        if (!methodOk) expect(r).toMatchObject({ reason: 'demNotAllowedForMethod' });
        else if (!quotaOk) expect(r).toMatchObject({ reason: 'demLimitReached' });
      }),
    );
  });

  it('records DEM devices as userless, shared and corporate, with the DEM as the enrolling account', () => {
    expect(demDeviceRecord({ userPrincipalName: 'dem@contoso.com' })).toEqual({
      userId: null,
      userPrincipalName: null,
      userDisplayName: null,
      emailAddress: null,
      enrolledByUserPrincipalName: 'dem@contoso.com',
      deviceEnrollmentType: 'deviceEnrollmentManager',
      managedDeviceOwnerType: 'company',
    });
  });
});
