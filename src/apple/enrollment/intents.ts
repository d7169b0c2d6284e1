import crypto from 'node:crypto';
import type { Executor, Trx } from '../../store/db.js';
import type { Clock } from '../../shared/time.js';
import type { EnrollmentIntent, EnrollmentIntents, NewEnrollmentIntent } from '../mdm/contracts.js';

/** Thrown by `consume` when an intent can't back an enrollment (unknown, expired, or already used). */
export class IntentUnusableError extends Error {
  constructor(
    readonly reason: 'notFound' | 'expired' | 'consumed',
    message: string,
  ) {
    super(message);
    this.name = 'IntentUnusableError';
  }
}

/** 128 random bits, hex: an intent id is bound into SCEP challenges and certificates, so it must not be guessable. */
export function newIntentId(): string {
  return crypto.randomBytes(16).toString('hex');
}

const INTENT_ID = /^[0-9a-f]{32}$/;

/** What the front doors add to the contract's intent (0011_apple_enrollment). */
export interface IntentExtras {
  /** user | userless | pendingCompanyPortal */
  userAffinity?: string | null;
  /** The resolved authentication method (none, companyPortal, setupAssistantLegacy, …). */
  authenticationMethod?: string | null;
}

export interface EnrollmentIntentStore extends EnrollmentIntents {
  create(trx: Trx, intent: NewEnrollmentIntent & IntentExtras): Promise<EnrollmentIntent>;
}

export function createEnrollmentIntents(clock: Clock): EnrollmentIntentStore {
  return {
    async create(trx: Trx, input: NewEnrollmentIntent & IntentExtras): Promise<EnrollmentIntent> {
      const now = clock.now();
      if (!(input.expiresAt instanceof Date) || Number.isNaN(input.expiresAt.getTime()) || input.expiresAt <= now) {
        throw new Error('an enrollment intent needs an expiry in the future');
      }
      const row: EnrollmentIntent = {
        id: newIntentId(),
        tenant_id: input.tenantId,
        source: input.source,
        enrollment_type: input.enrollmentType,
        platform: input.platform,
        serial_number: input.serialNumber ?? null,
        udid: input.udid ?? null,
        imei: input.imei ?? null,
        os_version: input.osVersion ?? null,
        product: input.product ?? null,
        dep_device_id: input.depDeviceId ?? null,
        profile_id: input.profileId ?? null,
        profile_name: input.profileName ?? null,
        profile_revision: input.profileRevision ?? null,
        user_id: input.userId ?? null,
        ownership: input.ownership,
        device_enrollment_type: input.deviceEnrollmentType,
        scope_tag_ids: JSON.stringify(input.scopeTagIds ?? []),
        gate_request: input.gateRequest === undefined ? null : JSON.stringify(input.gateRequest),
        gate_decision: input.gateDecision === undefined ? null : JSON.stringify(input.gateDecision),
        reusable: input.reusable ? 1 : 0,
        created_at: now.toISOString(),
        expires_at: input.expiresAt.toISOString(),
        consumed_at: null,
        user_affinity: input.userAffinity ?? null,
        authentication_method: input.authenticationMethod ?? null,
      };
      await trx.insertInto('enrollment_intents').values(row).execute();
      return row;
    },

    async get(db: Executor, tenantId: string, id: string): Promise<EnrollmentIntent | undefined> {
      if (!INTENT_ID.test(id)) return undefined;
      return db.selectFrom('enrollment_intents').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst();
    },

    async consume(trx: Trx, tenantId: string, id: string): Promise<void> {
      const now = clock.now().toISOString();
      const intent = INTENT_ID.test(id)
        ? await trx.selectFrom('enrollment_intents').selectAll().where('tenant_id', '=', tenantId).where('id', '=', id).executeTakeFirst()
        : undefined;
      if (!intent) throw new IntentUnusableError('notFound', 'the enrollment intent does not exist');
      if (intent.expires_at <= now) throw new IntentUnusableError('expired', 'the enrollment intent has expired');
      // Reusable intents (direct-enrollment downloads) back many enrollments until they expire.
      if (intent.reusable === 1) return;
      // Conditional on consumed_at so two concurrent Authenticates can't both use a one-time intent.
      const res = await trx
        .updateTable('enrollment_intents')
        .set({ consumed_at: now })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .where('consumed_at', 'is', null)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) throw new IntentUnusableError('consumed', 'the enrollment intent has already been used');
    },
  };
}
