import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { JobScheduler } from '../../../jobs/scheduler.js';
import { MINUTE, HOUR, type Clock } from '../../../shared/time.js';
import type { Executor, Store } from '../../../store/db.js';
import type { DepProfilesTable } from '../../../store/schema.js';
import type { AdeAssigner, DepApiFactory } from '../contracts.js';
import { DepApiError, type DepApi, type DepProfile } from '../dep-api.js';
import { storedProfileFromRow, toAppleProfile } from '../profiles/index.js';
import { DepTokenNotUploadedError } from './dep-connection.js';
import { deviceView } from './device-view.js';

/**
 * Defining profiles at Apple and assigning them to devices, for the admin API and (as the
 * AdeAssigner of contracts.ts) for the sync engine.
 *
 * - A profile is (re)defined at Apple when the Apple JSON it produces differs from the one last
 *   defined (apple_profile_hash): Apple profiles are immutable, so a change is a new profile_uuid.
 *   Devices whose effective profile it is then get the new UUID.
 * - Devices waiting for Apple are marked PENDING in the transaction that made them wait, and a
 *   durable job per token (ASSIGN_JOB) pushes them; callers also push at once, so the job usually
 *   finds nothing left. Apple's per-device answer is recorded: SUCCESS, NOT_ACCESSIBLE (final),
 *   FAILED / THROTTLED (retried by the job with backoff).
 * - Every Apple call happens outside a transaction; results are written only for devices whose
 *   effective profile is still the one pushed.
 */

export const PROFILE_DEFINE_JOB = 'apple.ade.profile-define';
export const ASSIGN_JOB = 'apple.ade.assign';
/** The delay before the durable job runs after an inline attempt (which usually does the work). */
const JOB_DELAY_MS = MINUTE;
/** Devices one inline push handles; the job does the rest. */
export const INLINE_PUSH_LIMIT = 1000;

export const defineJobKey = (profileId: string) => `${PROFILE_DEFINE_JOB}:${profileId}`;
export const assignJobKey = (tokenId: string) => `${ASSIGN_JOB}:${tokenId}`;

/** Where ADE devices enroll (device-facing, next issue) and sign in for modern authentication. */
export function adeEnrollmentPath(tenantId: string, profileId: string): string {
  return `/enroll/apple/ade/${encodeURIComponent(tenantId)}/${encodeURIComponent(profileId)}`;
}

export function adeEnrollmentUrls(publicUrl: string | undefined, tenantId: string, profileId: string) {
  if (!publicUrl) throw new Error('OPENENROLL_PUBLIC_URL is not set, and Apple needs the https URL devices enroll at');
  const enrollmentUrl = `${publicUrl}${adeEnrollmentPath(tenantId, profileId)}`;
  return { serverUrl: publicUrl, enrollmentUrl, configurationWebUrl: `${enrollmentUrl}/web` };
}

export const appleProfileHash = (p: DepProfile) => createHash('sha256').update(JSON.stringify(p)).digest('hex');

export interface AdeAssignmentDeps {
  store: Store;
  clock: Clock;
  jobs: JobScheduler;
  logger: Logger;
  publicUrl: string | undefined;
  /** For Apple calls the admin API makes (fewer retries than a background sync). */
  depApiFor: DepApiFactory;
}

export interface PushSummary {
  /** Devices Apple answered for, by result. */
  results: Record<string, number>;
  /** Devices still waiting (Apple unreachable, profile not definable, FAILED/THROTTLED). */
  remaining: number;
  errors: string[];
}

type DefineOutcome = { ok: true; uuid: string } | { ok: false; error: string };

const RETRYABLE = ['FAILED', 'THROTTLED'];

function describe(err: unknown): string {
  if (err instanceof DepApiError) return err.message;
  if (err instanceof DepTokenNotUploadedError) return 'The enrollment program token has no server token uploaded yet.';
  return err instanceof Error ? err.message : String(err);
}

export class AdeAssignments implements AdeAssigner {
  constructor(private readonly deps: AdeAssignmentDeps) {}

  /** Registers the durable jobs. */
  registerJobs(): void {
    const backoffMs = (attempt: number) => Math.min(HOUR, 30_000 * 2 ** Math.max(0, attempt - 1));
    this.deps.jobs.register(
      PROFILE_DEFINE_JOB,
      async (payload, ctx) => {
        const { profileId } = payload as { profileId: string };
        const outcome = await this.defineIfNeeded(ctx.job.tenantId, profileId, undefined, { inJob: true });
        if (outcome && !outcome.ok) throw new Error(outcome.error);
        // Devices waiting for this definition get it now rather than at the assign job's next run.
        const tokenId = await this.tokenOf(ctx.job.tenantId, profileId);
        if (outcome?.ok && tokenId) await this.pushPending(ctx.job.tenantId, tokenId);
      },
      { maxAttempts: 10, backoffMs },
    );
    this.deps.jobs.register(
      ASSIGN_JOB,
      async (payload, ctx) => {
        const { tokenId } = payload as { tokenId: string };
        const summary = await this.pushPending(ctx.job.tenantId, tokenId, { retryFailed: true, drain: true, inJob: true });
        if (summary.remaining > 0) throw new Error(`${summary.remaining} device(s) not yet assigned at Apple: ${summary.errors.slice(0, 3).join('; ') || 'FAILED or THROTTLED'}`);
      },
      { maxAttempts: 10, backoffMs },
    );
  }

  private async tokenOf(tenantId: string, profileId: string): Promise<string | undefined> {
    const row = await this.deps.store.db.selectFrom('dep_profiles').select('token_id').where('tenant_id', '=', tenantId).where('id', '=', profileId).executeTakeFirst();
    return row?.token_id;
  }

  scheduleDefine(db: Executor, tenantId: string, profileId: string, delayMs = JOB_DELAY_MS): Promise<string> {
    const runAt = new Date(this.deps.clock.now().getTime() + delayMs);
    return this.deps.jobs.enqueue(db, { tenantId, kind: PROFILE_DEFINE_JOB, dedupeKey: defineJobKey(profileId), payload: { profileId }, runAt, intervalMs: null });
  }

  scheduleAssign(db: Executor, tenantId: string, tokenId: string, delayMs = JOB_DELAY_MS): Promise<string> {
    const runAt = new Date(this.deps.clock.now().getTime() + delayMs);
    return this.deps.jobs.enqueue(db, { tenantId, kind: ASSIGN_JOB, dedupeKey: assignJobKey(tokenId), payload: { tokenId }, runAt, intervalMs: null });
  }

  /** The Apple JSON of a profile row as it is now (throws when it can't be built, e.g. no https public URL). */
  appleProfileOf(tenantId: string, row: Pick<DepProfilesTable, 'id' | 'platform' | 'display_name' | 'description' | 'settings'>): DepProfile {
    const urls = adeEnrollmentUrls(this.deps.publicUrl, tenantId, row.id);
    return toAppleProfile(storedProfileFromRow(row, false), { ...urls, orgMagic: tenantId });
  }

  /** Whether the profile must be defined (again) at Apple; undefined when the profile or an uploaded token is missing. */
  private async needsDefine(db: Executor, tenantId: string, profileId: string): Promise<{ row: DepProfilesTable; apple: DepProfile | Error } | undefined> {
    const row = await db.selectFrom('dep_profiles').selectAll().where('tenant_id', '=', tenantId).where('id', '=', profileId).executeTakeFirst();
    if (!row) return undefined;
    const token = await db.selectFrom('dep_tokens').select('oauth_secret_id').where('tenant_id', '=', tenantId).where('id', '=', row.token_id).executeTakeFirst();
    if (!token?.oauth_secret_id) return undefined;
    let apple: DepProfile | Error;
    try {
      apple = this.appleProfileOf(tenantId, row);
    } catch (err) {
      apple = err instanceof Error ? err : new Error(String(err));
    }
    return { row, apple };
  }

  /**
   * Defines the profile at Apple unless Apple already has this exact version. Returns its current
   * UUID, the error (also stored in apple_sync_error, with a retry job), or undefined when there is
   * nothing to define with (no profile, or no server token uploaded yet).
   */
  async defineIfNeeded(tenantId: string, profileId: string, api?: DepApi, opts: { inJob?: boolean } = {}): Promise<DefineOutcome | undefined> {
    const { store } = this.deps;
    const found = await this.needsDefine(store.db, tenantId, profileId);
    if (!found) return undefined;
    const { row, apple } = found;
    if (!(apple instanceof Error) && row.apple_profile_uuid && row.apple_profile_hash === appleProfileHash(apple)) return { ok: true, uuid: row.apple_profile_uuid };
    if (apple instanceof Error) return this.defineFailed(tenantId, row, `The profile can't be sent to Apple: ${apple.message}`, opts.inJob);
    let uuid: string;
    try {
      const client = api ?? (await this.deps.depApiFor(store.db, tenantId, row.token_id));
      uuid = (await client.defineProfile(apple)).profile_uuid;
      if (!uuid) throw new DepApiError(200, 'MALFORMED_RESPONSE', 'Apple answered the profile definition without a profile_uuid');
    } catch (err) {
      return this.defineFailed(tenantId, row, `Apple refused or couldn't take the profile: ${describe(err)}`, opts.inJob);
    }
    const hash = appleProfileHash(apple);
    const stored = await store.transaction(async (trx) => {
      const current = await this.needsDefine(trx, tenantId, profileId);
      // Changed meanwhile: the change defines its own version.
      if (!current || current.apple instanceof Error || appleProfileHash(current.apple) !== hash) return false;
      // Two runs (the define job and an assign job) may define the same version at once: the first
      // stored UUID wins, so every device is assigned the same one. The row-level condition makes
      // the later UPDATE a no-op even when both transactions read the row before either wrote.
      const updated = await trx
        .updateTable('dep_profiles')
        .set({ apple_profile_uuid: uuid, apple_profile_hash: hash, apple_defined_at: this.deps.clock.now().toISOString(), apple_sync_error: null })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', profileId)
        .where((eb) => eb.or([eb('apple_profile_uuid', 'is', null), eb('apple_profile_hash', 'is', null), eb('apple_profile_hash', '<>', hash)]))
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) === 0) return false;
      // Devices holding the old UUID (or none) get the new one.
      const marked = await this.markPending(trx, tenantId, row.token_id, { profileId });
      if (marked > 0) await this.scheduleAssign(trx, tenantId, row.token_id);
      return true;
    });
    if (!stored) {
      const now = await this.needsDefine(store.db, tenantId, profileId);
      return now?.row.apple_profile_uuid ? { ok: true, uuid: now.row.apple_profile_uuid } : { ok: false, error: 'The profile changed while it was being defined at Apple.' };
    }
    return { ok: true, uuid };
  }

  /** Records the error and makes sure a retry is scheduled (the define job's own run is retried by failing). */
  private async defineFailed(tenantId: string, row: DepProfilesTable, error: string, inJob = false): Promise<DefineOutcome> {
    this.deps.logger.warn({ tenantId, profileId: row.id, err: error }, 'defining an ADE profile at Apple failed');
    await this.deps.store.transaction(async (trx) => {
      await trx.updateTable('dep_profiles').set({ apple_sync_error: error.slice(0, 2000) }).where('tenant_id', '=', tenantId).where('id', '=', row.id).execute();
      // Re-enqueueing a job from its own run would reset its attempts, so it could never give up.
      if (!inJob) await this.scheduleDefine(trx, tenantId, row.id);
    });
    return { ok: false, error };
  }

  /**
   * Marks PENDING the devices of a token (optionally: of one effective profile, or these serials,
   * or this platform without an admin choice) whose effective profile Apple doesn't hold.
   * Released and hidden devices are left alone. Returns how many were marked.
   */
  async markPending(trx: Executor, tenantId: string, tokenId: string, filter: { profileId?: string; serials?: readonly string[]; defaultOf?: 'ios' | 'macOS' }): Promise<number> {
    let q = deviceView(trx, tenantId)
      .where('d.token_id', '=', tokenId)
      .where('d.removed_from_apple_at', 'is', null)
      .where('p.id', 'is not', null)
      .where(sql<boolean>`(p.apple_profile_uuid is null or d.apple_profile_uuid is null or d.apple_profile_uuid <> p.apple_profile_uuid)`);
    if (filter.profileId) q = q.where('p.id', '=', filter.profileId);
    if (filter.defaultOf) q = q.where('d.platform', '=', filter.defaultOf).where('d.requested_profile_id', 'is', null);
    const rows = filter.serials ? await this.inChunks(filter.serials, (part) => q.where('d.serial_number', 'in', part).execute()) : await q.execute();
    const ids = rows.map((r) => r.id);
    const now = this.deps.clock.now().toISOString();
    for (let i = 0; i < ids.length; i += 500) {
      await trx.updateTable('dep_devices').set({ assignment_result: 'PENDING', assignment_result_at: now, updated_at: now }).where('tenant_id', '=', tenantId).where('id', 'in', ids.slice(i, i + 500)).execute();
    }
    return ids.length;
  }

  private async inChunks<T, R>(items: readonly T[], fn: (part: T[]) => Promise<R[]>, size = 500): Promise<R[]> {
    const out: R[] = [];
    for (let i = 0; i < items.length; i += size) out.push(...(await fn(items.slice(i, i + size))));
    return out;
  }

  /**
   * Pushes the token's PENDING devices (with retryFailed also FAILED and THROTTLED ones) to Apple:
   * each gets its effective profile, defined first when needed. `serials` limits it to those
   * devices; `drain` keeps going past INLINE_PUSH_LIMIT.
   */
  async pushPending(
    tenantId: string,
    tokenId: string,
    opts: { serials?: readonly string[]; retryFailed?: boolean; api?: DepApi; drain?: boolean; inJob?: boolean } = {},
  ): Promise<PushSummary> {
    const summary: PushSummary = { results: {}, remaining: 0, errors: [] };
    const wanted = opts.retryFailed ? ['PENDING', ...RETRYABLE] : ['PENDING'];
    const tried = new Set<string>();
    for (;;) {
      let q = deviceView(this.deps.store.db, tenantId)
        .where('d.token_id', '=', tokenId)
        .where('d.removed_from_apple_at', 'is', null)
        .where('p.id', 'is not', null)
        .where('d.assignment_result', 'in', wanted)
        .orderBy('d.serial_number')
        .limit(INLINE_PUSH_LIMIT + tried.size);
      if (opts.serials) q = q.where('d.serial_number', 'in', opts.serials.length > 0 ? [...opts.serials] : ['']);
      const rows = (await q.execute()).filter((r) => !tried.has(r.id)).slice(0, INLINE_PUSH_LIMIT);
      if (rows.length === 0) break;
      for (const r of rows) tried.add(r.id);
      const byProfile = new Map<string, string[]>();
      for (const r of rows) byProfile.set(r.effective_profile_id!, [...(byProfile.get(r.effective_profile_id!) ?? []), r.serial_number]);
      for (const [profileId, serials] of byProfile) await this.assign(tenantId, tokenId, profileId, serials, opts.api, summary);
      if (!opts.drain || rows.length < INLINE_PUSH_LIMIT) break;
    }
    // The durable job picks up what is left; the job itself retries by failing.
    if (summary.remaining > 0 && !opts.inJob) await this.scheduleAssign(this.deps.store.db, tenantId, tokenId);
    return summary;
  }

  private async assign(tenantId: string, tokenId: string, profileId: string, serials: string[], api: DepApi | undefined, summary: PushSummary): Promise<void> {
    const defined = await this.defineIfNeeded(tenantId, profileId, api);
    if (!defined || !defined.ok) {
      summary.remaining += serials.length;
      summary.errors.push(defined?.error ?? 'The enrollment program token has no server token uploaded yet.');
      return;
    }
    let results: Record<string, string>;
    let client: DepApi;
    try {
      client = api ?? (await this.deps.depApiFor(this.deps.store.db, tenantId, tokenId));
      results = (await client.assignProfile(defined.uuid, serials)).devices;
    } catch (err) {
      if (err instanceof DepApiError && err.code === 'PROFILE_NOT_FOUND') {
        // Apple no longer knows the UUID: define the profile again next time.
        await this.deps.store.db.updateTable('dep_profiles').set({ apple_profile_hash: null }).where('tenant_id', '=', tenantId).where('id', '=', profileId).execute();
      }
      this.deps.logger.warn({ tenantId, tokenId, profileId, devices: serials.length, err: describe(err) }, 'assigning an ADE profile at Apple failed');
      summary.remaining += serials.length;
      summary.errors.push(describe(err));
      return;
    }
    await this.record(tenantId, tokenId, profileId, defined.uuid, serials, results, summary);
  }

  /** Writes Apple's per-device answers for devices whose effective profile is still `profileId`. */
  private async record(tenantId: string, tokenId: string, profileId: string, uuid: string, serials: string[], results: Record<string, string>, summary: PushSummary): Promise<void> {
    const now = this.deps.clock.now().toISOString();
    await this.deps.store.transaction(async (trx) => {
      const still = await deviceView(trx, tenantId)
        .where('d.token_id', '=', tokenId)
        .where('p.id', '=', profileId)
        .where('d.serial_number', 'in', serials)
        .execute();
      const revision = still[0]?.effective_revision ?? null;
      const groups = new Map<string, string[]>();
      for (const d of still) {
        const raw = results[d.serial_number];
        const code = raw === undefined ? 'FAILED' : ['SUCCESS', 'NOT_ACCESSIBLE', 'THROTTLED'].includes(raw) ? raw : 'FAILED';
        groups.set(code, [...(groups.get(code) ?? []), d.id]);
      }
      for (const [code, ids] of groups) {
        summary.results[code] = (summary.results[code] ?? 0) + ids.length;
        if (RETRYABLE.includes(code)) summary.remaining += ids.length;
        for (let i = 0; i < ids.length; i += 500) {
          const part = ids.slice(i, i + 500);
          await trx
            .updateTable('dep_devices')
            .set(
              code === 'SUCCESS'
                ? {
                    assignment_result: code,
                    assignment_result_at: now,
                    apple_profile_uuid: uuid,
                    apple_profile_status: 'assigned',
                    apple_profile_assign_time: now,
                    assigned_profile_id: profileId,
                    assigned_profile_revision: revision,
                    updated_at: now,
                  }
                : { assignment_result: code, assignment_result_at: now, updated_at: now },
            )
            .where('tenant_id', '=', tenantId)
            .where('id', 'in', part)
            .execute();
        }
      }
    });
  }

  /**
   * AdeAssigner (contracts.ts), for the sync engine after each page: the given serials get their
   * effective profile (the admin's choice, else the token's default for their platform) unless
   * Apple already holds it; Apple's answers are recorded. Released and hidden devices, and devices
   * with no effective profile, are left alone.
   */
  async assignDefaultProfiles(tenantId: string, tokenId: string, serials: readonly string[], api: DepApi): Promise<void> {
    if (serials.length === 0) return;
    // The usual first sync: no default profile yet, so nothing to mark (setDefaultProfile marks the stored devices itself).
    const defaults = await this.deps.store.db.selectFrom('dep_tokens').select(['default_ios_profile_id', 'default_macos_profile_id']).where('tenant_id', '=', tenantId).where('id', '=', tokenId).executeTakeFirst();
    if (!defaults?.default_ios_profile_id && !defaults?.default_macos_profile_id) return;
    const marked = await this.deps.store.transaction(async (trx) => {
      const n = await this.markPending(trx, tenantId, tokenId, { serials });
      if (n > 0) await this.scheduleAssign(trx, tenantId, tokenId);
      return n;
    });
    if (marked > 0) {
      for (let i = 0; i < serials.length; i += INLINE_PUSH_LIMIT) await this.pushPending(tenantId, tokenId, { serials: serials.slice(i, i + INLINE_PUSH_LIMIT), api });
    }
  }
}
