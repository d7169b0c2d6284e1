import type { Actor } from '../../auth/principal.js';
import type { Executor } from '../../store/db.js';
import type { DepApi } from './dep-api.js';

/**
 * How the ADE admin API (tokens, profiles, devices — src/apple/ade/admin/) and the sync engine
 * (src/apple/ade/sync/) call each other, so each can be built and tested on its own.
 */

/** A DEP client for one uploaded token (decrypts its OAuth secret; base URL from config). */
export type DepApiFactory = (db: Executor, tenantId: string, tokenId: string) => Promise<DepApi>;

/** Implemented by the sync engine. */
export interface AdeSyncScheduler {
  /** Schedules the token's periodic sync and an initial sync now; called in the upload's transaction. */
  scheduleAfterUpload(trx: Executor, tenantId: string, tokenId: string): Promise<void>;
  /**
   * syncWithAppleDeviceEnrollmentProgram: at most once per 15 minutes and not while a sync runs;
   * otherwise throws a 429 GraphError with Retry-After and a clear message.
   */
  requestManualSync(actor: Actor, tokenId: string): Promise<void>;
  /** Stops syncing a token that is being deleted; called in the delete's transaction. */
  cancel(trx: Executor, tenantId: string, tokenId: string): Promise<void>;
}

/** Implemented by the admin side (profiles and assignment). */
export interface AdeAssigner {
  /**
   * After a sync page: serials without an admin-chosen profile get the token's default profile
   * for their platform, and the assignment is pushed to Apple with `api`; Apple's per-device
   * result is recorded. Serials whose effective profile is unchanged are left alone.
   */
  assignDefaultProfiles(tenantId: string, tokenId: string, serials: readonly string[], api: DepApi): Promise<void>;
}
