import crypto from 'node:crypto';
import os from 'node:os';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Executor, Store } from '../store/db.js';
import type { JobsTable } from '../store/schema.js';
import { systemClock, type Clock } from '../shared/time.js';

/**
 * A durable job scheduler on the store. Jobs are rows with a lease:
 *
 * - `pending` (due at `run_at`) → claimed as `running` with a lease (`lease_owner`, `lease_expires_at`,
 *   and `lease_version`, a fencing token bumped on every claim) → `succeeded`, `dead`, or `pending`
 *   again (retry with backoff, next period).
 * - A claim is one UPDATE that only takes a row whose lease is free or expired (PostgreSQL also skips
 *   rows another node is claiming: FOR UPDATE SKIP LOCKED), so at most one node runs a job at a time.
 * - The holder renews its lease while the handler runs; every write it makes about the run is fenced
 *   on the lease version, so a node that lost its lease can't record anything.
 * - A node that dies just stops renewing; once the lease expires another node takes the job over.
 *   The lost run counts as an attempt, so a job that kills its node eventually dies.
 * - Lease times come from each node's clock: nodes need clocks in sync to well within the lease.
 */

export type JobStatus = 'pending' | 'running' | 'succeeded' | 'dead';

export interface JobRecord {
  id: string;
  tenantId: string;
  kind: string;
  dedupeKey: string | null;
  payload: unknown;
  /** The attempt this run is, from 1. */
  attempts: number;
  maxAttempts: number;
  intervalMs: number | null;
  leaseVersion: number;
}

export interface JobContext {
  job: JobRecord;
  /** Aborted when the lease is lost, the run times out, or the node shuts down; `reason` says which. */
  signal: AbortSignal;
  /**
   * Throws LeaseLostError unless this run still holds an unexpired lease. Call it inside the
   * transaction that commits the work: on PostgreSQL it also locks the job row until that commit,
   * so no other node can take the job over in between.
   */
  assertLease(db?: Executor): Promise<void>;
}

export type JobOutcome = void | { rescheduleAt?: Date };
export type JobHandler = (payload: unknown, ctx: JobContext) => Promise<JobOutcome>;

export interface JobKindOptions {
  /** Default for jobs enqueued by this node; default 5. */
  maxAttempts?: number;
  /** A run is aborted (and counts as a failed attempt) after this long. */
  timeoutMs?: number;
  /** Delay before retry n (1-based). Default: exponential from 1 s, capped at 1 h, with jitter. */
  backoffMs?: (attempt: number) => number;
}

export interface EnqueueOptions {
  tenantId: string;
  kind: string;
  /** JSON-serialisable. Enqueueing again with the same dedupe key and no payload keeps the old one. */
  payload?: unknown;
  /** Default now. */
  runAt?: Date;
  /**
   * At most one job per (tenant, key). Enqueueing again updates that job: a pending one runs at the
   * earlier of its time and `runAt`; a running one runs again after this run (so a request that
   * arrives mid-run is never lost); a finished one is revived with fresh attempts.
   */
  dedupeKey?: string;
  /** Makes the job periodic. With a dedupe key: omitted keeps the job's interval, null makes it one-off. */
  intervalMs?: number | null;
  maxAttempts?: number;
}

export type RunResult = 'succeeded' | 'failed' | 'dead' | 'lease_lost' | 'interrupted';

export class LeaseLostError extends Error {
  constructor(jobId: string) {
    super(`lease on job ${jobId} was lost`);
    this.name = 'LeaseLostError';
  }
}

export class JobTimeoutError extends Error {
  constructor(ms: number) {
    super(`job timed out after ${ms} ms`);
    this.name = 'JobTimeoutError';
  }
}

export class ShutdownError extends Error {
  constructor() {
    super('node is shutting down');
    this.name = 'ShutdownError';
  }
}

export function defaultBackoff(attempt: number): number {
  const base = Math.min(3_600_000, 1000 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

export interface SchedulerOptions {
  owner?: string;
  /** Default 30 s. */
  leaseMs?: number;
  /** How often a running job's lease is renewed; default a third of the lease. */
  heartbeatMs?: number;
  pollIntervalMs?: number;
  /** Jobs this node runs at once; default 4. */
  concurrency?: number;
  /** How long an aborted handler gets to settle before it is abandoned; default 5 s. */
  abortGraceMs?: number;
  clock?: Clock;
  logger?: Logger;
  onRun?: (kind: string, result: RunResult, durationMs: number) => void;
}

interface Running {
  job: JobRecord;
  abort: AbortController;
  done: Promise<void>;
}

/** What a run's end writes, unless the job was enqueued again meanwhile. */
interface NextState {
  status: 'pending' | 'succeeded' | 'dead';
  runAt: Date;
  attempts: number;
  lastError: string | null;
}

const MAX_ERROR_LENGTH = 2000;

export class JobScheduler {
  readonly owner: string;
  private readonly handlers = new Map<string, { handler: JobHandler; opts: JobKindOptions }>();
  private readonly running = new Map<string, Running>();
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  private started = false;
  private stopped: Promise<void> | undefined;
  /** Polls run one after another, so concurrent callers can't exceed the concurrency limit. */
  private polls: Promise<unknown> = Promise.resolve();
  private readonly leaseMs: number;
  private readonly heartbeatMs: number;
  private readonly pollIntervalMs: number;
  private readonly concurrency: number;
  private readonly abortGraceMs: number;
  private readonly clock: Clock;

  constructor(
    private readonly store: Store,
    private readonly opts: SchedulerOptions = {},
  ) {
    this.owner = opts.owner ?? `${os.hostname()}:${process.pid}:${crypto.randomUUID().slice(0, 8)}`;
    this.leaseMs = opts.leaseMs ?? 30_000;
    this.heartbeatMs = opts.heartbeatMs ?? Math.max(10, Math.floor(this.leaseMs / 3));
    this.pollIntervalMs = opts.pollIntervalMs ?? 1000;
    this.concurrency = opts.concurrency ?? 4;
    this.abortGraceMs = opts.abortGraceMs ?? 5000;
    this.clock = opts.clock ?? systemClock;
    if (!(this.leaseMs > 0)) throw new RangeError('leaseMs must be positive');
    if (!(this.heartbeatMs > 0 && this.heartbeatMs < this.leaseMs)) throw new RangeError('heartbeatMs must be positive and shorter than leaseMs');
    if (!(Number.isInteger(this.concurrency) && this.concurrency >= 1)) throw new RangeError('concurrency must be a positive integer');
  }

  register(kind: string, handler: JobHandler, opts: JobKindOptions = {}): void {
    if (this.handlers.has(kind)) throw new Error(`job kind ${kind} is already registered`);
    if (opts.maxAttempts !== undefined) checkMaxAttempts(opts.maxAttempts);
    this.handlers.set(kind, { handler, opts });
  }

  get kinds(): string[] {
    return [...this.handlers.keys()];
  }

  /** Adds a job, or updates the job with the same dedupe key (see EnqueueOptions). Returns its id. */
  async enqueue(db: Executor, o: EnqueueOptions): Promise<string> {
    if (!o.kind) throw new TypeError('job kind is required');
    if (o.runAt !== undefined && Number.isNaN(o.runAt.getTime())) throw new RangeError('runAt is not a valid date');
    if (o.intervalMs != null && !(Number.isSafeInteger(o.intervalMs) && o.intervalMs > 0)) {
      throw new RangeError('intervalMs must be a positive integer');
    }
    const maxAttempts = o.maxAttempts ?? this.handlers.get(o.kind)?.opts.maxAttempts ?? 5;
    checkMaxAttempts(maxAttempts);
    const now = this.clock.now().toISOString();
    const row = {
      id: crypto.randomUUID(),
      tenant_id: o.tenantId,
      kind: o.kind,
      dedupe_key: o.dedupeKey ?? null,
      payload: JSON.stringify(o.payload ?? null),
      status: 'pending',
      run_at: (o.runAt ?? this.clock.now()).toISOString(),
      interval_ms: o.intervalMs ?? null,
      attempts: 0,
      max_attempts: maxAttempts,
      lease_owner: null,
      lease_expires_at: null,
      lease_version: 0,
      last_error: null,
      last_started_at: null,
      last_finished_at: null,
      created_at: now,
      updated_at: now,
    };
    if (o.dedupeKey === undefined) {
      await db.insertInto('jobs').values(row).execute();
      return row.id;
    }
    // One atomic upsert: two nodes enqueueing the same key at once end up with one job.
    const finished = sql<boolean>`jobs.status in ('succeeded', 'dead')`;
    const result = await db
      .insertInto('jobs')
      .values(row)
      .onConflict((oc) =>
        oc.columns(['tenant_id', 'dedupe_key']).doUpdateSet((eb) => ({
          kind: eb.ref('excluded.kind'),
          payload: o.payload === undefined ? eb.ref('jobs.payload') : eb.ref('excluded.payload'),
          interval_ms: o.intervalMs === undefined ? eb.ref('jobs.interval_ms') : eb.ref('excluded.interval_ms'),
          max_attempts: eb.ref('excluded.max_attempts'),
          // 'pending' on a running job is how its runner learns it was asked for again (see finish).
          status: 'pending',
          run_at: sql<string>`case when jobs.status = 'pending' and jobs.run_at < excluded.run_at then jobs.run_at else excluded.run_at end`,
          attempts: sql<number>`case when ${finished} then 0 else jobs.attempts end`,
          last_error: sql<string | null>`case when ${finished} then null else jobs.last_error end`,
          updated_at: eb.ref('excluded.updated_at'),
        })),
      )
      .returning('id')
      .executeTakeFirstOrThrow();
    return result.id;
  }

  /** Deletes the job with this dedupe key; a run in progress is aborted at its next lease renewal. */
  async cancel(db: Executor, tenantId: string, dedupeKey: string): Promise<boolean> {
    const res = await db.deleteFrom('jobs').where('tenant_id', '=', tenantId).where('dedupe_key', '=', dedupeKey).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.stopping = false;
    this.stopped = undefined;
    const tick = () => {
      if (this.stopping) return;
      this.pollOnce()
        .catch((err: unknown) => this.opts.logger?.warn({ err: errMessage(err) }, 'job poll failed'))
        .finally(() => {
          if (!this.stopping) this.timer = setTimeout(tick, this.pollIntervalMs);
        });
    };
    this.timer = setTimeout(tick, 0);
  }

  /**
   * Stops claiming work, waits up to `graceMs` for running jobs, then aborts the rest. An aborted run
   * gives its lease back (and doesn't count as an attempt) so another node can take the job at once;
   * a handler that ignores the abort for `abortGraceMs` keeps the job blocked until its lease expires.
   */
  stop(graceMs = 10_000): Promise<void> {
    if (this.stopped) return this.stopped;
    this.stopping = true;
    this.started = false;
    clearTimeout(this.timer);
    this.stopped = (async () => {
      await this.polls;
      const all = [...this.running.values()];
      if (all.length > 0) {
        let timer: NodeJS.Timeout | undefined;
        const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
        await Promise.race([Promise.all(all.map((r) => r.done)), grace]);
        clearTimeout(timer);
        for (const r of this.running.values()) r.abort.abort(new ShutdownError());
        await Promise.all([...this.running.values()].map((r) => r.done));
      }
      await this.releaseLeftoverLeases();
    })();
    return this.stopped;
  }

  /** Safety net for runs whose end could not be written (store briefly unreachable). */
  private async releaseLeftoverLeases(): Promise<void> {
    try {
      await this.store.db
        .updateTable('jobs')
        .set({ status: sql<string>`case when status = 'running' then 'pending' else status end`, lease_owner: null, lease_expires_at: null })
        .where('lease_owner', '=', this.owner)
        .execute();
    } catch (err) {
      this.opts.logger?.warn({ err: errMessage(err) }, 'could not release job leases');
    }
  }

  /** Claims and starts due jobs up to the concurrency limit. Returns how many started. */
  pollOnce(): Promise<number> {
    const poll = this.polls.then(() => this.claimAndLaunch());
    this.polls = poll.catch(() => undefined);
    return poll;
  }

  /** Runs every due job to completion (tests and CLI). */
  async drain(): Promise<void> {
    for (;;) {
      await this.pollOnce();
      if (this.running.size === 0) return;
      await Promise.race([...this.running.values()].map((r) => r.done));
    }
  }

  private async claimAndLaunch(): Promise<number> {
    if (this.stopping || this.kinds.length === 0) return 0;
    await this.reapExhausted();
    let started = 0;
    while (!this.stopping && this.running.size < this.concurrency) {
      const claimed = await this.claim();
      if (!claimed) break;
      started++;
      this.launch(claimed.job, claimed.rawPayload, claimed.leaseUntil);
    }
    return started;
  }

  /** Conditions under which this node may take a job, used both to pick a row and to re-check it. */
  private claimable(nowIso: string) {
    return sql`status in ('pending', 'running') and run_at <= ${nowIso} and (lease_expires_at is null or lease_expires_at < ${nowIso}) and kind in (${sql.join(this.kinds)}) and (attempts < max_attempts or interval_ms is not null)`;
  }

  private async claim(): Promise<{ job: JobRecord; rawPayload: string; leaseUntil: number } | undefined> {
    const now = this.clock.now();
    const nowIso = now.toISOString();
    const leaseUntil = now.getTime() + this.leaseMs;
    // The outer re-check makes a claim exclusive (PostgreSQL re-evaluates it on the newest row after
    // waiting for a lock). SKIP LOCKED makes concurrent claimers pass over each other's row; without it
    // they collide on the first due row and the losers come back empty while work is still due.
    const skipLocked = this.store.dialect === 'postgres' ? sql` for update skip locked` : sql``;
    const pick = sql`select id from jobs where ${this.claimable(nowIso)} order by run_at, id limit 1${skipLocked}`;
    const result = await sql<JobsTable>`update jobs set
        status = 'running',
        lease_owner = ${this.owner},
        lease_expires_at = ${new Date(leaseUntil).toISOString()},
        lease_version = lease_version + 1,
        attempts = attempts + 1,
        last_error = case when lease_owner is not null then 'lease of ' || lease_owner || ' expired before its run finished' else last_error end,
        last_started_at = ${nowIso},
        updated_at = ${nowIso}
      where id = (${pick}) and ${this.claimable(nowIso)}
      returning *`.execute(this.store.db);
    const row = result.rows[0];
    if (!row) return undefined;
    return {
      leaseUntil,
      // Parsed in the run, so a corrupt payload fails that job instead of every poll.
      rawPayload: row.payload,
      job: {
        id: row.id,
        tenantId: row.tenant_id,
        kind: row.kind,
        dedupeKey: row.dedupe_key,
        payload: null,
        attempts: Number(row.attempts),
        maxAttempts: Number(row.max_attempts),
        intervalMs: row.interval_ms === null ? null : Number(row.interval_ms),
        leaseVersion: Number(row.lease_version),
      },
    };
  }

  /** A one-off job whose last attempt's node died can't be claimed again; mark it dead. */
  private async reapExhausted(): Promise<void> {
    const nowIso = this.clock.now().toISOString();
    await this.store.db
      .updateTable('jobs')
      .set({
        status: 'dead',
        last_error: sql<string>`case when lease_owner is not null then 'lease of ' || lease_owner || ' expired during the last attempt' else coalesce(last_error, 'no attempts left') end`,
        lease_owner: null,
        lease_expires_at: null,
        last_finished_at: nowIso,
        updated_at: nowIso,
      })
      .where('status', 'in', ['pending', 'running'])
      .where('kind', 'in', this.kinds)
      .where('interval_ms', 'is', null)
      .where(sql<boolean>`attempts >= max_attempts`)
      .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<', nowIso)]))
      .execute();
  }

  private launch(job: JobRecord, rawPayload: string, leaseUntil: number): void {
    const entry = this.handlers.get(job.kind)!;
    const abort = new AbortController();
    const heartbeat = this.heartbeat(job, leaseUntil, abort);
    const { timeoutMs } = entry.opts;
    const timeout = timeoutMs ? setTimeout(() => abort.abort(new JobTimeoutError(timeoutMs)), timeoutMs) : undefined;
    const ctx: JobContext = {
      job,
      signal: abort.signal,
      assertLease: async (db) => {
        let q = (db ?? this.store.db)
          .selectFrom('jobs')
          .select('id')
          .where('id', '=', job.id)
          .where('lease_owner', '=', this.owner)
          .where('lease_version', '=', job.leaseVersion)
          .where('lease_expires_at', '>', this.clock.now().toISOString());
        if (this.store.dialect === 'postgres') q = q.forShare();
        if (!(await q.executeTakeFirst())) throw new LeaseLostError(job.id);
      },
    };
    const handlerRun = Promise.resolve().then(async () => {
      job.payload = JSON.parse(rawPayload) as unknown;
      return checkOutcome(await entry.handler(job.payload, ctx));
    });
    const done = this.supervise(job, entry.opts, handlerRun, abort).finally(() => {
      heartbeat.stop();
      clearTimeout(timeout);
      this.running.delete(job.id);
    });
    this.running.set(job.id, { job, abort, done });
  }

  private async supervise(job: JobRecord, opts: JobKindOptions, handlerRun: Promise<JobOutcome>, abort: AbortController): Promise<void> {
    const started = Date.now();
    let result: RunResult;
    try {
      const settled = await raceAbort(handlerRun, abort.signal);
      if (settled.aborted) {
        const reason: unknown = abort.signal.reason;
        // The lease is still renewed while the handler winds down, so no one else starts the job meanwhile.
        const stoppedInTime = await settleWithin(handlerRun, this.abortGraceMs);
        if (!stoppedInTime) {
          this.opts.logger?.error({ jobId: job.id, kind: job.kind }, `job handler ignored its abort signal for ${this.abortGraceMs} ms; abandoning it`);
        }
        if (reason instanceof ShutdownError) {
          result = (await this.release(job, !stoppedInTime)) ? 'interrupted' : 'lease_lost';
        } else if (reason instanceof LeaseLostError) {
          result = 'lease_lost';
        } else {
          result = await this.recordFailure(job, opts, reason, !stoppedInTime);
        }
      } else if (settled.ok) {
        result = (await this.finish(job, this.nextAfterSuccess(job, settled.value))) ? 'succeeded' : 'lease_lost';
      } else if (settled.error instanceof LeaseLostError) {
        result = 'lease_lost';
      } else {
        result = await this.recordFailure(job, opts, settled.error, false);
      }
    } catch (err) {
      // The end of the run could not be written; the lease runs out and the job runs again.
      this.opts.logger?.error({ jobId: job.id, kind: job.kind, err: errMessage(err) }, 'could not record the end of a job run');
      result = 'lease_lost';
    }
    if (result !== 'succeeded') this.opts.logger?.warn({ jobId: job.id, kind: job.kind, attempt: job.attempts }, `job ${result}`);
    this.opts.onRun?.(job.kind, result, Date.now() - started);
  }

  private async recordFailure(job: JobRecord, opts: JobKindOptions, err: unknown, abandoned: boolean): Promise<RunResult> {
    this.opts.logger?.warn({ jobId: job.id, kind: job.kind, attempt: job.attempts, err: errMessage(err) }, 'job failed');
    const next = this.nextAfterFailure(job, opts, err);
    if (!(await this.finish(job, next, abandoned))) return 'lease_lost';
    return next.status === 'dead' ? 'dead' : 'failed';
  }

  private nextAfterSuccess(job: JobRecord, outcome: JobOutcome): NextState {
    const now = this.clock.now();
    if (outcome?.rescheduleAt) return { status: 'pending', runAt: outcome.rescheduleAt, attempts: 0, lastError: null };
    if (job.intervalMs !== null) return { status: 'pending', runAt: new Date(now.getTime() + job.intervalMs), attempts: 0, lastError: null };
    return { status: 'succeeded', runAt: now, attempts: job.attempts, lastError: null };
  }

  private nextAfterFailure(job: JobRecord, opts: JobKindOptions, err: unknown): NextState {
    const now = this.clock.now().getTime();
    const lastError = errMessage(err).slice(0, MAX_ERROR_LENGTH);
    const exhausted = job.attempts >= job.maxAttempts;
    let backoff = (opts.backoffMs ?? defaultBackoff)(job.attempts);
    if (!(Number.isFinite(backoff) && backoff >= 0)) backoff = defaultBackoff(job.attempts);
    if (job.intervalMs !== null) {
      // A periodic job never dies: out of retries, it waits for its next period with fresh attempts.
      if (exhausted) return { status: 'pending', runAt: new Date(now + job.intervalMs), attempts: 0, lastError };
      return { status: 'pending', runAt: new Date(now + Math.min(backoff, job.intervalMs)), attempts: job.attempts, lastError };
    }
    if (exhausted) return { status: 'dead', runAt: new Date(now), attempts: job.attempts, lastError };
    return { status: 'pending', runAt: new Date(now + backoff), attempts: job.attempts, lastError };
  }

  /**
   * Writes the end of a run, fenced on this run's lease. If the job was enqueued again during the
   * run (status back to 'pending'), that request wins: it runs at the earlier of the requested and
   * the natural next time, with fresh attempts. An abandoned run leaves its lease to expire, so the
   * job can't start again while the stray handler may still be working.
   */
  private async finish(job: JobRecord, next: NextState, keepLeaseExpiry = false): Promise<boolean> {
    const now = this.clock.now().toISOString();
    const at = next.runAt.toISOString();
    const res = await this.store.db
      .updateTable('jobs')
      .set({
        status: sql<string>`case when status = 'pending' then 'pending' else ${next.status} end`,
        run_at:
          next.status === 'pending'
            ? sql<string>`case when status = 'pending' and run_at < ${at} then run_at else ${at} end`
            : sql<string>`case when status = 'pending' then run_at else ${at} end`,
        attempts: sql<number>`case when status = 'pending' then 0 else ${next.attempts} end`,
        lease_owner: null,
        ...(keepLeaseExpiry ? {} : { lease_expires_at: null }),
        last_error: next.lastError,
        last_finished_at: now,
        updated_at: now,
      })
      .where('id', '=', job.id)
      .where('lease_owner', '=', this.owner)
      .where('lease_version', '=', job.leaseVersion)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /** A run cut short by shutdown doesn't count as an attempt, and the job is free again at once. */
  private async release(job: JobRecord, keepLeaseExpiry: boolean): Promise<boolean> {
    const res = await this.store.db
      .updateTable('jobs')
      .set({
        status: 'pending',
        attempts: sql<number>`case when attempts > 0 then attempts - 1 else 0 end`,
        lease_owner: null,
        ...(keepLeaseExpiry ? {} : { lease_expires_at: null }),
        updated_at: this.clock.now().toISOString(),
      })
      .where('id', '=', job.id)
      .where('lease_owner', '=', this.owner)
      .where('lease_version', '=', job.leaseVersion)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  /**
   * Renews the lease every `heartbeatMs`, one renewal at a time. Aborts the run when the lease is
   * gone (taken over, job cancelled) or when renewals keep failing until the lease has run out.
   */
  private heartbeat(job: JobRecord, leaseUntil: number, abort: AbortController): { stop(): void } {
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    let until = leaseUntil;
    const beat = async () => {
      try {
        const next = this.clock.now().getTime() + this.leaseMs;
        const res = await this.store.db
          .updateTable('jobs')
          .set({ lease_expires_at: new Date(next).toISOString() })
          .where('id', '=', job.id)
          .where('lease_owner', '=', this.owner)
          .where('lease_version', '=', job.leaseVersion)
          .executeTakeFirst();
        if (Number(res.numUpdatedRows) !== 1) {
          if (!stopped) abort.abort(new LeaseLostError(job.id));
          return;
        }
        until = next;
      } catch (err) {
        if (this.clock.now().getTime() >= until) {
          if (!stopped) abort.abort(new LeaseLostError(job.id));
          return;
        }
        this.opts.logger?.warn({ jobId: job.id, err: errMessage(err) }, 'could not renew job lease');
      }
      if (!stopped) timer = setTimeout(() => void beat(), this.heartbeatMs);
    };
    timer = setTimeout(() => void beat(), this.heartbeatMs);
    return {
      stop() {
        stopped = true;
        clearTimeout(timer);
      },
    };
  }
}

function checkMaxAttempts(n: number): void {
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError('maxAttempts must be a positive integer');
}

function checkOutcome(outcome: JobOutcome): JobOutcome {
  const at = outcome?.rescheduleAt;
  if (at !== undefined && !(at instanceof Date && !Number.isNaN(at.getTime()))) {
    throw new TypeError('job handler returned an invalid rescheduleAt');
  }
  return outcome;
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** True if `p` settled within `ms`. */
async function settleWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]);
  clearTimeout(timer);
  return settled;
}

type Settled<T> = { aborted: true } | { aborted: false; ok: true; value: T } | { aborted: false; ok: false; error: unknown };

/** Whichever comes first: the promise settling or the signal aborting. */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<Settled<T>> {
  if (signal.aborted) return Promise.resolve({ aborted: true });
  return new Promise((resolve) => {
    const onAbort = () => resolve({ aborted: true });
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve({ aborted: false, ok: true, value });
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        resolve({ aborted: false, ok: false, error });
      },
    );
  });
}
