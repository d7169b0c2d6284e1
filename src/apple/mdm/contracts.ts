import type { Executor, Trx } from '../../store/db.js';
import type { EnrollmentIntentsTable } from '../../store/schema.js';

/**
 * How the pieces of Apple device enrollment meet (each is built and tested on its own):
 *
 *   front doors (src/apple/enrollment/: ADE endpoint, web sign-in, Configurator, user-initiated)
 *     ── decide with the enrollment gate, create an EnrollmentIntent, ask the ProfileIssuer for a
 *        signed .mobileconfig carrying a SCEP challenge bound to that intent;
 *   CA + SCEP (src/apple/scep/ + src/ca/)
 *     ── the device proves the challenge, gets an identity certificate bound to the intent;
 *   MDM core (src/apple/mdm/)
 *     ── Authenticate/TokenUpdate signed with that certificate find the intent, create the
 *        enrollment and the managed device, record the gate's success, and serve commands;
 *   APNs (src/apple/apns/)
 *     ── wakes enrolled devices when commands are queued.
 */

export type EnrollmentSource = 'ade' | 'configurator' | 'configuratorDirect' | 'userInitiated' | 'userEnrollment';
export type AppleEnrollmentPlatform = 'iOS' | 'macOS';

/** What a served profile is for (row of enrollment_intents). */
export type EnrollmentIntent = EnrollmentIntentsTable;

export interface NewEnrollmentIntent {
  tenantId: string;
  source: EnrollmentSource;
  enrollmentType: 'device' | 'user';
  platform: AppleEnrollmentPlatform;
  serialNumber?: string | null;
  udid?: string | null;
  imei?: string | null;
  osVersion?: string | null;
  product?: string | null;
  depDeviceId?: string | null;
  profileId?: string | null;
  profileName?: string | null;
  profileRevision?: number | null;
  userId?: string | null;
  ownership: 'company' | 'personal';
  /** Graph deviceEnrollmentType of the managed device (appleBulkWithUser, appleBulkWithoutUser, userEnrollment, appleUserEnrollment …). */
  deviceEnrollmentType: string;
  scopeTagIds?: string[];
  /** The gate's request and decision (EnrollmentRequest, GateDecision), recorded as a success at Authenticate. */
  gateRequest?: unknown;
  gateDecision?: unknown;
  /** Direct-enrollment downloads serve many devices for 14 days. */
  reusable?: boolean;
  /** When the intent (and its SCEP challenge) stops being usable. */
  expiresAt: Date;
}

/** Implemented by src/apple/enrollment/intents.ts. */
export interface EnrollmentIntents {
  create(trx: Trx, intent: NewEnrollmentIntent): Promise<EnrollmentIntent>;
  get(db: Executor, tenantId: string, id: string): Promise<EnrollmentIntent | undefined>;
  /** Marks a one-time intent used by an enrollment (Authenticate). */
  consume(trx: Trx, tenantId: string, id: string): Promise<void>;
}

/** Implemented by CA + SCEP (src/apple/scep/profile-issuer.ts). */
export interface ProfileIssuer {
  /**
   * A signed enrollment profile (CMS SignedData DER of the .mobileconfig plist) for an intent:
   * the com.apple.mdm payload (ServerURL/CheckInURL of this tenant, Topic from the push
   * certificate, IdentityCertificateUUID, AccessRights, CheckOutWhenRemoved, SignMessage=true,
   * ServerCapabilities), a SCEP payload with a fresh challenge bound to the intent (valid until
   * `challengeExpiresAt`: 15 minutes for one-time intents, the intent's expiry for reusable ones),
   * and the CA as trust anchor. For a User Enrollment intent: EnrollmentMode BYOD and the managed
   * Apple ID instead of device identifiers.
   */
  issueProfile(trx: Trx, intent: EnrollmentIntent, opts: { topic: string; challengeExpiresAt: Date; managedAppleId?: string }): Promise<{ signedProfile: Buffer; profileUuid: string }>;
}

/** What the MDM core learns from the identity certificate of a signed message. */
export interface IdentityBinding {
  tenantId: string;
  thumbprintSha256: string;
  intentId: string | null;
  enrollmentId: string | null;
}

/** Implemented by CA + SCEP (src/ca/). */
export interface IdentityVerifier {
  /**
   * Checks that a certificate was issued by this tenant's CA, is current and not revoked, and
   * returns what it is bound to; undefined otherwise.
   */
  identify(db: Executor, tenantId: string, certificateDer: Buffer, now: Date): Promise<IdentityBinding | undefined>;
  /** Binds an identity to an enrollment once Authenticate succeeds (also on renewal). */
  bindEnrollment(trx: Trx, tenantId: string, thumbprintSha256: string, enrollmentId: string): Promise<void>;
}

/** Implemented by APNs (src/apple/apns/). */
export interface PushReason {
  /** The command the push is for: each enrollment is pushed once for it, by whichever node claims it. */
  commandUuid?: string;
  signal?: AbortSignal;
}

export interface PushNotifier {
  /**
   * Wakes these enrollments (dedupes per command; marks 410 Unregistered). Never throws for device
   * errors. An aborted `signal` stops it between waves; what wasn't claimed yet stays to be pushed.
   */
  push(tenantId: string, enrollmentIds: readonly string[], reason?: PushReason): Promise<void>;
}

/** Implemented by the MDM core (src/apple/mdm/). */
export interface CommandQueue {
  /** Queues a command (a plist dict with RequestType and its keys) for enrollments and pushes them. */
  enqueue(
    trx: Trx,
    tenantId: string,
    enrollmentIds: readonly string[],
    command: { requestType: string; payload?: Record<string, unknown>; commandUuid?: string },
    opts?: { source?: 'admin' | 'system'; createdBy?: string | null; priority?: number },
  ): Promise<string>;
}
