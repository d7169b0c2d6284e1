import crypto from 'node:crypto';
import { readObjectTags } from '../../auth/scope-tags.js';
import type { VerifiedUser } from '../../directory/passwords.js';
import { ENROLLMENT_PATH_REASONS, type EnrollmentPathReasonCode } from '../../enrollment-policy/evaluation/reasons.js';
import type { EnrollmentGate, EnrollmentRequest, GateDecision } from '../../enrollment-policy/gate/gate.js';
import { GraphError } from '../../graph/errors.js';
import type { Clock } from '../../shared/time.js';
import type { Executor, Store } from '../../store/db.js';
import type { ConfiguratorDevicesTable, ConfiguratorProfilesTable } from '../../store/schema.js';
import type { EnrollmentIntent, ProfileIssuer } from '../mdm/contracts.js';
import type { ReadyPushCertificate } from '../push-certificate/index.js';
import { AdeRefusal, recordPathFailure } from './ade-enrollment.js';
import { CONFIGURATOR_PROFILE_OBJECT, normalizeSerial, SETUP_ASSISTANT_CHALLENGE_MS, SETUP_ASSISTANT_INTENT_MS, settingsOf } from './configurator-rules.js';
import type { EnrollmentIntentStore } from './intents.js';
import { effectiveOsVersion, type MachineInfo } from './machine-info.js';

/**
 * Setup Assistant enrollment of a device Apple Configurator prepared (-D §9.4): the device POSTs
 * its signed MachineInfo to the profile URL, as an ADE device does. Its serial must be imported;
 * the profile is the one assigned to the serial, else the one of the URL; with user affinity the
 * user signs in (HTTP Basic, Setup Assistant's prompt); then the gate, the intent and the signed
 * profile. Refusals before the gate are filed in the failures report here; the gate files its own.
 */

export interface ConfiguratorDeviceContext {
  tenantId: string;
  machine: MachineInfo;
  osVersion: string | null;
  device: ConfiguratorDevicesTable;
  profile: ConfiguratorProfilesTable;
  scopeTagIds: string[];
  topic: string;
}

export type ConfiguratorEnrollResult =
  | { kind: 'profile'; signedProfile: Buffer; intent: EnrollmentIntent }
  | { kind: 'refused'; decision: GateDecision; request: EnrollmentRequest };

export interface ConfiguratorEnrollmentDeps {
  store: Store;
  clock: Clock;
  intents: EnrollmentIntentStore;
  gate: EnrollmentGate;
  profileIssuer: ProfileIssuer;
  pushGate(db: Executor, tenantId: string, now?: Date): Promise<ReadyPushCertificate>;
}

const METHOD = 'appleConfigurator';

export class ConfiguratorEnrollmentService {
  constructor(private readonly deps: ConfiguratorEnrollmentDeps) {}

  /** The profile of a profile URL, for Configurator's GET (undefined: no such URL). */
  async urlProfile(tenantId: string, profileId: string): Promise<ConfiguratorProfilesTable | undefined> {
    return this.deps.store.db.selectFrom('configurator_profiles').selectAll().where('tenant_id', '=', tenantId).where('id', '=', profileId).executeTakeFirst();
  }

  /**
   * The push certificate, the imported serial and its profile. Throws AdeRefusal (404 for an
   * unknown URL; 403, recorded, for a serial that isn't imported) or the push certificate's
   * GraphError (recorded too).
   */
  async resolve(tenantId: string, urlProfileId: string, machine: MachineInfo): Promise<ConfiguratorDeviceContext> {
    const db = this.deps.store.db;
    const urlProfile = await this.urlProfile(tenantId, urlProfileId);
    if (!urlProfile) throw new AdeRefusal(404, 'ResourceNotFound', 'This enrollment URL does not belong to an Apple Configurator profile on this server.');
    const osVersion = effectiveOsVersion(machine);
    let topic: string;
    try {
      topic = (await this.deps.pushGate(db, tenantId, this.deps.clock.now())).topic;
    } catch (err) {
      if (err instanceof GraphError) await this.recordPathFailure(tenantId, machine, osVersion, 'pushCertificateNotReady', err.message);
      throw err;
    }
    const device = await db.selectFrom('configurator_devices').selectAll().where('tenant_id', '=', tenantId).where('serial_number', '=', normalizeSerial(machine.serialNumber)).executeTakeFirst();
    if (!device) {
      throw await this.refuse(
        tenantId,
        machine,
        osVersion,
        'deviceNotRegistered',
        `Device ${machine.serialNumber} is not an Apple Configurator device of this organization: Setup Assistant enrollment needs its serial number imported ` +
          '(Devices > Apple Configurator > Devices). Import it, then prepare the device again.',
      );
    }
    // The admin's per-device choice wins over the URL the device was prepared with.
    const profile = device.profile_id && device.profile_id !== urlProfile.id ? ((await this.urlProfile(tenantId, device.profile_id)) ?? urlProfile) : urlProfile;
    const tags = await readObjectTags(db, tenantId, CONFIGURATOR_PROFILE_OBJECT, [profile.id]);
    await db
      .updateTable('configurator_devices')
      .set({ last_contacted_at: this.deps.clock.now().toISOString(), platform: machine.platform === 'iOS' ? 'ios' : 'macOS' })
      .where('tenant_id', '=', tenantId)
      .where('id', '=', device.id)
      .execute();
    return { tenantId, machine, osVersion, device, profile, scopeTagIds: tags.get(profile.id) ?? [], topic };
  }

  /** With user affinity and Setup Assistant authentication, the user signs in before the profile is served. */
  needsUser(ctx: Pick<ConfiguratorDeviceContext, 'profile'>): boolean {
    const s = settingsOf(ctx.profile);
    return s.requiresUserAuthentication && !s.enableAuthenticationViaCompanyPortal;
  }

  gateRequest(ctx: ConfiguratorDeviceContext, user: VerifiedUser | null): EnrollmentRequest {
    const m = ctx.machine;
    return {
      tenantId: ctx.tenantId,
      platform: m.platform === 'iOS' ? 'ios' : 'mac',
      method: METHOD,
      userDriven: user !== null,
      userId: user?.id ?? null,
      device: {
        osPlatform: m.platform,
        osVersion: ctx.osVersion,
        manufacturer: 'Apple',
        model: m.product,
        serialNumber: m.serialNumber,
        imei: m.imei,
        ...(m.platform === 'macOS' ? { isVirtualMachine: /^VirtualMac/.test(m.product) } : {}),
        filterProperties: { enrollmentProfileName: ctx.profile.display_name },
      },
      activityId: crypto.randomUUID(),
    };
  }

  /** The gate, then (allowed) the intent and its signed profile in one transaction. */
  async enroll(ctx: ConfiguratorDeviceContext, user: VerifiedUser | null): Promise<ConfiguratorEnrollResult> {
    if (this.needsUser(ctx) && !user) throw new Error('this profile needs a signed-in user');
    const request = this.gateRequest(ctx, user);
    const decision = await this.deps.gate.decide(request);
    const db = this.deps.store.db;
    if (!decision.allowed) {
      await db.updateTable('configurator_devices').set({ enrollment_state: 'blocked' }).where('tenant_id', '=', ctx.tenantId).where('id', '=', ctx.device.id).execute();
      return { kind: 'refused', decision, request };
    }
    const now = this.deps.clock.now();
    const m = ctx.machine;
    const withUser = settingsOf(ctx.profile).requiresUserAuthentication;
    return this.deps.store.transaction(async (trx) => {
      const intent = await this.deps.intents.create(trx, {
        tenantId: ctx.tenantId,
        source: 'configurator',
        enrollmentType: 'device',
        platform: m.platform,
        serialNumber: m.serialNumber,
        udid: m.udid,
        imei: m.imei,
        osVersion: ctx.osVersion,
        product: m.product,
        profileId: ctx.profile.id,
        profileName: ctx.profile.display_name,
        userId: user?.id ?? null,
        ownership: decision.ownership,
        deviceEnrollmentType: withUser ? 'appleBulkWithUser' : 'appleBulkWithoutUser',
        scopeTagIds: ctx.scopeTagIds,
        gateRequest: request,
        gateDecision: decision,
        expiresAt: new Date(now.getTime() + SETUP_ASSISTANT_INTENT_MS),
        userAffinity: user ? 'user' : withUser ? 'pendingCompanyPortal' : 'userless',
        authenticationMethod: user ? 'setupAssistantLegacy' : withUser ? 'companyPortal' : 'none',
      });
      const { signedProfile } = await this.deps.profileIssuer.issueProfile(trx, intent, { topic: ctx.topic, challengeExpiresAt: new Date(now.getTime() + SETUP_ASSISTANT_CHALLENGE_MS) });
      return { kind: 'profile' as const, signedProfile, intent };
    });
  }

  /** Files a refusal reached before the gate and returns it to throw. */
  private async refuse(tenantId: string, machine: MachineInfo, osVersion: string | null, reason: EnrollmentPathReasonCode, detail: string): Promise<AdeRefusal> {
    const activityId = await this.recordPathFailure(tenantId, machine, osVersion, reason, detail);
    return new AdeRefusal(403, reason, `${ENROLLMENT_PATH_REASONS[reason].title}: ${detail}`, activityId);
  }

  private recordPathFailure(tenantId: string, machine: MachineInfo, osVersion: string | null, reason: EnrollmentPathReasonCode, message: string): Promise<string> {
    return recordPathFailure(this.deps, tenantId, { machine, osVersion, method: METHOD, reason, message });
  }
}
