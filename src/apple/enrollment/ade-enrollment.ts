import crypto from 'node:crypto';
import type { Logger } from 'pino';
import { readObjectTags } from '../../auth/scope-tags.js';
import type { VerifiedUser } from '../../directory/passwords.js';
import { ENROLLMENT_PATH_REASONS, type EnrollmentPathReasonCode } from '../../enrollment-policy/evaluation/reasons.js';
import type { EnrollmentMethod, EnrollmentReasonCode } from '../../enrollment-policy/evaluation/types.js';
import type { EnrollmentGate, EnrollmentRequest, GateDecision } from '../../enrollment-policy/gate/gate.js';
import { recordEnrollmentAttempt } from '../../enrollment-policy/reports/attempts.js';
import { GraphError } from '../../graph/errors.js';
import { DAY, MINUTE, type Clock } from '../../shared/time.js';
import type { Executor, Store } from '../../store/db.js';
import type { DepProfilesTable } from '../../store/schema.js';
import { deviceView } from '../ade/admin/device-view.js';
import { DEP_TOKEN_OBJECT } from '../ade/admin/model.js';
import { resolveAuthenticationMethod, storedProfileFromRow, type AuthenticationMethod, type StoredDepProfile } from '../ade/profiles/index.js';
import type { EnrollmentIntent, ProfileIssuer } from '../mdm/contracts.js';
import type { ReadyPushCertificate } from '../push-certificate/index.js';
import type { EnrollmentIntentStore } from './intents.js';
import { effectiveOsVersion, type MachineInfo } from './machine-info.js';

/**
 * The ADE front door's decisions, shared by the profile `url` (MachineInfo POST, legacy Basic
 * authentication) and `configuration_web_url` (the sign-in pages): which ADE record and profile a
 * verified device gets, whether a user must sign in, then the enrollment gate, the intent and the
 * signed profile. Refusals before the gate are filed in the enrollment failures report here; the
 * gate files its own.
 */

/** How long the intent behind a served profile lives; its SCEP challenge lasts 15 minutes (004-D §2.11). */
export const ADE_INTENT_TTL_MS = DAY;
export const ADE_CHALLENGE_TTL_MS = 15 * MINUTE;

/** A refusal the device (or the person at it) sees: status, code, message, and the report's activity id. */
export class AdeRefusal extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly activityId?: string,
  ) {
    super(message);
    this.name = 'AdeRefusal';
  }

  toGraphError(): GraphError {
    return new GraphError(this.statusCode, this.code, this.message, this.activityId ? { details: [{ code: 'ActivityId', message: this.activityId }] } : {});
  }
}

/** user: signed in now; userless: no affinity; pendingCompanyPortal: the user signs in to Company Portal later. */
export type UserAffinity = 'user' | 'userless' | 'pendingCompanyPortal';

/** Everything decided about a verified device before anyone signs in. */
export interface AdeDeviceContext {
  tenantId: string;
  machine: MachineInfo;
  /** OS_VERSION, else the major version its build belongs to. */
  osVersion: string | null;
  depDeviceId: string;
  tokenId: string;
  method: Extract<EnrollmentMethod, 'appleAde' | 'appleAsm'>;
  scopeTagIds: string[];
  profile: StoredDepProfile;
  profileRevision: number;
  /** The profile the device's URL named, when it differs from the one served. */
  urlProfileId: string;
  authentication: AuthenticationMethod;
  topic: string;
}

export interface AdeEnrollmentDeps {
  store: Store;
  clock: Clock;
  logger: Logger;
  intents: EnrollmentIntentStore;
  gate: EnrollmentGate;
  pushGate(db: Executor, tenantId: string, now?: Date): Promise<ReadyPushCertificate>;
  /** Bound late: CA + SCEP provides it. */
  profileIssuer(): ProfileIssuer | undefined;
}

export type AdeEnrollResult =
  | { kind: 'profile'; signedProfile: Buffer; intent: EnrollmentIntent }
  | { kind: 'refused'; decision: GateDecision; request: EnrollmentRequest };

const isMacVm = (product: string) => /^VirtualMac/.test(product);

export class AdeEnrollmentService {
  constructor(private readonly deps: AdeEnrollmentDeps) {}

  /**
   * The push certificate, the ADE record of the serial in this tenant, and its effective profile
   * (the admin's choice, else the token's default for the platform). Throws AdeRefusal (recorded)
   * or the push certificate's GraphError (recorded too).
   */
  async resolve(tenantId: string, urlProfileId: string, machine: MachineInfo): Promise<AdeDeviceContext> {
    const { store, clock } = this.deps;
    const db = store.db;
    const tenant = await db.selectFrom('tenants').select('id').where('id', '=', tenantId).executeTakeFirst();
    if (!tenant) throw new AdeRefusal(404, 'ResourceNotFound', 'This enrollment URL does not belong to an organization on this server.');
    const osVersion = effectiveOsVersion(machine);

    let topic: string;
    try {
      topic = (await this.deps.pushGate(db, tenantId, clock.now())).topic;
    } catch (err) {
      if (err instanceof GraphError) await this.recordPathFailure(tenantId, machine, osVersion, 'appleAde', 'pushCertificateNotReady', err.message);
      throw err;
    }

    const device = await deviceView(db, tenantId).where('d.serial_number', '=', machine.serialNumber).executeTakeFirst();
    if (!device || device.removed_from_apple_at !== null) {
      const detail = device
        ? `Device ${machine.serialNumber} was released from Apple Business Manager or Apple School Manager.`
        : `Device ${machine.serialNumber} is not in any enrollment program token of this organization.`;
      throw await this.refuse(tenantId, machine, osVersion, 'appleAde', 'deviceNotRegistered', detail);
    }
    const token = await db.selectFrom('dep_tokens').select(['id', 'token_type', 'default_ios_profile_id', 'default_macos_profile_id']).where('tenant_id', '=', tenantId).where('id', '=', device.token_id).executeTakeFirstOrThrow();
    const method = token.token_type === 'appleSchoolManager' ? 'appleAsm' : 'appleAde';
    const platformDefault = machine.platform === 'iOS' ? token.default_ios_profile_id : token.default_macos_profile_id;
    // The record's platform picks the default as the admin view does; an import of unknown platform uses the device's own.
    const profileId = device.effective_profile_id ?? (device.platform === 'ios' || device.platform === 'macOS' ? null : platformDefault);
    let row: DepProfilesTable | undefined;
    if (profileId) row = await db.selectFrom('dep_profiles').selectAll().where('tenant_id', '=', tenantId).where('id', '=', profileId).executeTakeFirst();
    if (!row) {
      throw await this.refuse(tenantId, machine, osVersion, method, 'missingProfile', `Device ${machine.serialNumber} has no enrollment profile assigned and its token has no default ${machine.platform} profile.`);
    }
    if (row.platform !== machine.platform) {
      throw await this.refuse(tenantId, machine, osVersion, method, 'missingProfile', `Profile "${row.display_name}" is for ${row.platform}, and device ${machine.serialNumber} is a ${machine.platform} device (${machine.product}).`);
    }
    const profile = storedProfileFromRow(row, row.id === platformDefault);
    if (urlProfileId !== row.id) {
      // Apple still holds an older assignment (ours is pending at Apple): the admin's current choice wins.
      this.deps.logger.info({ tenantId, serialNumber: machine.serialNumber, urlProfileId, profileId: row.id }, 'ADE device asked with another profile URL; serving its effective profile');
    }
    const tags = await readObjectTags(db, tenantId, DEP_TOKEN_OBJECT, [token.id]);
    return {
      tenantId,
      machine,
      osVersion,
      depDeviceId: device.id,
      tokenId: token.id,
      method,
      scopeTagIds: tags.get(token.id) ?? [],
      profile,
      profileRevision: row.revision,
      urlProfileId,
      authentication: resolveAuthenticationMethod(profile, machine.platform, osVersion),
      topic,
    };
  }

  /** Whether a user signs in before the profile is served (Setup Assistant legacy, modern, Platform SSO). */
  needsUser(ctx: Pick<AdeDeviceContext, 'authentication'>): boolean {
    return ctx.authentication === 'setupAssistantLegacy' || ctx.authentication === 'setupAssistantModern' || ctx.authentication === 'platformSSO';
  }

  userAffinity(ctx: Pick<AdeDeviceContext, 'authentication'>, user: VerifiedUser | null): UserAffinity {
    if (user) return 'user';
    return ctx.authentication === 'companyPortal' ? 'pendingCompanyPortal' : 'userless';
  }

  gateRequest(ctx: AdeDeviceContext, user: VerifiedUser | null, activityId: string = crypto.randomUUID()): EnrollmentRequest {
    const m = ctx.machine;
    return {
      tenantId: ctx.tenantId,
      platform: m.platform === 'iOS' ? 'ios' : 'mac',
      method: ctx.method,
      userDriven: user !== null,
      userId: user?.id ?? null,
      device: {
        osPlatform: m.platform,
        osVersion: ctx.osVersion,
        manufacturer: 'Apple',
        model: m.product,
        serialNumber: m.serialNumber,
        imei: m.imei,
        ...(m.platform === 'macOS' ? { isVirtualMachine: isMacVm(m.product) } : {}),
        filterProperties: { enrollmentProfileName: ctx.profile.displayName },
      },
      activityId,
    };
  }

  /** The facts the gate would decide on (the user's groups, for the terms page). */
  gateFacts(request: EnrollmentRequest) {
    return this.deps.gate.facts(this.deps.store.db, request);
  }

  /**
   * Asks the gate, then (allowed) writes the intent and has the issuer sign its profile, in one
   * transaction. A refusal comes back as the decision (the gate recorded it).
   */
  async enroll(ctx: AdeDeviceContext, user: VerifiedUser | null): Promise<AdeEnrollResult> {
    if (this.needsUser(ctx) && !user) throw new Error('this profile needs a signed-in user');
    const issuer = this.deps.profileIssuer();
    if (!issuer) throw new GraphError(503, 'ServiceUnavailable', 'Enrollment profiles cannot be issued yet: the certificate authority is not available.', { retryAfterSeconds: 60 });
    const request = this.gateRequest(ctx, user);
    const decision = await this.deps.gate.decide(request);
    if (!decision.allowed) return { kind: 'refused', decision, request };
    const now = this.deps.clock.now();
    const m = ctx.machine;
    return this.deps.store.transaction(async (trx) => {
      const intent = await this.deps.intents.create(trx, {
        tenantId: ctx.tenantId,
        source: 'ade',
        enrollmentType: 'device',
        platform: m.platform,
        serialNumber: m.serialNumber,
        udid: m.udid,
        imei: m.imei,
        osVersion: ctx.osVersion,
        product: m.product,
        depDeviceId: ctx.depDeviceId,
        profileId: ctx.profile.id,
        profileName: ctx.profile.displayName,
        profileRevision: ctx.profileRevision,
        userId: user?.id ?? null,
        ownership: 'company',
        // Company Portal authentication is an enrollment with user affinity whose user arrives later.
        deviceEnrollmentType: ctx.authentication === 'none' ? 'appleBulkWithoutUser' : 'appleBulkWithUser',
        scopeTagIds: ctx.scopeTagIds,
        gateRequest: request,
        gateDecision: decision,
        expiresAt: new Date(now.getTime() + ADE_INTENT_TTL_MS),
        userAffinity: this.userAffinity(ctx, user),
        authenticationMethod: ctx.authentication,
      });
      await trx.updateTable('dep_devices').set({ last_contacted_at: now.toISOString() }).where('tenant_id', '=', ctx.tenantId).where('id', '=', ctx.depDeviceId).execute();
      const { signedProfile } = await issuer.issueProfile(trx, intent, { topic: ctx.topic, challengeExpiresAt: new Date(now.getTime() + ADE_CHALLENGE_TTL_MS) });
      return { kind: 'profile' as const, signedProfile, intent };
    });
  }

  /** Files a refusal reached before the gate and returns it to throw. */
  private async refuse(tenantId: string, machine: MachineInfo, osVersion: string | null, method: string, reason: EnrollmentPathReasonCode, detail: string): Promise<AdeRefusal> {
    const activityId = await this.recordPathFailure(tenantId, machine, osVersion, method, reason, detail);
    const text = ENROLLMENT_PATH_REASONS[reason];
    return new AdeRefusal(403, reason, `${text.title}: ${detail} ${text.remediation}`, activityId);
  }

  private recordPathFailure(tenantId: string, machine: MachineInfo, osVersion: string | null, method: string, reason: EnrollmentPathReasonCode, message: string): Promise<string> {
    return recordPathFailure(this.deps, tenantId, { machine, osVersion, method, reason, message });
  }
}

/**
 * Files, in the enrollment failures report, a refusal an enrollment path reached before the gate
 * (the gate files its own). Returns the activity id the device is told.
 */
export async function recordPathFailure(
  deps: { store: Store; clock: Clock },
  tenantId: string,
  failure: { machine: MachineInfo; osVersion: string | null; method: string; reason: EnrollmentPathReasonCode; message: string },
): Promise<string> {
  const activityId = crypto.randomUUID();
  await deps.store.transaction((trx) =>
    recordEnrollmentAttempt(trx, tenantId, {
      outcome: 'failed',
      // The report stores any catalogue code; path codes live beside the decision's (reasons.ts).
      reason: failure.reason as unknown as EnrollmentReasonCode,
      message: failure.message,
      osPlatform: failure.machine.platform,
      osVersion: failure.osVersion,
      method: failure.method,
      activityId,
      applied: [],
      at: deps.clock.now(),
    }),
  );
  return activityId;
}

/** The refusal a device sees for a gate decision (e.g. 403 invalidProfile). */
export function refusalOf(decision: GateDecision): AdeRefusal {
  const code = decision.reason ?? 'enrollmentRefused';
  const message = [decision.message, decision.detail].filter(Boolean).join(' ') || 'Enrollment is not allowed.';
  return new AdeRefusal(403, code, message, decision.activityId);
}
