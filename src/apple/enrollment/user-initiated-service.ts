import type { VerifiedUser } from '../../directory/passwords.js';
import type { UserChoice } from '../../enrollment-policy/apple-enrollment-types/rules.js';
import type { AppleEnrollmentTypeService } from '../../enrollment-policy/apple-enrollment-types/service.js';
import type { EnrollmentGate, EnrollmentRequest, GateDecision } from '../../enrollment-policy/gate/gate.js';
import { DAY, MINUTE, type Clock } from '../../shared/time.js';
import type { Executor, Store } from '../../store/db.js';
import type { EnrollmentIntent, ProfileIssuer } from '../mdm/contracts.js';
import type { ReadyPushCertificate } from '../push-certificate/index.js';
import type { EnrollmentIntentStore } from './intents.js';
import { enrollmentTypeStep, managedAppleIdOf, USER_INITIATED_KINDS, type EnrollmentTypeStep, type PagePlatform } from './user-initiated-rules.js';

/**
 * The decisions behind the user-initiated enrollment page: the enrollment type the signed-in
 * user gets, the gate, and the intent with its signed profile. A device enrollment's serial is
 * unknown until the device installs the profile, so the gate sees no identifiers: ownership is the
 * user's answer when asked, else personal, and the MDM core finalizes it at Authenticate.
 */

/** How long the intent behind a served profile lives; its SCEP challenge lasts 15 minutes. */
export const PAGE_INTENT_TTL_MS = DAY;
export const PAGE_CHALLENGE_TTL_MS = 15 * MINUTE;

export interface UserInitiatedDeps {
  store: Store;
  clock: Clock;
  intents: EnrollmentIntentStore;
  gate: EnrollmentGate;
  enrollmentTypes: AppleEnrollmentTypeService;
  profileIssuer: ProfileIssuer;
  pushGate(db: Executor, tenantId: string, now?: Date): Promise<ReadyPushCertificate>;
}

/** What the page knows about the device and the user's answers. */
export interface PageDevice {
  platform: PagePlatform;
  osVersion: string | null;
  activityId: string;
}

export type PageOutcome =
  | { kind: 'ask'; step: Exclude<EnrollmentTypeStep['kind'], 'chosen'> }
  | { kind: 'refused'; decision: GateDecision }
  | { kind: 'profile'; signedProfile: Buffer; intent: EnrollmentIntent };

export class UserInitiatedService {
  constructor(private readonly deps: UserInitiatedDeps) {}

  async organizationName(tenantId: string): Promise<string | undefined> {
    return (await this.deps.store.db.selectFrom('tenants').select('display_name').where('id', '=', tenantId).executeTakeFirst())?.display_name;
  }

  /** Throws the push certificate's 409 when Apple enrollment can't start. */
  async requirePushCertificate(tenantId: string): Promise<ReadyPushCertificate> {
    return this.deps.pushGate(this.deps.store.db, tenantId, this.deps.clock.now());
  }

  private async groupIds(tenantId: string, userId: string): Promise<string[]> {
    const rows = await this.deps.store.db.selectFrom('group_members').select('group_id').where('tenant_id', '=', tenantId).where('member_id', '=', userId).execute();
    return rows.map((r) => r.group_id);
  }

  /** The enrollment-type profile's answer for this user and device, given the answers so far. */
  async step(tenantId: string, user: VerifiedUser, device: PageDevice, answers: Partial<UserChoice>): Promise<EnrollmentTypeStep> {
    const resolved = await this.deps.enrollmentTypes.resolveAppleEnrollmentType(this.deps.store.db, tenantId, user.id, await this.groupIds(tenantId, user.id), device.platform);
    return enrollmentTypeStep(resolved, answers);
  }

  gateRequest(tenantId: string, user: VerifiedUser, device: PageDevice, enrollment: 'device' | 'user'): EnrollmentRequest {
    return {
      tenantId,
      platform: device.platform === 'macOS' ? 'mac' : 'ios',
      method: USER_INITIATED_KINDS[enrollment].method,
      userDriven: true,
      userId: user.id,
      // The device hasn't reported its identifiers yet (a User Enrollment never will).
      device: { osPlatform: device.platform, osVersion: device.osVersion, manufacturer: 'Apple' },
      ...(enrollment === 'user' ? { userEnrollmentProfileApplies: true } : {}),
      activityId: device.activityId,
    };
  }

  /**
   * The enrollment type, the gate, then the intent and its signed profile in one transaction; or
   * the question to ask, or the gate's refusal (termsNotAccepted included: the page shows the terms).
   */
  async enroll(tenantId: string, user: VerifiedUser, device: PageDevice, answers: Partial<UserChoice>): Promise<PageOutcome> {
    const step = await this.step(tenantId, user, device, answers);
    if (step.kind !== 'chosen') return { kind: 'ask', step: step.kind };
    const kind = USER_INITIATED_KINDS[step.enrollment];
    const request = this.gateRequest(tenantId, user, device, step.enrollment);
    const decision = await this.deps.gate.decide(request);
    if (!decision.allowed) return { kind: 'refused', decision };
    const { topic } = await this.requirePushCertificate(tenantId);
    const now = this.deps.clock.now();
    return this.deps.store.transaction(async (trx) => {
      const intent = await this.deps.intents.create(trx, {
        tenantId,
        source: kind.source,
        enrollmentType: kind.enrollmentType,
        platform: device.platform,
        // A User Enrollment collects no serial number, UDID or IMEI (-D §7); a device enrollment learns them at Authenticate.
        serialNumber: null,
        udid: null,
        imei: null,
        osVersion: device.osVersion,
        profileId: step.profileId,
        userId: user.id,
        ownership: step.enrollment === 'user' ? 'personal' : (step.ownership ?? decision.ownership),
        deviceEnrollmentType: kind.deviceEnrollmentType,
        gateRequest: request,
        gateDecision: decision,
        expiresAt: new Date(now.getTime() + PAGE_INTENT_TTL_MS),
        userAffinity: 'user',
      });
      const { signedProfile } = await this.deps.profileIssuer.issueProfile(trx, intent, {
        topic,
        challengeExpiresAt: new Date(now.getTime() + PAGE_CHALLENGE_TTL_MS),
        ...(step.enrollment === 'user' ? { managedAppleId: managedAppleIdOf(user) } : {}),
      });
      return { kind: 'profile' as const, signedProfile, intent };
    });
  }
}
