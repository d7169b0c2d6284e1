import crypto from 'node:crypto';
import type { Executor, Store, Trx } from '../../store/db.js';
import type { Clock } from '../../shared/time.js';
import { matchesCorporateIdentifier } from '../corporate-identifiers/service.js';
import { demEnrolledCounts, isDeviceEnrollmentManager } from '../dem/service.js';
import { evaluateEnrollment } from '../evaluation/evaluate.js';
import type { CountedDevice, EnrollmentDecision, EnrollmentFacts, EnrollmentMethod, RestrictionPlatform } from '../evaluation/types.js';
import { recordEnrollmentAttempt } from '../reports/attempts.js';
import { loadRestrictionPolicies } from '../restrictions/loader.js';
import type { TermsService } from '../terms/service.js';

/**
 * The seam every enrollment path (Apple, Windows, Android) calls: it gathers the facts from the
 * store, runs the pure decision (evaluation/evaluate.ts) and reports the outcome. A refusal is
 * recorded at once in its own transaction (the enrollment itself will roll back); a success is
 * recorded by the caller, in the transaction that writes the device, with `recordSuccess`.
 */

export interface EnrollmentRequest {
  tenantId: string;
  platform: RestrictionPlatform;
  method: EnrollmentMethod;
  userDriven: boolean;
  /** The signed-in user, when there is one. */
  userId?: string | null;
  device: {
    osPlatform: string;
    osVersion?: string | null;
    manufacturer?: string | null;
    model?: string | null;
    serialNumber?: string | null;
    imei?: string | null;
    autopilotRegistered?: boolean;
    supportsWorkProfile?: boolean;
    isVirtualMachine?: boolean;
    filterProperties?: Record<string, string | boolean | null>;
  };
  userEnrollmentProfileApplies?: boolean;
  /** Correlates the attempt in reports and the user's support screen; generated when absent. */
  activityId?: string;
}

export interface GateDecision extends EnrollmentDecision {
  activityId: string;
  /** The report row of a refusal. */
  attemptId?: string;
  facts: EnrollmentFacts;
}

/** Enrollment types whose devices are "shared mode" and don't count toward a user's limit (-E §5.4). */
const SHARED_ENROLLMENT_TYPES = new Set(['windowsCoManagement', 'windowsBulkUserless', 'windowsBulkAzureDomainJoin', 'windowsAzureADJoinUsingDeviceAuth', 'deviceEnrollmentManager']);
const PENDING_REGISTRATION_STATES = new Set(['notRegisteredPendingEnrollment', 'approvalPending']);

export class EnrollmentGate {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly terms: TermsService,
  ) {}

  /** Facts for a request, read from the store (pure inputs to the decision). */
  async facts(db: Executor, req: EnrollmentRequest): Promise<EnrollmentFacts> {
    const now = this.clock.now().toISOString();
    const facts: EnrollmentFacts = {
      tenantId: req.tenantId,
      now,
      platform: req.platform,
      method: req.method,
      userDriven: req.userDriven,
      device: {
        osVersion: req.device.osVersion ?? null,
        manufacturer: req.device.manufacturer ?? null,
        model: req.device.model ?? null,
        serialNumber: req.device.serialNumber ?? null,
        imei: req.device.imei ?? null,
        matchesCorporateIdentifier: await matchesCorporateIdentifier(db, req.tenantId, {
          serialNumber: req.device.serialNumber ?? null,
          imei: req.device.imei ?? null,
          manufacturer: req.device.manufacturer ?? null,
          model: req.device.model ?? null,
          platform: req.platform,
          method: req.method,
          osVersion: req.device.osVersion ?? null,
        }),
        ...(req.device.autopilotRegistered !== undefined ? { autopilotRegistered: req.device.autopilotRegistered } : {}),
        ...(req.device.supportsWorkProfile !== undefined ? { supportsWorkProfile: req.device.supportsWorkProfile } : {}),
        ...(req.device.isVirtualMachine !== undefined ? { isVirtualMachine: req.device.isVirtualMachine } : {}),
        ...(req.device.filterProperties ? { filterProperties: req.device.filterProperties } : {}),
      },
      ...(req.userEnrollmentProfileApplies !== undefined ? { userEnrollmentProfileApplies: req.userEnrollmentProfileApplies } : {}),
    };
    if (!req.userId) return facts;
    const user = await db
      .selectFrom('users')
      .select(['id', 'user_principal_name', 'device_enrollment_limit'])
      .where('tenant_id', '=', req.tenantId)
      .where('id', '=', req.userId)
      .executeTakeFirst();
    if (!user) return facts;
    const groups = await db.selectFrom('group_members').select('group_id').where('tenant_id', '=', req.tenantId).where('member_id', '=', user.id).execute();
    const groupIds = groups.map((g) => g.group_id);
    const isDem = await isDeviceEnrollmentManager(db, req.tenantId, user.id);
    facts.user = {
      id: user.id,
      userPrincipalName: user.user_principal_name,
      groupIds,
      deviceEnrollmentLimit: user.device_enrollment_limit,
      isDeviceEnrollmentManager: isDem,
    };
    if (isDem) {
      const counts = await demEnrolledCounts(db, req.tenantId, user.id);
      facts.demEnrolledCount = counts.devices;
      facts.demEnrolledWorkProfileCount = counts.androidWorkProfileDevices;
    }
    const devices = await db
      .selectFrom('managed_devices')
      .select(['id', 'enrolled_date_time', 'last_sync_date_time', 'device_registration_state', 'device_enrollment_type', 'autopilot_enrolled'])
      .where('tenant_id', '=', req.tenantId)
      .where('user_id', '=', user.id)
      .execute();
    facts.userDevices = devices.map(
      (d): CountedDevice => ({
        id: d.id,
        enrolledDateTime: d.enrolled_date_time,
        lastContactDateTime: d.last_sync_date_time,
        registrationPending: PENDING_REGISTRATION_STATES.has(d.device_registration_state),
        sharedMode: SHARED_ENROLLMENT_TYPES.has(d.device_enrollment_type) || d.autopilot_enrolled === 1,
        // Deleted devices leave the table, so every row here is live.
        deleted: false,
      }),
    );
    const terms = await this.terms.termsForUser(db, req.tenantId, user.id, groupIds);
    facts.terms = terms.map((t) => ({ termsId: t.termsId, version: t.version, accepted: t.accepted, displayName: t.displayName }));
    return facts;
  }

  /** Decides an enrollment. A refusal is reported before this returns. */
  async decide(req: EnrollmentRequest, db: Executor = this.store.db): Promise<GateDecision> {
    const activityId = req.activityId ?? crypto.randomUUID();
    const facts = await this.facts(db, req);
    const policies = await loadRestrictionPolicies(db, req.tenantId);
    const decision = evaluateEnrollment(facts, policies);
    const result: GateDecision = { ...decision, activityId, facts };
    if (!decision.allowed) {
      const recorded = await this.store.transaction((trx) =>
        recordEnrollmentAttempt(trx, req.tenantId, {
          outcome: 'failed',
          reason: decision.reason,
          message: decision.detail ?? decision.message,
          osPlatform: req.device.osPlatform,
          osVersion: req.device.osVersion ?? null,
          userId: facts.user?.id ?? req.userId ?? null,
          userPrincipalName: facts.user?.userPrincipalName ?? null,
          method: req.method,
          activityId,
          applied: decision.applied,
          at: facts.now,
        }),
      );
      result.attemptId = recorded.attemptId;
    }
    return result;
  }

  /** Records an allowed enrollment once its device exists, in the transaction that wrote it. */
  async recordSuccess(trx: Trx, req: EnrollmentRequest, decision: GateDecision, deviceId: string): Promise<string> {
    const recorded = await recordEnrollmentAttempt(trx, req.tenantId, {
      outcome: 'succeeded',
      osPlatform: req.device.osPlatform,
      osVersion: req.device.osVersion ?? null,
      userId: decision.facts.user?.id ?? null,
      userPrincipalName: decision.facts.user?.userPrincipalName ?? null,
      method: req.method,
      activityId: decision.activityId,
      deviceId,
      applied: decision.applied,
      at: decision.facts.now,
    });
    return recorded.attemptId;
  }
}
