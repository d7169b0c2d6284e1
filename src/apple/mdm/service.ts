import crypto from 'node:crypto';
import type { Logger } from 'pino';
import { DEVICE_ENROLLMENT_TYPES, type DeviceEnrollmentType } from '../../devices/enums.js';
import type { DeviceInput } from '../../devices/model.js';
import type { DeviceRecords } from '../../devices/service.js';
import type { EnrollmentDecision } from '../../enrollment-policy/evaluation/types.js';
import type { EnrollmentRequest, GateDecision } from '../../enrollment-policy/gate/gate.js';
import type { CertificateInfo } from '../../pki/index.js';
import type { SecretStore } from '../../secrets/secret-store.js';
import { buildPlist, type PlistValue } from '../../shared/plist.js';
import { MINUTE, HOUR, type Clock } from '../../shared/time.js';
import { isUniqueViolation, type Executor, type Store, type Trx } from '../../store/db.js';
import type { MdmEnrollmentsTable } from '../../store/schema.js';
import { effectiveSupervised, renderDeviceName, storedDeviceNameTemplate, storedProfileFromRow, type StoredDepProfile } from '../ade/profiles/index.js';
import {
  accountConfiguration,
  configuresAccounts,
  deviceConfigured,
  deviceInformation,
  deviceNameOf,
  macPasswordHash,
  settingsDeviceName,
  type CommandSpec,
} from './commands.js';
import type { EnrollmentIntent, EnrollmentIntents, IdentityBinding, IdentityVerifier } from './contracts.js';
import {
  appleFamily,
  deviceInputFromFacts,
  installedProfiles,
  inventoryFacts,
  platformOf,
  templateDeviceType,
  type AppleFamily,
} from './device-facts.js';
import { commandOf, FINAL_STATUSES, type MdmCommandQueue, type QueueOptions } from './queue.js';
import type { Channel, CheckinMessage, CommandReport, DeviceFacts } from './messages.js';

/**
 * The MDM core's state changes: one transaction per device message. The caller (routes.ts) has
 * verified the message's signature and asked the IdentityVerifier what its certificate is bound
 * to; here every message is checked against that binding before anything is written.
 */

/** Who sent the message, as the routes established it. */
export interface MdmContext {
  tenantId: string;
  binding: IdentityBinding;
  certificate: CertificateInfo;
  requestId: string;
}

export interface DeviceReply {
  status: number;
  body?: string;
  contentType?: string;
}

/** A message we refuse: nothing was written. `reason` is for the log, `description` for the device. */
export class MdmRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly reason: string,
    description: string,
  ) {
    super(description);
    this.name = 'MdmRefusal';
  }
}

/** Apple: 403 with this code makes the device unenroll ("use this error instead of a 401"). */
export const UNRECOGNIZED_DEVICE = 'com.apple.unrecognized.device';
export const unrecognizedDevice = (reason: string) => new MdmRefusal(403, UNRECOGNIZED_DEVICE, reason, 'The device is not enrolled with this server.');
/** Authentication problems: a plain 403 that doesn't unenroll the device (a proxy may have damaged the message). */
export const forbiddenIdentity = (reason: string, description: string) => new MdmRefusal(403, 'com.openenroll.mdm.forbidden', reason, description);
export const badMessage = (reason: string, description: string) => new MdmRefusal(400, 'com.openenroll.mdm.badRequest', reason, description);

export interface MdmServiceDeps {
  store: Store;
  clock: Clock;
  secrets: SecretStore;
  logger: Logger;
  intents: EnrollmentIntents;
  identities: IdentityVerifier & { revokeEnrollment?(trx: Trx, tenantId: string, enrollmentId: string, reason: string): Promise<number> };
  devices: DeviceRecords;
  gate: { recordSuccess(trx: Trx, req: EnrollmentRequest, decision: GateDecision, deviceId: string): Promise<string> };
  queue: MdmCommandQueue;
  /** Answer UserAuthenticate with a zero-length digest challenge instead of 410 (macOS network users). */
  acceptUserAuthenticate: boolean;
}

export const UNLOCK_TOKEN_SECRET_KIND = 'appleUnlockToken';
export const BOOTSTRAP_TOKEN_SECRET_KIND = 'appleBootstrapToken';
const DEVICE_CHANNEL_TYPES = ['Device', 'UserEnrollmentDevice'];
/** lastSyncDateTime is written at most this often (each write runs the device listeners). */
const LAST_SYNC_EVERY = 15 * MINUTE;
/** lastSeenDateTime is kept to the minute: a write per poll would serialise every check-in on the store. */
const LAST_SEEN_EVERY = MINUTE;
/** An inventory (DeviceInformation) is refreshed at a check-in once it is this old. */
const INVENTORY_EVERY = 24 * HOUR;
/** Dedupe keys of system commands. */
const KEY = { inventory: 'inventory', deviceName: 'deviceName', accounts: 'accountConfiguration', configured: 'deviceConfigured' } as const;

const DECLARATIONS_TOKEN = crypto.createHash('sha256').update('openenroll:no-declarations:v1').digest('hex');
/** The set of declarations is empty and never changes, so its timestamp is fixed. */
const DECLARATIONS_TIMESTAMP = '2024-01-01T00:00:00Z';

export class MdmService {
  constructor(private readonly deps: MdmServiceDeps) {}

  private get now(): Date {
    return this.deps.clock.now();
  }

  private lock<Q extends { forUpdate(): Q }>(q: Q): Q {
    return this.deps.store.dialect === 'postgres' ? q.forUpdate() : q;
  }

  private async byKey(db: Executor, tenantId: string, key: string, lock = false): Promise<MdmEnrollmentsTable | undefined> {
    const q = db.selectFrom('mdm_enrollments').selectAll().where('tenant_id', '=', tenantId).where('channel_key', '=', key);
    return (lock ? this.lock(q) : q).executeTakeFirst();
  }

  private async children(db: Executor, tenantId: string, deviceEnrollmentId: string): Promise<MdmEnrollmentsTable[]> {
    return db.selectFrom('mdm_enrollments').selectAll().where('tenant_id', '=', tenantId).where('device_enrollment_id', '=', deviceEnrollmentId).execute();
  }

  private async tenantTopic(db: Executor, tenantId: string): Promise<string | null> {
    const row = await db.selectFrom('apple_push_certificates').select('topic').where('tenant_id', '=', tenantId).executeTakeFirst();
    return row?.topic ?? null;
  }

  /** One transaction; a concurrent insert of the same channel (two first messages at once) is retried once. */
  private async tx<T>(fn: (trx: Trx) => Promise<T>): Promise<T> {
    try {
      return await this.deps.store.transaction(fn);
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      return this.deps.store.transaction(fn);
    }
  }

  /** The device channel a message belongs to, checked against the signer's binding. */
  private async boundDevice(trx: Trx, ctx: MdmContext, channel: Channel): Promise<MdmEnrollmentsTable> {
    const device = await this.byKey(trx, ctx.tenantId, channel.deviceKey, true);
    // Checked out (or never enrolled): we don't know this device any more.
    if (!device || device.checked_out_at !== null) throw unrecognizedDevice(device ? 'checkedOut' : 'unknownDevice');
    if (ctx.binding.enrollmentId !== device.id) {
      throw forbiddenIdentity('identityNotBoundToEnrollment', "The signing certificate doesn't belong to this enrollment.");
    }
    return device;
  }

  // ---- check-in ------------------------------------------------------------------------------

  async checkin(ctx: MdmContext, msg: CheckinMessage): Promise<DeviceReply> {
    switch (msg.type) {
      case 'Authenticate':
        return this.authenticate(ctx, msg);
      case 'TokenUpdate':
        return msg.channel.isUserChannel ? this.userTokenUpdate(ctx, msg) : this.tokenUpdate(ctx, msg);
      case 'CheckOut':
        return this.checkOut(ctx, msg);
      case 'UserAuthenticate':
        return this.userAuthenticate(ctx, msg);
      case 'DeclarativeManagement':
        return this.declarativeManagement(ctx, msg);
      case 'GetBootstrapToken':
        return this.getBootstrapToken(ctx, msg);
      case 'SetBootstrapToken':
        return this.setBootstrapToken(ctx, msg);
      case 'GetToken':
        await this.tx(async (trx) => this.touch(trx, await this.boundDevice(trx, ctx, msg.channel)));
        // No token service (Managed Apple ID, Watch pairing) is offered; the device reports the failure.
        throw badMessage('getTokenUnsupported', `GetToken (${msg.tokenServiceType}) is not supported by this server.`);
    }
  }

  private async touch(trx: Trx, e: MdmEnrollmentsTable): Promise<void> {
    await trx.updateTable('mdm_enrollments').set({ last_seen_at: this.now.toISOString() }).where('id', '=', e.id).execute();
  }

  /** Whether an intent may back a new enrollment of this device. */
  private checkIntent(intent: EnrollmentIntent | undefined, msg: Extract<CheckinMessage, { type: 'Authenticate' }>): EnrollmentIntent {
    if (!intent) throw forbiddenIdentity('intentMissing', 'The enrollment this certificate was issued for no longer exists.');
    if (intent.expires_at <= this.now.toISOString()) throw forbiddenIdentity('intentExpired', 'The enrollment this certificate was issued for has expired; enroll again.');
    if (intent.consumed_at !== null && intent.reusable !== 1) throw forbiddenIdentity('intentConsumed', 'The enrollment this certificate was issued for was already used.');
    const userEnrollment = msg.channel.type === 'UserEnrollmentDevice';
    if ((intent.enrollment_type === 'user') !== userEnrollment) {
      throw forbiddenIdentity('enrollmentTypeMismatch', userEnrollment ? 'This certificate is for a device enrollment.' : 'This certificate is for a User Enrollment.');
    }
    if (intent.udid && msg.channel.udid && intent.udid.toLowerCase() !== msg.channel.udid.toLowerCase()) {
      throw forbiddenIdentity('udidMismatch', 'This certificate was issued for another device.');
    }
    const serial = msg.device.serialNumber;
    if (intent.serial_number && serial && intent.serial_number.toUpperCase() !== serial.toUpperCase()) {
      throw forbiddenIdentity('serialMismatch', 'This certificate was issued for another device.');
    }
    return intent;
  }

  /**
   * Authenticate creates the enrollment or resets it (NanoMDM: valid only after a TokenUpdate, so
   * disabled, queue cleared, push data gone). A certificate bound to an intent starts a new
   * enrollment of the device (re-enrollment after a wipe included); one already bound to this
   * enrollment (renewal) keeps what the enrollment completed.
   */
  private async authenticate(ctx: MdmContext, msg: Extract<CheckinMessage, { type: 'Authenticate' }>): Promise<DeviceReply> {
    const { tenantId, binding } = ctx;
    const topic = await this.tenantTopic(this.deps.store.db, tenantId);
    if (!topic || topic !== msg.topic) throw forbiddenIdentity('topicMismatch', "The message's Topic isn't this server's push topic.");
    await this.tx(async (trx) => {
      const now = this.now.toISOString();
      const existing = await this.byKey(trx, tenantId, msg.channel.key, true);
      let intent: EnrollmentIntent | undefined;
      if (binding.enrollmentId) {
        if (!existing || existing.id !== binding.enrollmentId) {
          throw forbiddenIdentity('identityBoundElsewhere', 'The signing certificate belongs to another enrollment.');
        }
      } else if (binding.intentId) {
        intent = this.checkIntent(await this.deps.intents.get(trx, tenantId, binding.intentId), msg);
      } else {
        throw forbiddenIdentity('identityUnbound', "The signing certificate wasn't issued for an enrollment.");
      }
      const fresh = intent !== undefined;
      const platform = platformOf(intent?.platform ?? existing?.platform, msg.device);
      const common = {
        type: msg.channel.type,
        udid: msg.channel.udid,
        apple_enrollment_id: msg.channel.enrollmentId,
        serial_number: msg.device.serialNumber ?? intent?.serial_number ?? existing?.serial_number ?? null,
        cert_thumbprint: binding.thumbprintSha256,
        topic: msg.topic,
        push_token: null,
        push_magic: null,
        enabled: 0,
        token_update_tally: 0,
        awaiting_configuration: 0,
        apns_status: null,
        apns_status_at: null,
        authenticated_at: now,
        checked_out_at: null,
        last_seen_at: now,
        updated_at: now,
        platform,
        device_info: JSON.stringify(msg.device),
      };
      let id: string;
      if (existing) {
        id = existing.id;
        const users = await this.children(trx, tenantId, id);
        await this.deps.queue.cancelPending(trx, tenantId, [id, ...users.map((u) => u.id)]);
        if (users.length > 0) await trx.updateTable('mdm_enrollments').set({ enabled: 0, updated_at: now }).where('device_enrollment_id', '=', id).execute();
        const reset: Partial<MdmEnrollmentsTable> = fresh
          ? {
              // A new enrollment of the device: what the old one held is gone.
              intent_id: intent!.id,
              enrolled_at: null,
              device_configured_at: null,
              unlock_token_secret_id: null,
              bootstrap_token_secret_id: null,
              bootstrap_token_at: null,
              profile_list: null,
              profile_list_at: null,
              inventory_at: null,
            }
          : {};
        await trx.updateTable('mdm_enrollments').set({ ...common, ...reset }).where('id', '=', id).execute();
        if (fresh) {
          for (const secret of [existing.unlock_token_secret_id, existing.bootstrap_token_secret_id]) if (secret) await this.deps.secrets.delete(trx, tenantId, secret);
          // The wiped device's old identity can't come back.
          await this.deps.identities.revokeEnrollment?.(trx, tenantId, id, 'reEnrollment');
        }
      } else {
        id = crypto.randomUUID();
        await trx
          .insertInto('mdm_enrollments')
          .values({
            ...common,
            id,
            tenant_id: tenantId,
            device_enrollment_id: null,
            apple_user_id: null,
            user_short_name: null,
            user_long_name: null,
            managed_device_id: null,
            intent_id: intent!.id,
            unlock_token_secret_id: null,
            bootstrap_token_secret_id: null,
            device_configured_at: null,
            created_at: now,
            channel_key: msg.channel.key,
            enrolled_at: null,
            bootstrap_token_at: null,
            profile_list: null,
            profile_list_at: null,
            inventory_at: null,
          })
          .execute();
      }
      if (binding.enrollmentId !== id) await this.deps.identities.bindEnrollment(trx, tenantId, binding.thumbprintSha256, id);
    });
    return { status: 200 };
  }

  /** TokenUpdate on the device channel: push data, enabled; the first one of an intent completes the enrollment. */
  private async tokenUpdate(ctx: MdmContext, msg: Extract<CheckinMessage, { type: 'TokenUpdate' }>): Promise<DeviceReply> {
    const { tenantId } = ctx;
    await this.tx(async (trx) => {
      const e = await this.boundDevice(trx, ctx, msg.channel);
      const topic = await this.tenantTopic(trx, tenantId);
      if (!topic || msg.topic !== topic || (e.topic !== null && e.topic !== msg.topic)) {
        throw forbiddenIdentity('topicMismatch', "The message's Topic isn't this server's push topic.");
      }
      const now = this.now.toISOString();
      let unlockId = e.unlock_token_secret_id;
      if (msg.unlockToken) {
        if (unlockId) await this.deps.secrets.replace(trx, tenantId, unlockId, msg.unlockToken);
        else unlockId = await this.deps.secrets.put(trx, tenantId, UNLOCK_TOKEN_SECRET_KIND, msg.unlockToken);
      }
      const updated: MdmEnrollmentsTable = {
        ...e,
        topic: msg.topic,
        push_token: msg.token.toString('hex'),
        push_magic: msg.pushMagic,
        unlock_token_secret_id: unlockId,
        awaiting_configuration: msg.awaitingConfiguration ? 1 : 0,
        enabled: 1,
        token_update_tally: e.token_update_tally + 1,
        // A new token makes the device pushable again after an APNs 410.
        apns_status: null,
        apns_status_at: null,
        cert_thumbprint: ctx.binding.thumbprintSha256,
        last_seen_at: now,
        updated_at: now,
      };
      const { id: _id, tenant_id: _t, created_at: _c, ...set } = updated;
      await trx.updateTable('mdm_enrollments').set(set).where('id', '=', e.id).execute();
      if (e.enrolled_at === null && e.intent_id !== null) {
        await this.completeEnrollment(trx, ctx, updated, msg.awaitingConfiguration);
      } else if (msg.awaitingConfiguration && e.device_configured_at === null) {
        // Still held in Setup Assistant (a later TokenUpdate): make sure the release is on its way.
        await this.queueSystem(trx, tenantId, e.id, [{ spec: deviceConfigured(), opts: { afterPrior: true, dedupeKey: KEY.configured } }]);
      }
    });
    return { status: 200 };
  }

  /** TokenUpdate on a user channel: the channel row under its device, enabled. */
  private async userTokenUpdate(ctx: MdmContext, msg: Extract<CheckinMessage, { type: 'TokenUpdate' }>): Promise<DeviceReply> {
    const { tenantId } = ctx;
    await this.tx(async (trx) => {
      const device = await this.boundDevice(trx, ctx, msg.channel);
      const topic = await this.tenantTopic(trx, tenantId);
      if (!topic || msg.topic !== topic) throw forbiddenIdentity('topicMismatch', "The message's Topic isn't this server's push topic.");
      const now = this.now.toISOString();
      const existing = await this.byKey(trx, tenantId, msg.channel.key, true);
      const values = {
        type: msg.channel.type,
        device_enrollment_id: device.id,
        udid: device.udid,
        apple_enrollment_id: device.apple_enrollment_id,
        apple_user_id: msg.channel.userId,
        user_short_name: msg.channel.userShortName,
        user_long_name: msg.channel.userLongName,
        serial_number: device.serial_number,
        managed_device_id: device.managed_device_id,
        cert_thumbprint: ctx.binding.thumbprintSha256,
        topic: msg.topic,
        push_token: msg.token.toString('hex'),
        push_magic: msg.pushMagic,
        enabled: 1,
        awaiting_configuration: msg.awaitingConfiguration ? 1 : 0,
        apns_status: null,
        apns_status_at: null,
        checked_out_at: null,
        last_seen_at: now,
        updated_at: now,
        platform: device.platform,
      };
      if (existing) {
        await trx
          .updateTable('mdm_enrollments')
          .set({ ...values, token_update_tally: existing.token_update_tally + 1 })
          .where('id', '=', existing.id)
          .execute();
      } else {
        await trx
          .insertInto('mdm_enrollments')
          .values({
            ...values,
            id: crypto.randomUUID(),
            tenant_id: tenantId,
            intent_id: null,
            unlock_token_secret_id: null,
            bootstrap_token_secret_id: null,
            token_update_tally: 1,
            device_configured_at: null,
            authenticated_at: null,
            created_at: now,
            channel_key: msg.channel.key,
            device_info: null,
            enrolled_at: now,
            bootstrap_token_at: null,
            profile_list: null,
            profile_list_at: null,
            inventory_at: null,
          })
          .execute();
      }
      await this.touch(trx, device);
    });
    return { status: 200 };
  }

  /**
   * CheckOut: the MDM profile was removed. The enrollment (and its user channels) is disabled and
   * its pending commands cancelled; the managed device stays, marked retirePending for the admin
   * to delete; the ADE device is no longer enrolled; the identity certificates are revoked.
   */
  private async checkOut(ctx: MdmContext, msg: Extract<CheckinMessage, { type: 'CheckOut' }>): Promise<DeviceReply> {
    const { tenantId } = ctx;
    await this.tx(async (trx) => {
      const device = await this.boundDevice(trx, ctx, msg.channel);
      const now = this.now.toISOString();
      if (msg.channel.isUserChannel) {
        const user = await this.byKey(trx, tenantId, msg.channel.key, true);
        if (!user) throw unrecognizedDevice('unknownUserChannel');
        await this.deps.queue.cancelPending(trx, tenantId, [user.id]);
        await trx.updateTable('mdm_enrollments').set({ enabled: 0, push_token: null, push_magic: null, last_seen_at: now, updated_at: now }).where('id', '=', user.id).execute();
        return;
      }
      const users = await this.children(trx, tenantId, device.id);
      await this.deps.queue.cancelPending(trx, tenantId, [device.id, ...users.map((u) => u.id)]);
      await trx
        .updateTable('mdm_enrollments')
        .set({ enabled: 0, push_token: null, push_magic: null, checked_out_at: now, last_seen_at: now, updated_at: now })
        .where('tenant_id', '=', tenantId)
        .where((eb) => eb.or([eb('id', '=', device.id), eb('device_enrollment_id', '=', device.id)]))
        .execute();
      if (device.managed_device_id) {
        const md = await this.deps.devices.findById(trx, tenantId, device.managed_device_id);
        if (md) await this.deps.devices.upsert(trx, tenantId, { id: md.id, managementState: 'retirePending' }, { requestId: ctx.requestId });
        await trx
          .updateTable('dep_devices')
          .set({ enrollment_state: 'notContacted', updated_at: now })
          .where('tenant_id', '=', tenantId)
          .where('managed_device_id', '=', device.managed_device_id)
          .where('enrollment_state', 'in', ['enrolled', 'pendingReset'])
          .execute();
      }
      await this.deps.identities.revokeEnrollment?.(trx, tenantId, device.id, 'checkOut');
    });
    return { status: 200 };
  }

  /**
   * UserAuthenticate (macOS network and mobile users). Declined with 410 by default, as Apple
   * documents for servers that don't want user channels; with the option, the zero-length digest
   * challenge lets the user channel come up (NanoMDM -ua-zl-dc).
   */
  private async userAuthenticate(ctx: MdmContext, msg: Extract<CheckinMessage, { type: 'UserAuthenticate' }>): Promise<DeviceReply> {
    await this.tx(async (trx) => this.touch(trx, await this.boundDevice(trx, ctx, msg.channel)));
    if (!this.deps.acceptUserAuthenticate) return { status: 410 };
    if (msg.digestResponse === null) return plistReply({ DigestChallenge: '' });
    return { status: 200 };
  }

  /**
   * DeclarativeManagement: no declarations are served yet, so the answer is the valid empty set
   * (synchronization tokens, an empty manifest); status reports are accepted and dropped.
   */
  private async declarativeManagement(ctx: MdmContext, msg: Extract<CheckinMessage, { type: 'DeclarativeManagement' }>): Promise<DeviceReply> {
    await this.tx(async (trx) => this.touch(trx, await this.boundDevice(trx, ctx, msg.channel)));
    const endpoint = msg.endpoint.replace(/^\/+/, '');
    if (endpoint === 'tokens') return jsonReply({ SyncTokens: { DeclarationsToken: DECLARATIONS_TOKEN, Timestamp: DECLARATIONS_TIMESTAMP } });
    if (endpoint === 'declaration-items') {
      return jsonReply({ Declarations: { Activations: [], Assets: [], Configurations: [], Management: [] }, DeclarationsToken: DECLARATIONS_TOKEN });
    }
    if (endpoint === 'status') {
      if (msg.data) {
        try {
          JSON.parse(msg.data.toString('utf8'));
        } catch {
          throw badMessage('declarativeStatusNotJson', 'The status report is not JSON.');
        }
      }
      return { status: 200 };
    }
    if (endpoint.startsWith('declaration/')) return { status: 404 };
    throw badMessage('declarativeEndpoint', `Unknown declarative management endpoint '${endpoint.slice(0, 64)}'.`);
  }

  private async getBootstrapToken(ctx: MdmContext, msg: Extract<CheckinMessage, { type: 'GetBootstrapToken' }>): Promise<DeviceReply> {
    const token = await this.tx(async (trx) => {
      const device = await this.boundDevice(trx, ctx, msg.channel);
      await this.touch(trx, device);
      return device.bootstrap_token_secret_id ? this.deps.secrets.get(trx, ctx.tenantId, device.bootstrap_token_secret_id) : null;
    });
    return plistReply(token ? { BootstrapToken: token } : {});
  }

  private async setBootstrapToken(ctx: MdmContext, msg: Extract<CheckinMessage, { type: 'SetBootstrapToken' }>): Promise<DeviceReply> {
    const { tenantId } = ctx;
    await this.tx(async (trx) => {
      const device = await this.boundDevice(trx, ctx, msg.channel);
      const now = this.now.toISOString();
      let secretId = device.bootstrap_token_secret_id;
      if (msg.bootstrapToken) {
        if (secretId) await this.deps.secrets.replace(trx, tenantId, secretId, msg.bootstrapToken);
        else secretId = await this.deps.secrets.put(trx, tenantId, BOOTSTRAP_TOKEN_SECRET_KIND, msg.bootstrapToken);
      } else if (secretId) {
        await this.deps.secrets.delete(trx, tenantId, secretId);
        secretId = null;
      }
      await trx
        .updateTable('mdm_enrollments')
        .set({ bootstrap_token_secret_id: secretId, bootstrap_token_at: secretId ? now : null, last_seen_at: now, updated_at: now })
        .where('id', '=', device.id)
        .execute();
    });
    return { status: 200 };
  }

  // ---- enrollment completion -----------------------------------------------------------------

  private async depProfile(db: Executor, tenantId: string, profileId: string | null): Promise<{ profile: StoredDepProfile; adminPasswordSecretId: string | null } | undefined> {
    if (!profileId) return undefined;
    const row = await db.selectFrom('dep_profiles').selectAll().where('tenant_id', '=', tenantId).where('id', '=', profileId).executeTakeFirst();
    return row ? { profile: storedProfileFromRow(row, false), adminPasswordSecretId: row.admin_password_secret_id } : undefined;
  }

  /**
   * The first TokenUpdate of an intent: in this one transaction the intent is consumed, the
   * managed device written, the gate's success recorded, the ADE (or Configurator) device marked
   * enrolled and the first commands queued.
   */
  private async completeEnrollment(trx: Trx, ctx: MdmContext, e: MdmEnrollmentsTable, awaitingConfiguration: boolean): Promise<void> {
    const { tenantId } = ctx;
    const now = this.now.toISOString();
    const intent = await this.deps.intents.get(trx, tenantId, e.intent_id!);
    if (!intent) throw forbiddenIdentity('intentMissing', 'The enrollment this device was authenticated for no longer exists.');
    try {
      await this.deps.intents.consume(trx, tenantId, intent.id);
    } catch (err) {
      throw forbiddenIdentity('intentUnusable', `The enrollment can't complete: ${err instanceof Error ? err.message : String(err)}.`);
    }
    const facts = readFacts(e.device_info);
    const platform = platformOf(intent.platform, facts);
    const userEnrollment = e.type === 'UserEnrollmentDevice';
    const ade = intent.source === 'ade' ? await this.depProfile(trx, tenantId, intent.profile_id) : undefined;
    const user = intent.user_id
      ? await trx.selectFrom('users').select(['id', 'user_principal_name', 'display_name', 'mail']).where('tenant_id', '=', tenantId).where('id', '=', intent.user_id).executeTakeFirst()
      : undefined;

    const merged: DeviceFacts = {
      ...facts,
      productName: facts.productName ?? intent.product ?? undefined,
      osVersion: facts.osVersion ?? intent.os_version ?? undefined,
      serialNumber: facts.serialNumber ?? intent.serial_number ?? undefined,
      imei: facts.imei ?? intent.imei ?? undefined,
    };
    const input: DeviceInput = deviceInputFromFacts(merged, platform);
    if (userEnrollment) {
      // User Enrollment keeps the device's hardware identity from the organisation.
      delete input.serialNumber;
      delete input.imei;
      delete input.meid;
      input.enrollmentId = e.apple_enrollment_id;
    } else if (e.udid) {
      input.udid = e.udid;
    }
    input.managedDeviceOwnerType = intent.source === 'ade' ? 'company' : intent.ownership === 'company' ? 'company' : 'personal';
    input.deviceEnrollmentType = (DEVICE_ENROLLMENT_TYPES as readonly string[]).includes(intent.device_enrollment_type)
      ? (intent.device_enrollment_type as DeviceEnrollmentType)
      : 'unknown';
    input.enrollmentProfileName = intent.profile_name;
    input.managementState = 'managed';
    input.managementAgent = 'mdm';
    input.enrolledDateTime = now;
    input.managementCertificateExpirationDate = ctx.certificate.notAfter.toISOString();
    if (user) {
      input.userId = user.id;
      input.userPrincipalName = user.user_principal_name;
      input.userDisplayName = user.display_name;
      input.emailAddress = user.mail;
    }
    if (ade) input.isSupervised = effectiveSupervised(ade.profile, merged.osVersion);
    const tags = await this.existingTags(trx, tenantId, parseTagIds(intent.scope_tag_ids));
    if (tags.length > 0) input.roleScopeTagIds = tags;

    const { device } = await this.deps.devices.upsert(trx, tenantId, input, { requestId: ctx.requestId });
    const gate = parseGate(intent);
    if (gate) await this.deps.gate.recordSuccess(trx, gate.request, gate.decision, device.id);
    else if (intent.gate_request || intent.gate_decision) this.deps.logger.warn({ tenantId, intentId: intent.id }, "the intent's gate decision is unreadable; the enrollment success isn't reported");

    await this.markSourceDeviceEnrolled(trx, tenantId, intent, device.id, merged.serialNumber, input.isSupervised);
    await trx.updateTable('mdm_enrollments').set({ managed_device_id: device.id, enrolled_at: now }).where('id', '=', e.id).execute();
    await trx.updateTable('mdm_enrollments').set({ managed_device_id: device.id }).where('device_enrollment_id', '=', e.id).execute();

    // The first commands, in order; DeviceConfigured waits for the others to finish.
    const specs: { spec: CommandSpec; opts: QueueOptions }[] = [{ spec: deviceInformation(userEnrollment), opts: { dedupeKey: KEY.inventory } }];
    const template = ade?.profile.settings.deviceNameTemplate;
    if (template && merged.serialNumber) {
      const name = renderDeviceName(template, { serialNumber: merged.serialNumber, deviceType: templateDeviceType(appleFamily(merged), merged) });
      specs.push({ spec: settingsDeviceName(name), opts: { dedupeKey: KEY.deviceName } });
    }
    if (awaitingConfiguration && ade?.profile.platform === 'macOS' && configuresAccounts(ade.profile.settings)) {
      const password = ade.adminPasswordSecretId ? await this.deps.secrets.getText(trx, tenantId, ade.adminPasswordSecretId) : undefined;
      specs.push({
        spec: accountConfiguration(ade.profile.settings, {
          ...(password ? { adminPasswordHash: await macPasswordHash(password) } : {}),
          ...(user ? { user: { userPrincipalName: user.user_principal_name, displayName: user.display_name } } : {}),
        }),
        opts: { dedupeKey: KEY.accounts },
      });
    }
    if (awaitingConfiguration) specs.push({ spec: deviceConfigured(), opts: { afterPrior: true, dedupeKey: KEY.configured } });
    await this.queueSystem(trx, tenantId, e.id, specs);
  }

  private async existingTags(db: Executor, tenantId: string, tags: string[]): Promise<string[]> {
    if (tags.length === 0) return [];
    const rows = await db.selectFrom('role_scope_tags').select('id').where('tenant_id', '=', tenantId).where('id', 'in', tags).execute();
    const known = new Set(rows.map((r) => r.id));
    const missing = tags.filter((t) => !known.has(t));
    if (missing.length > 0) this.deps.logger.warn({ tenantId, missing }, "scope tags of the enrollment no longer exist; the device doesn't get them");
    return tags.filter((t) => known.has(t));
  }

  /** ADE device → Enrolled with the profile it enrolled with; a Configurator device likewise. */
  private async markSourceDeviceEnrolled(trx: Trx, tenantId: string, intent: EnrollmentIntent, deviceId: string, serial: string | undefined, supervised: boolean | undefined): Promise<void> {
    const now = this.now.toISOString();
    if (intent.source === 'ade') {
      let depId = intent.dep_device_id;
      if (!depId && serial) {
        const row = await trx
          .selectFrom('dep_devices')
          .select('id')
          .where('tenant_id', '=', tenantId)
          .where('serial_number', '=', serial)
          .where('deleted_at', 'is', null)
          .orderBy('updated_at', 'desc')
          .executeTakeFirst();
        depId = row?.id ?? null;
      }
      if (!depId) return;
      await trx
        .updateTable('dep_devices')
        .set({
          enrollment_state: 'enrolled',
          managed_device_id: deviceId,
          enrolled_profile_id: intent.profile_id,
          enrolled_profile_revision: intent.profile_revision,
          ...(supervised !== undefined ? { is_supervised: supervised ? 1 : 0 } : {}),
          last_contacted_at: now,
          updated_at: now,
        })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', depId)
        .execute();
    } else if ((intent.source === 'configurator' || intent.source === 'configuratorDirect') && serial) {
      await trx
        .updateTable('configurator_devices')
        .set({ enrollment_state: 'enrolled', managed_device_id: deviceId, updated_at: now })
        .where('tenant_id', '=', tenantId)
        .where('serial_number', '=', serial)
        .execute();
    }
  }

  /** Queues system commands for one enrollment in order; only the first asks for a push. */
  private async queueSystem(trx: Trx, tenantId: string, enrollmentId: string, specs: { spec: CommandSpec; opts: QueueOptions }[], push = true): Promise<void> {
    let pushed = !push;
    for (const { spec, opts } of specs) {
      const uuid = await this.deps.queue.add(trx, tenantId, [enrollmentId], { requestType: spec.requestType, payload: spec.payload }, { source: 'system', ...opts, push: !pushed });
      if (uuid) pushed = true;
    }
  }

  // ---- command channel -----------------------------------------------------------------------

  /** A report on ServerURL: records the result, then answers with the next command (or nothing). */
  async report(ctx: MdmContext, report: CommandReport, rawBody: string): Promise<DeviceReply> {
    const { tenantId } = ctx;
    const next = await this.tx(async (trx) => {
      const device = await this.boundDevice(trx, ctx, report.channel);
      if (device.enabled !== 1) throw unrecognizedDevice('notEnabled');
      const target = report.channel.isUserChannel ? await this.byKey(trx, tenantId, report.channel.key, true) : device;
      if (!target || target.enabled !== 1) throw unrecognizedDevice('unknownUserChannel');
      // Throttled like lastSyncDateTime: an idle poll that finds nothing to do then writes nothing.
      const stale = [...new Set([device, target])].filter((x) => x.last_seen_at === null || this.now.getTime() - Date.parse(x.last_seen_at) >= LAST_SEEN_EVERY).map((x) => x.id);
      if (stale.length > 0) await trx.updateTable('mdm_enrollments').set({ last_seen_at: this.now.toISOString() }).where('id', 'in', stale).execute();
      if (report.status !== 'Idle') {
        const rec = await this.deps.queue.record(trx, tenantId, target.id, report, rawBody);
        if (!rec) {
          this.deps.logger.warn({ tenantId, enrollmentId: target.id, commandUuid: report.commandUuid, status: report.status }, 'result for a command not queued for this enrollment; ignored');
        } else if (!rec.duplicate && report.status === 'Acknowledged') {
          await this.applyResult(trx, ctx, device, target, rec.requestType, rec.command, report);
        }
      } else if (!report.channel.isUserChannel) {
        await this.idleChores(trx, ctx, device);
      }
      return this.deps.queue.next(trx, tenantId, target.id, { includeNotNow: report.status === 'Idle' });
    });
    return next ? { status: 200, body: next.plist, contentType: 'application/xml; charset=utf-8' } : { status: 200 };
  }

  /** What an acknowledged command means for our records. */
  private async applyResult(
    trx: Trx,
    ctx: MdmContext,
    device: MdmEnrollmentsTable,
    target: MdmEnrollmentsTable,
    requestType: string,
    command: Record<string, PlistValue>,
    report: CommandReport,
  ): Promise<void> {
    const { tenantId } = ctx;
    const now = this.now.toISOString();
    const managed = target.id === device.id && device.managed_device_id ? await this.deps.devices.findById(trx, tenantId, device.managed_device_id) : undefined;
    switch (requestType) {
      case 'DeviceInformation': {
        if (target.id !== device.id) return;
        const facts = inventoryFacts(report.body.QueryResponses);
        await trx
          .updateTable('mdm_enrollments')
          .set({ inventory_at: now, ...(facts.awaitingConfiguration === false ? { awaiting_configuration: 0 } : {}) })
          .where('id', '=', device.id)
          .execute();
        // A device an admin deleted isn't brought back by its inventory.
        if (!managed) return;
        const input = deviceInputFromFacts(facts, device.platform === 'macOS' ? 'macOS' : 'iOS');
        if (device.type === 'UserEnrollmentDevice') {
          delete input.serialNumber;
          delete input.imei;
          delete input.meid;
        }
        await this.deps.devices.upsert(trx, tenantId, { ...input, id: managed.id }, { requestId: ctx.requestId });
        return;
      }
      case 'ProfileList':
        await trx
          .updateTable('mdm_enrollments')
          .set({ profile_list: JSON.stringify(installedProfiles(report.body.ProfileList)), profile_list_at: now })
          .where('id', '=', target.id)
          .execute();
        return;
      case 'Settings': {
        const name = deviceNameOf(command);
        const failed = Array.isArray(report.body.Settings) && report.body.Settings.some((s) => s !== null && typeof s === 'object' && (s as Record<string, PlistValue>).Status === 'Error');
        if (name && managed && !failed) await this.deps.devices.upsert(trx, tenantId, { id: managed.id, deviceName: name }, { requestId: ctx.requestId });
        return;
      }
      case 'DeviceConfigured':
        await trx.updateTable('mdm_enrollments').set({ device_configured_at: now, awaiting_configuration: 0 }).where('id', '=', device.id).execute();
        return;
      default:
        return;
    }
  }

  /**
   * At an Idle of an enrolled device: lastSyncDateTime (throttled), a stale inventory refreshed,
   * and the ADE device name template re-applied when the device's name differs from it. These are
   * queued without a push: the device is polling now and gets them in this session.
   */
  private async idleChores(trx: Trx, ctx: MdmContext, e: MdmEnrollmentsTable): Promise<void> {
    const { tenantId } = ctx;
    if (e.enrolled_at === null || !e.managed_device_id) return;
    const md = await this.deps.devices.findById(trx, tenantId, e.managed_device_id);
    if (!md) return;
    const now = this.now;
    if (now.getTime() - Date.parse(md.last_sync_date_time) >= LAST_SYNC_EVERY) {
      await this.deps.devices.upsert(trx, tenantId, { id: md.id }, { requestId: ctx.requestId });
    }
    const specs: { spec: CommandSpec; opts: QueueOptions }[] = [];
    if (e.inventory_at === null || now.getTime() - Date.parse(e.inventory_at) >= INVENTORY_EVERY) {
      specs.push({ spec: deviceInformation(e.type === 'UserEnrollmentDevice'), opts: { dedupeKey: KEY.inventory } });
    }
    const wanted = await this.templateName(trx, tenantId, md.id, md.serial_number, familyOfType(md.device_type));
    if (wanted && md.device_name !== null && md.device_name !== wanted && !(await this.deps.queue.hasPending(trx, tenantId, e.id, KEY.deviceName))) {
      const last = await this.deps.queue.lastWithKey(trx, tenantId, e.id, KEY.deviceName);
      // A name the device refused isn't sent again at every check-in; a new name (template or serial change) is.
      const refused = last && last.status !== 'Acknowledged' && (FINAL_STATUSES as readonly string[]).includes(last.status) && deviceNameOf(commandOf(last.command_plist)) === wanted;
      if (!refused) specs.push({ spec: settingsDeviceName(wanted), opts: { dedupeKey: KEY.deviceName } });
    }
    if (specs.length > 0) await this.queueSystem(trx, tenantId, e.id, specs, false);
  }

  /** The name the enrolled ADE profile's template gives the device (the profile as it is now). */
  private async templateName(db: Executor, tenantId: string, managedDeviceId: string, serial: string | null, family: AppleFamily): Promise<string | undefined> {
    if (!serial) return undefined;
    // Runs at every Idle: one query; (tenant_id, serial_number) finds the one ADE row (a scan by managed device took 31 ms with 100,000 rows).
    const found = await db
      .selectFrom('dep_devices as d')
      .innerJoin('dep_profiles as p', (j) => j.onRef('p.id', '=', 'd.enrolled_profile_id').onRef('p.tenant_id', '=', 'd.tenant_id'))
      .select('p.settings')
      .where('d.tenant_id', '=', tenantId)
      .where('d.serial_number', '=', serial)
      .where('d.managed_device_id', '=', managedDeviceId)
      .where('d.enrollment_state', 'in', ['enrolled', 'pendingReset'])
      .where('d.deleted_at', 'is', null)
      .executeTakeFirst();
    const template = found ? storedDeviceNameTemplate(found.settings) : null;
    if (!template) return undefined;
    return renderDeviceName(template, { serialNumber: serial, deviceType: family === 'unknown' ? 'Device' : family });
  }
}

function familyOfType(deviceType: string): AppleFamily {
  switch (deviceType) {
    case 'iPhone':
    case 'iPad':
    case 'iPod':
      return deviceType;
    case 'macMDM':
    case 'mac':
      return 'Mac';
    default:
      return 'unknown';
  }
}

function readFacts(json: string | null): DeviceFacts {
  if (!json) return {};
  try {
    const v: unknown = JSON.parse(json);
    return v !== null && typeof v === 'object' ? (v as DeviceFacts) : {};
  } catch {
    return {};
  }
}

function parseTagIds(json: string): string[] {
  try {
    const v: unknown = JSON.parse(json);
    return Array.isArray(v) ? v.filter((t): t is string => typeof t === 'string' && t.length > 0) : [];
  } catch {
    return [];
  }
}

/** The gate's request and decision the front door stored with the intent. */
function parseGate(intent: EnrollmentIntent): { request: EnrollmentRequest; decision: GateDecision } | undefined {
  if (!intent.gate_request || !intent.gate_decision) return undefined;
  try {
    const request = JSON.parse(intent.gate_request) as EnrollmentRequest;
    const decision = JSON.parse(intent.gate_decision) as GateDecision & EnrollmentDecision;
    if (!request || typeof request !== 'object' || !decision || typeof decision !== 'object' || typeof decision.activityId !== 'string' || !decision.facts) return undefined;
    return { request, decision };
  } catch {
    return undefined;
  }
}

export function plistReply(value: Record<string, PlistValue>): DeviceReply {
  return { status: 200, body: buildPlist(value), contentType: 'application/xml; charset=utf-8' };
}

export function jsonReply(value: unknown): DeviceReply {
  return { status: 200, body: JSON.stringify(value), contentType: 'application/json' };
}

export { DEVICE_CHANNEL_TYPES };
