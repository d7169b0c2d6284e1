import crypto from 'node:crypto';
import os from 'node:os';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Executor, Store } from '../store/db.js';
import { isUniqueViolation } from '../store/db.js';
import type { JobsTable } from '../store/schema.js';
import { systemClock, type Clock } from '../shared/time.js';

/**
 * A durable job scheduler on the store. Jobs are rows with a lease: a node claims a due job by
 * setting its lease (PostgreSQL: FOR UPDATE SKIP LOCKED, so two nodes never claim the same row),
 * renews the lease while the handler runs, and finishes only if its lease version still holds.
 * A node that dies simply lets its lease expire; another node takes the job over.
 */

export interface JobRecord {
  id: string;
  tenantId: string;
  kind: string;
  dedupeKey: string | null;
  payload: unknown;
  attempts: number;
  maxAttempts: number;
  intervalMs: number | null;
  leaseVersion: number;
}

export interface JobContext {
  job: JobRecord;
  /** Aborted when the lease is lost, the run times out, or the node shuts down. */
  signal: AbortSignal;
  /** Throws if this node no longer holds the job's lease; call before committing work. */
  assertLease(db?: Executor): Promise<void>;
}

export type JobOutcome = void | { rescheduleAt?: Date };
export type JobHandler = (payload: unknown, ctx: JobContext) => Promise<JobOutcome>;

export interface JobKindOptions {
  maxAttempts?: number;
  /** A run is aborted after this long. */
  timeoutMs?: number;
  /** Delay before retry n (1-based). Default: exponential from 1 s, capped at 1 h, with jitter. */
  backoffMs?: (attempt: number) => number;
}

export interface EnqueueOptions {
  tenantId: string;
  kind: string;
  payload?: unknown;
  runAt?: Date;
  /** At most one live job per (tenant, key); enqueueing again updates it. */
  dedupeKey?: string;
  /** Makes the job periodic. */
  intervalMs?: number;
  maxAttempts?: number;
}

export class LeaseLostError extends Error {
  constructor(jobId: string) {
    super(`lease on job ${jobId} was lost`);
  }
}

class ShutdownError extends Error {
  constructor() {
    super('node is shutting down');
  }
}

export function defaultBackoff(attempt: number): number {
  const base = Math.min(3_600_000, 1000 * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

export interface SchedulerOptions {
  owner?: string;
  leaseMs?: number;
  pollIntervalMs?: number;
  concurrency?: number;
  clock?: Clock;
  logger?: Logger;
  onRun?: (kind: string, result: 'succeeded' | 'failed' | 'dead' | 'lease_lost', durationMs: number) => void;
}

interface Running {
  job: JobRecord;
  abort: AbortController;
  done: Promise<void>;
}

export class JobScheduler {
  readonly owner: string;
  private readonly handlers = new Map<string, { handler: JobHandler; opts: JobKindOptions }>();
  private readonly running = new Map<string, Running>();
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  private started = false;
  private polling: Promise<void> | undefined;
  private readonly leaseMs: number;
  private readonly pollIntervalMs: number;
  private readonly concurrency: number;
  private readonly clock: Clock;

  constructor(
    private readonly store: Store,
    private readonly opts: SchedulerOptions = {},
  ) {
    this.owner = opts.owner ?? `${os.hostname()}:${process.pid}:${crypto.randomUUID().slice(0, 8)}`;
    this.leaseMs = opts.leaseMs ?? 30_000;
    this.pollIntervalMs = opts.pollIntervalMs ?? 1000;
    this.concurrency = opts.concurrency ?? 4;
    this.clock = opts.clock ?? systemClock;
  }

  register(kind: string, handler: JobHandler, opts: JobKindOptions = {}): void {
    if (this.handlers.has(kind)) throw new Error(`job kind ${kind} is already registered`);
    this.handlers.set(kind, { handler, opts });
  }

  get kinds(): string[] {
    return [...this.handlers.keys()];
  }

  /** Adds a job, or updates the live job with the same dedupe key. Returns its id. */
  async enqueue(db: Executor, o: EnqueueOptions): Promise<string> {
    const now = this.clock.now().toISOString();
    const runAt = (o.runAt ?? this.clock.now()).toISOString();
    const maxAttempts = o.maxAttempts ?? this.handlers.get(o.kind)?.opts.maxAttempts ?? 5;
    const payload = JSON.stringify(o.payload ?? null);
    for (let attempt = 0; ; attempt++) {
      if (o.dedupeKey) {
        const existing = await db
          .selectFrom('jobs')
          .select(['id', 'status', 'run_at'])
          .where('tenant_id', '=', o.tenantId)
          .where('dedupe_key', '=', o.dedupeKey)
          .executeTakeFirst();
        if (existing) {
          // A pending job keeps its earlier run time; a finished one is revived.
          const keepRunAt = existing.status === 'pending' && existing.run_at < runAt ? existing.run_at : runAt;
          await db
            .updateTable('jobs')
            .set({
              kind: o.kind,
              payload,
              status: 'pending',
              run_at: keepRunAt,
              interval_ms: o.intervalMs ?? null,
              max_attempts: maxAttempts,
              ...(existing.status === 'pending' ? {} : { attempts: 0, last_error: null }),
              updated_at: now,
            })
            .where('id', '=', existing.id)
            .execute();
          return existing.id;
        }
      }
      const id = crypto.randomUUID();
      try {
        await db
          .insertInto('jobs')
          .values({
            id,
            tenant_id: o.tenantId,
            kind: o.kind,
            dedupe_key: o.dedupeKey ?? null,
            payload,
            status: 'pending',
            run_at: runAt,
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
          })
          .execute();
        return id;
      } catch (err) {
        // Another node inserted the same dedupe key first: update theirs instead.
        if (o.dedupeKey && isUniqueViolation(err) && attempt < 3) continue;
        throw err;
      }
    }
  }

  async cancel(db: Executor, tenantId: string, dedupeKey: string): Promise<void> {
    await db.deleteFrom('jobs').where('tenant_id', '=', tenantId).where('dedupe_key', '=', dedupeKey).execute();
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.stopping = false;
    const tick = () => {
      if (this.stopping) return;
      this.polling = this.pollOnce()
        .then(() => undefined)
        .catch((err: unknown) => this.opts.logger?.warn({ err }, 'job poll failed'))
        .finally(() => {
          this.polling = undefined;
          if (!this.stopping) this.timer = setTimeout(tick, this.pollIntervalMs);
        });
    };
    this.timer = setTimeout(tick, 0);
  }

  /**
   * Stops claiming work, waits up to `graceMs` for running jobs, then aborts the rest and
   * releases every lease this node holds so another node can take the jobs at once.
   */
  async stop(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    this.started = false;
    clearTimeout(this.timer);
    await this.polling;
    const all = [...this.running.values()];
    if (all.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((r) => (timer = setTimeout(r, graceMs)));
      await Promise.race([Promise.all(all.map((r) => r.done)), grace]);
      clearTimeout(timer);
      for (const r of this.running.values()) r.abort.abort(new ShutdownError());
      await Promise.all([...this.running.values()].map((r) => r.done));
    }
    await this.releaseLeases();
  }

  private async releaseLeases(): Promise<void> {
    try {
      await this.store.db
        .updateTable('jobs')
        .set({ lease_owner: null, lease_expires_at: null })
        .where('lease_owner', '=', this.owner)
        .execute();
    } catch (err) {
      this.opts.logger?.warn({ err }, 'could not release job leases');
    }
  }

  /** Claims and starts due jobs up to the concurrency limit. Returns how many started. */
  async pollOnce(): Promise<number> {
    let started = 0;
    while (!this.stopping && this.running.size < this.concurrency) {
      const job = await this.claim();
      if (!job) break;
      started++;
      this.launch(job);
    }
    return started;
  }

  /** Runs every due job to completion (tests and CLI). */
  async drain(): Promise<void> {
    for (;;) {
      await this.pollOnce();
      if (this.running.size === 0) return;
      await Promise.race([...this.running.values()].map((r) => r.done));
    }
  }

  private async claim(): Promise<JobRecord | undefined> {
    const kinds = this.kinds;
    if (kinds.length === 0) return undefined;
    const now = this.clock.now();
    const nowIso = now.toISOString();
    const leaseUntil = new Date(now.getTime() + this.leaseMs).toISOString();
    const skipLocked = this.store.dialect === 'postgres' ? sql` for update skip locked` : sql``;
    const pick = sql<{ id: string }>`select id from jobs where status = 'pending' and run_at <= ${nowIso} and (lease_expires_at is null or lease_expires_at < ${nowIso}) and kind in (${sql.join(kinds)}) order by run_at limit 1${skipLocked}`;
    const result = await sql<JobsTable>`update jobs set lease_owner = ${this.owner}, lease_expires_at = ${leaseUntil}, lease_version = lease_version + 1, attempts = attempts + 1, last_started_at = ${nowIso}, updated_at = ${nowIso} where id = (${pick}) and status = 'pending' and (lease_expires_at is null or lease_expires_at < ${nowIso}) returning *`.execute(this.store.db);
    const row = result.rows[0];
    if (!row) return undefined;
    return {
      id: row.id,
      tenantId: row.tenant_id,
      kind: row.kind,
      dedupeKey: row.dedupe_key,
      payload: JSON.parse(row.payload) as unknown,
      attempts: Number(row.attempts),
      maxAttempts: Number(row.max_attempts),
      intervalMs: row.interval_ms === null ? null : Number(row.interval_ms),
      leaseVersion: Number(row.lease_version),
    };
  }

  private launch(job: JobRecord): void {
    const entry = this.handlers.get(job.kind)!;
    const abort = new AbortController();
    const started = Date.now();
    const timeout = entry.opts.timeoutMs
      ? setTimeout(() => abort.abort(new Error(`job timed out after ${entry.opts.timeoutMs} ms`)), entry.opts.timeoutMs)
      : undefined;
    const heartbeat = setInterval(() => {
      void this.renewLease(job).then((held) => {
        if (!held) abort.abort(new LeaseLostError(job.id));
      }, () => undefined);
    }, Math.max(50, Math.floor(this.leaseMs / 3)));

    const ctx: JobContext = {
      job,
      signal: abort.signal,
      assertLease: async (db) => {
        const row = await (db ?? this.store.db)
          .selectFrom('jobs')
          .select('id')
          .where('id', '=', job.id)
          .where('lease_owner', '=', this.owner)
          .where('lease_version', '=', job.leaseVersion)
          .executeTakeFirst();
        if (!row) throw new LeaseLostError(job.id);
      },
    };

    const done = (async () => {
      let result: 'succeeded' | 'failed' | 'dead' | 'lease_lost' = 'succeeded';
      const running = Promise.resolve().then(() => entry.handler(job.payload, ctx));
      try {
        const outcome = await raceAbort(running, abort.signal);
        await this.finishSuccess(job, outcome ?? undefined);
      } catch (err) {
        // Give an aborted handler a moment to stop before anyone else may take the job.
        if (abort.signal.aborted) await settleWithin(running, 5000);
        if (err instanceof LeaseLostError || abort.signal.reason instanceof LeaseLostError) {
          result = 'lease_lost';
        } else if (abort.signal.reason instanceof ShutdownError) {
          await this.releaseForShutdown(job);
          result = 'lease_lost';
        } else {
          result = await this.finishFailure(job, err, entry.opts);
        }
        this.opts.logger?.warn({ jobId: job.id, kind: job.kind, attempt: job.attempts, err: errMessage(err) }, `job ${result}`);
      } finally {
        clearInterval(heartbeat);
        clearTimeout(timeout);
        this.running.delete(job.id);
        this.opts.onRun?.(job.kind, result, Date.now() - started);
      }
    })();
    this.running.set(job.id, { job, abort, done });
  }

  private async renewLease(job: JobRecord): Promise<boolean> {
    const until = new Date(this.clock.now().getTime() + this.leaseMs).toISOString();
    const res = await this.store.db
      .updateTable('jobs')
      .set({ lease_expires_at: until })
      .where('id', '=', job.id)
      .where('lease_owner', '=', this.owner)
      .where('lease_version', '=', job.leaseVersion)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  private async finishSuccess(job: JobRecord, outcome: { rescheduleAt?: Date } | undefined): Promise<void> {
    const now = this.clock.now();
    const next = outcome?.rescheduleAt ?? (job.intervalMs !== null ? new Date(now.getTime() + job.intervalMs) : undefined);
    const res = await this.store.db
      .updateTable('jobs')
      .set({
        status: next ? 'pending' : 'succeeded',
        run_at: (next ?? now).toISOString(),
        attempts: 0,
        lease_owner: null,
        lease_expires_at: null,
        last_error: null,
        last_finished_at: now.toISOString(),
        updated_at: now.toISOString(),
      })
      .where('id', '=', job.id)
      .where('lease_version', '=', job.leaseVersion)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) throw new LeaseLostError(job.id);
  }

  /** A run cut short by shutdown doesn't count as an attempt; the job is free again at once. */
  private async releaseForShutdown(job: JobRecord): Promise<void> {
    await this.store.db
      .updateTable('jobs')
      .set({ lease_owner: null, lease_expires_at: null, attempts: Math.max(0, job.attempts - 1) })
      .where('id', '=', job.id)
      .where('lease_version', '=', job.leaseVersion)
      .execute()
      .catch(() => undefined);
  }

  private async finishFailure(job: JobRecord, err: unknown, opts: JobKindOptions): Promise<'failed' | 'dead'> {
    const now = this.clock.now();
    const exhausted = job.attempts >= job.maxAttempts;
    const backoff = (opts.backoffMs ?? defaultBackoff)(job.attempts);
    // A periodic job that used up its retries waits for its next interval instead of dying.
    const periodic = job.intervalMs !== null;
    const status = exhausted && !periodic ? 'dead' : 'pending';
    const runAt = exhausted ? (periodic ? new Date(now.getTime() + job.intervalMs!) : now) : new Date(now.getTime() + backoff);
    try {
      await this.store.db
        .updateTable('jobs')
        .set({
          status,
          run_at: runAt.toISOString(),
          attempts: exhausted ? 0 : job.attempts,
          lease_owner: null,
          lease_expires_at: null,
          last_error: errMessage(err).slice(0, 2000),
          last_finished_at: now.toISOString(),
          updated_at: now.toISOString(),
        })
        .where('id', '=', job.id)
        .where('lease_version', '=', job.leaseVersion)
        .execute();
    } catch (e) {
      this.opts.logger?.warn({ err: e, jobId: job.id }, 'could not record job failure');
    }
    return status === 'dead' ? 'dead' : 'failed';
  }
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function settleWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
